"""The global-batch loop that sampling and likelihood share: every host feeds its share of each
global batch, and every host gets all the results back."""
import jax
import numpy as np
import tqdm
from jax.experimental import multihost_utils

from configs.errors import config_keys
from parallel import DataParallel


def map_global_batches(fn, num_items: int, batch: int, parallel: DataParallel, make_inputs,
                       desc: str, first: int = 0, progress: bool = True, leave: bool = True,
                       batch_key: str = "sampling.batch_size"):
  """Outputs of fn over items first..first+num_items-1 (numpy arrays with leading num_items).

  fn(*global_arrays) is jitted with batch-sharded inputs; make_inputs(indices (local,)) gives this
  host's numpy inputs for the global item indices it owns. The last batch runs full and its
  extra items are dropped. progress: show a tqdm bar over the batches (leave: keep it when done;
  False for a bar nested under another). batch_key: the config key of `batch`, named if it does
  not divide over the devices.
  """
  with config_keys({"batch_size": batch_key}):
    parallel.check_batch_size(batch)
  local = batch // jax.process_count()
  offset = jax.process_index() * local
  chunks = []
  for start in tqdm.trange(0, num_items, batch, desc=desc, leave=leave,
                           disable=not progress or jax.process_index() != 0):
    mine = np.arange(first + start + offset, first + start + offset + local)
    outputs = fn(*(parallel.global_array(v) for v in make_inputs(mine)))
    chunks.append(jax.tree.map(lambda v: multihost_utils.process_allgather(v, tiled=True), outputs))
  return jax.tree.map(lambda *parts: np.concatenate(parts)[:num_items], *chunks)
