"""Training batches as iterators with a JSON-able position that checkpoints store.

Image sets go through a grain pipeline: source -> per-epoch shuffle -> transforms -> batches, with
worker processes and prefetch. Generated points (toy sets, the mixture) keep stateless batching
(stateless.py). Both yield this host's share of every global batch, {"image": (L, ...),
"label": (L,)} with L = global_batch / process_count ("image" holds the points for point sets).

The example stream is index-addressable: position p is example index_shuffle(p mod N) of epoch
p // N (grain's per-epoch shuffle seeded by (seed, epoch)), transformed with a generator keyed by
(seed, p). Global batch b is stream[start + bB : start + (b+1)B]; host h reads only its slice
[hL, (h+1)L) of it. So the state is one number, the stream position, which does not depend on
the number of workers or hosts (grain's own multiprocess state would pin both).
"""
import multiprocessing

import grain
import numpy as np
from absl import flags

from configs.errors import ArgumentError, UserError


def check_workers(num_workers: int) -> None:
  """Rejects worker counts this platform cannot run (grain starts workers with 'spawn')."""
  if num_workers < 0:
    raise ArgumentError("num_workers", f"{{arg}}={num_workers} must be >= 0 (0: load in this "
                        "process).")
  if num_workers and "spawn" not in multiprocessing.get_all_start_methods():
    raise ArgumentError("num_workers", f"{{arg}}={num_workers} needs worker processes, which this "
                        "platform cannot start; set {arg}=0.")


def local_batch_size(global_batch: int, process_count: int) -> int:
  if global_batch % process_count:
    raise UserError(f"Batch size {global_batch} must be divisible by {process_count} processes.")
  return global_batch // process_count


def example_stream(source, transforms, seed: int) -> grain.MapDataset:
  """The endless stream of transformed examples: a fresh permutation of `source` each epoch.

  Random transforms (grain RandomMap) draw from a generator keyed by (seed, stream position).
  """
  shuffle_seed, transform_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
  ds = grain.MapDataset.source(source).shuffle(seed=shuffle_seed).repeat()
  for transform in transforms:
    if isinstance(transform, grain.transforms.RandomMap):
      ds = ds.random_map(transform, seed=transform_seed)
    else:
      ds = ds.map(transform)
  return ds


def host_batches(stream: grain.MapDataset, *, start: int, global_batch: int, process_index: int,
                 process_count: int) -> grain.MapDataset:
  """This host's batches: element b is stream[start + b B + h L : start + b B + (h+1) L]."""
  local = local_batch_size(global_batch, process_count)
  return stream[start:].batch(local)[process_index::process_count]


class GrainBatches:
  """Iterator over this host's batches of an example stream, from a checkpointable position.

  num_workers grain processes (0: in this process) each keep `prefetch` batches ready; in this
  process `prefetch` threads fill a buffer of as many batches (0: load on demand).
  """

  def __init__(self, source, transforms, *, seed: int, global_batch: int, process_index: int = 0,
               process_count: int = 1, num_workers: int = 0, prefetch: int = 2):
    check_workers(num_workers)
    if prefetch < 0:
      raise ArgumentError("prefetch", f"{{arg}}={prefetch} must be >= 0 (batches prepared ahead).")
    local_batch_size(global_batch, process_count)
    self._stream = example_stream(source, transforms, seed)
    self._num_examples, self._seed, self._batch = len(source), seed, global_batch
    self._host = dict(process_index=process_index, process_count=process_count)
    self._workers, self._prefetch = num_workers, prefetch
    self._next_example, self._iterator = 0, None

  def _start(self):
    ds = host_batches(self._stream, start=self._next_example, global_batch=self._batch,
                      **self._host)
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._prefetch,
                                              prefetch_buffer_size=self._prefetch))
    if self._workers:
      if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; outside main.py: defaults
        flags.FLAGS.mark_as_parsed()
      ds = ds.mp_prefetch(grain.multiprocessing.MultiprocessingOptions(
          num_workers=self._workers, per_worker_buffer_size=max(self._prefetch, 1)))
    return iter(ds)

  def __iter__(self):
    return self

  def start_prefetch(self) -> None:
    """Starts the workers and buffers now, ahead of the first next()."""
    if self._iterator is None:
      self._iterator = self._start()
    self._iterator.start_prefetch()

  def __next__(self) -> dict:
    if self._iterator is None:
      self._iterator = self._start()
    batch = next(self._iterator)
    self._next_example += self._batch
    return batch

  def get_state(self) -> dict:
    return {"next_example": self._next_example, "num_examples": self._num_examples,
            "seed": self._seed}

  def set_state(self, state: dict) -> None:
    check_same_data(state, num_examples=self._num_examples, seed=self._seed)
    self.close()
    self._next_example = int(state["next_example"])

  def close(self) -> None:
    """Stops the worker processes (a later next() starts them again)."""
    if self._iterator is not None:
      self._iterator.close()
    self._iterator = None


def check_same_data(state: dict, **expected) -> None:
  saved = {k: state.get(k) for k in expected}
  if saved != expected:
    raise UserError(f"The checkpoint's data position belongs to other data ({saved}; this config "
                     f"gives {expected}). Resume with the data settings the run started with "
                     "(config.json in its workdir) or use a new --workdir.")
