"""Running a network over batches: jit with a device mesh (variables replicated, batch split).

The mesh comes from the repository's `DataParallel`; this is the one place evaluation imports it.
Inputs are host numpy arrays placed with `jax.device_put`, so this serves one process (any number
of local devices); several hosts (jax.distributed) are not handled yet.
"""
from typing import Callable

import jax
import numpy as np

from parallel import DataParallel


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
  """(B, ...) -> (ceil(B / multiple) * multiple, ...), repeating the last row."""
  extra = -len(x) % multiple
  return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)]) if extra else x


def sharded_apply(apply_fn: Callable, variables, parallel: DataParallel | None = None
                  ) -> Callable[[np.ndarray], object]:
  """apply_fn(variables, x (B, ...)) -> pytree of (B, ...), as a function of numpy x alone.

  Jitted with `variables` replicated (placed once) and x split along B over the mesh; B need
  not divide the device count (padded, and the padding cut off the numpy outputs).
  """
  parallel = parallel or DataParallel.over_all_devices()
  variables = jax.device_put(variables, parallel.replicated)
  jitted = jax.jit(apply_fn, in_shardings=(parallel.replicated, parallel.batch),
                   out_shardings=parallel.batch)
  num_devices = parallel.mesh.size

  def run(x):
    out = jitted(variables, jax.device_put(pad_to_multiple(np.asarray(x), num_devices),
                                           parallel.batch))
    return jax.tree.map(lambda a: np.asarray(a)[:len(x)], out)

  return run


def map_in_batches(fn: Callable[[np.ndarray], object], x: np.ndarray, batch_size: int):
  """fn over x (N, ...) in batches of `batch_size`, the last one padded so all share one shape:
  the outputs concatenated along the first axis, (N, ...)."""
  outputs = [fn(pad_to_multiple(x[i:i + batch_size], batch_size))
             for i in range(0, len(x), batch_size)]
  return jax.tree.map(lambda *parts: np.concatenate(parts)[:len(x)], *outputs)
