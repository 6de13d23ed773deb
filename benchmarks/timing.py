"""Wall-clock timing shared by the benchmarks (run as `python benchmarks/NAME.py`)."""
import statistics
import time

import jax


def best_time(fn, repeats: int):
  """(fastest wall time in s of `repeats` calls of fn() after one warm-up call, last result)."""
  result = jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return min(times), result


def interleaved_seconds(fns: dict, repeats: int, warmup: int = 2) -> dict:
  """Median wall time (s) of each blocking fn() in `fns`, calls interleaved round by round.

  The warm-up calls (jit compilation, allocator and oneDNN caches) are not timed; then each round
  calls every fn once, so a change in machine load hits all of them alike.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}
