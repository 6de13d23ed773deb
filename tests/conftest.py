"""Shared pytest setup: strict numerics, a persistent compile cache, one CPU device, and a
seconds-per-file table at the end of every run (where the suite's time goes; see .ci/run).

Multi-device tests run in subprocesses with their own XLA_FLAGS (tests/train_steps_script.py).
"""
import collections
import pathlib

import jax
import pytest

CACHE_DIR = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"
FILES_SHOWN = 15
# .ci/run gives each of its 2 workers whole files (pytest-xdist --dist loadfile, so module caches
# and fixtures are built once); the longest files go first so that none is left running alone at
# the end. Longest measured first (seconds per file, printed at the end of every run).
LONGEST_FILES = ("test_notebooks.py", "test_image_training.py", "test_digits_guidance.py",
                 "test_solvers.py", "test_precision.py", "test_evaluate.py", "test_configs.py",
                 "test_solver_contract.py", "test_import_score_sde.py", "test_main.py",
                 "test_samplers.py", "test_guidance.py", "test_training.py",
                 "test_inverse_problems.py")

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def compile_without_llvm_optimisation(request):
  """For tests whose time goes into compiling rather than running: XLA:CPU without LLVM's
  optimisation passes compiles about 2x faster (tests/test_precision.py: 147 s -> 82 s; whole
  files of short solver loops 30-40% faster, while files that run long loops, such as
  test_sde.py's simulations, got slower: use it per file, measured). Results agree to float32
  rounding, not bit for bit: tests marked `llvm_optimised` (bit-for-bit comparisons across batch
  shapes, tolerances at the rounding level) keep the optimised compiler in such files."""
  if request.node.get_closest_marker("llvm_optimised"):
    yield
    return
  previous = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: slow checks, run in a separate CI step")
  config.addinivalue_line("markers", "llvm_optimised: keep XLA's optimised CPU compiles in a file "
                          "that uses compile_without_llvm_optimisation")


def pytest_collection_modifyitems(items):
  """Tests of LONGEST_FILES first, in that order; the rest as collected."""
  rank = lambda item: (LONGEST_FILES.index(item.path.name) if item.path.name in LONGEST_FILES
                       else len(LONGEST_FILES))
  items.sort(key=rank)  # stable: the order within each file is kept


def pytest_terminal_summary(terminalreporter):
  """Seconds spent per test file (setup + call + teardown), the largest first."""
  seconds, counts = collections.Counter(), collections.Counter()
  for reports in terminalreporter.stats.values():
    for report in reports:
      if isinstance(report, pytest.TestReport):
        name = report.nodeid.split("::")[0]
        seconds[name] += report.duration
        counts[name] += report.when == "call"
  if not seconds:
    return
  terminalreporter.write_sep("=", f"seconds per file (top {FILES_SHOWN})")
  for name, total in seconds.most_common(FILES_SHOWN):
    terminalreporter.write_line(f"{total:8.1f} s  {counts[name]:4d} tests  {name}")
