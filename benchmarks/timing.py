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


def interleaved_seconds(fns: dict, repeats: int, warmup: int = 2,
                        statistic=statistics.median) -> dict:
  """statistic (median; min: the fastest) of the wall times (s) of each fn() in `fns` (its result
  blocked on), calls interleaved round by round.

  The warm-up calls (jit compilation, allocator and oneDNN caches) are not timed; then each round
  calls every fn once, so a change in machine load hits all of them alike.
  """
  for fn in fns.values():
    for _ in range(warmup):
      jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - start)
  return {name: statistic(t) for name, t in times.items()}
