"""Stateless batching and preprocessing: the batch of step s depends only on (seed, s)."""
import numpy as np

from configs.errors import UserError
from data_sources.transforms import to_unit_interval


def batch_indices(num_examples: int, seed: int, step: int, global_batch: int,
                  process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """This process's share of the global batch indices for `step`: (global_batch // process_count,).

  Drawn with replacement from a generator keyed by (seed, step), so training resumed at any step
  sees the same data, whatever the number of hosts.
  """
  if global_batch % process_count:
    raise UserError(f"Batch size {global_batch} must be divisible by {process_count} processes.")
  idx = np.random.default_rng([seed, step]).integers(0, num_examples, size=global_batch)
  local = global_batch // process_count
  return idx[process_index * local:(process_index + 1) * local]


def preprocess(batch: np.ndarray, *, is_image: bool, centered: bool, uniform_dequantization: bool,
               random_flip: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
  """uint8 images (B, H, W, C) -> float32 in [0, 1] (or [-1, 1] if centered); toy data unchanged.

  With uniform dequantisation pixels become (k + u) / 256, u ~ U[0, 1), else k / 255.
  """
  if not is_image:
    return np.asarray(batch, np.float32)
  if (uniform_dequantization or random_flip) and rng is None:
    raise ValueError("preprocess needs an rng for dequantisation or flips (keeps runs reproducible).")
  x = to_unit_interval(batch, rng.uniform(size=np.shape(batch)) if uniform_dequantization else None)
  if random_flip:
    flip = rng.uniform(size=x.shape[0]) < 0.5
    x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
  return (2.0 * x - 1.0 if centered else x).astype(np.float32)
