"""Stateless batching and preprocessing of in-memory arrays: the batch of step s depends only on
(seed, s), so the position to resume from is the step alone."""
import numpy as np

from data_sources.loader import check_same_data, local_batch_size
from data_sources.transforms import Augment


def batch_indices(num_examples: int, seed: int, step: int, global_batch: int,
                  process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """This process's share of the global batch indices for `step`: (global_batch // process_count,).

  Drawn with replacement from a generator keyed by (seed, step), so training resumed at any step
  sees the same data, whatever the number of hosts.
  """
  local = local_batch_size(global_batch, process_count)
  idx = np.random.default_rng([seed, step]).integers(0, num_examples, size=global_batch)
  return idx[process_index * local:(process_index + 1) * local]


class StatelessBatches:
  """Batches of generated points drawn with replacement: batch s depends only on (seed, s)."""

  def __init__(self, points: np.ndarray, *, seed: int, global_batch: int, process_index: int = 0,
               process_count: int = 1, labels: np.ndarray | None = None):
    local_batch_size(global_batch, process_count)
    self._points, self._seed, self._batch = points, seed, global_batch
    self._labels = labels  # (N,) int: batches also carry "label"
    self._host = (process_index, process_count)
    self._next_step = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    idx = batch_indices(len(self._points), self._seed, self._next_step, self._batch, *self._host)
    self._next_step += 1
    if self._labels is None:
      return {"image": np.asarray(self._points[idx], np.float32)}
    return {"image": np.asarray(self._points[idx], np.float32),
            "label": np.asarray(self._labels[idx], np.int32)}

  def get_state(self) -> dict:
    return {"next_step": self._next_step, "num_examples": len(self._points), "seed": self._seed}

  def set_state(self, state: dict) -> None:
    check_same_data(state, num_examples=len(self._points), seed=self._seed)
    self._next_step = int(state["next_step"])

  def start_prefetch(self) -> None:
    pass

  def close(self) -> None:
    pass


def preprocess(batch: np.ndarray, *, is_image: bool, centered: bool, uniform_dequantization: bool,
               random_flip: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
  """uint8 images (B, H, W, C) -> float32 in [0, 1] (or [-1, 1] if centered) by
  transforms.Augment, example by example from `rng`; points unchanged (as float32)."""
  if not is_image:
    return np.asarray(batch, np.float32)
  if (uniform_dequantization or random_flip) and rng is None:
    raise ValueError("preprocess needs an rng for dequantisation or flips (keeps runs reproducible).")
  augment = Augment(centered=centered, uniform_dequantization=uniform_dequantization,
                    random_flip=random_flip)
  return np.stack([augment.random_map({"image": image}, rng)["image"] for image in batch])
