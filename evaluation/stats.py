"""Feature statistics for the Fréchet distance: streaming (mu, sigma) and pytorch-fid's npz format.

`FeatureStats` accumulates in float64 batch by batch (Chan et al.'s pairwise update of the mean
and the centred scatter matrix), so 50k x 2048 features never need to be held at once; `sigma`
has ddof 1, as `np.cov` in pytorch-fid. The npz files hold `mu` and `sigma` (what pytorch-fid
and TTUR read and write) plus `num_images` and `resize` (the resize rule the features came from).
"""
import dataclasses
import io

import numpy as np

from configs.errors import UserKeyError
from fileio import write_bytes_atomic


class FeatureStats:
  """Running count, mean mu (dim,) and centred scatter sum_i (x_i - mu)(x_i - mu)^T (dim, dim)."""

  def __init__(self, dim: int):
    self.dim = dim
    self.count = 0
    self.mu = np.zeros(dim)
    self.scatter = np.zeros((dim, dim))

  def update(self, features: np.ndarray) -> "FeatureStats":
    """Adds a batch of features (B, dim); returns self."""
    batch = np.asarray(features, np.float64).reshape(-1, self.dim)
    n = len(batch)
    if n == 0:
      return self
    batch_mu = batch.mean(axis=0)
    centred = batch - batch_mu
    delta = batch_mu - self.mu
    total = self.count + n
    self.scatter += centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
    self.mu += delta * (n / total)
    self.count = total
    return self

  @property
  def sigma(self) -> np.ndarray:
    """Covariance (dim, dim), ddof 1 as np.cov."""
    if self.count < 2:
      raise ValueError(f"a covariance needs at least 2 samples, got {self.count}.")
    return self.scatter / (self.count - 1)


@dataclasses.dataclass(frozen=True)
class ReferenceStats:
  """Contents of a stats file; num_images and resize are None in files from elsewhere."""

  mu: np.ndarray
  sigma: np.ndarray
  num_images: int | None = None
  resize: str | None = None


def save_stats(path, mu: np.ndarray, sigma: np.ndarray, num_images: int, resize: str) -> None:
  """Writes an npz readable by pytorch-fid (`mu`, `sigma`) with `num_images` and `resize`."""
  buf = io.BytesIO()
  np.savez_compressed(buf, mu=np.asarray(mu), sigma=np.asarray(sigma),
                      num_images=np.int64(num_images), resize=np.str_(resize))
  write_bytes_atomic(path, buf.getvalue())


def load_stats(path) -> ReferenceStats:
  """Reads an npz with `mu` and `sigma` (ours, pytorch-fid's or TTUR's); never unpickles."""
  with np.load(path, allow_pickle=False) as f:
    missing = {"mu", "sigma"} - set(f.files)
    if missing:
      raise UserKeyError(f"{path}: no {sorted(missing)} in the stats file (keys: {f.files}).")
    return ReferenceStats(mu=f["mu"], sigma=f["sigma"],
                          num_images=int(f["num_images"]) if "num_images" in f.files else None,
                          resize=str(f["resize"]) if "resize" in f.files else None)
