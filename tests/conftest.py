"""Shared pytest setup: strict numerics, a persistent compile cache, one CPU device.

Multi-device tests run in subprocesses with their own XLA_FLAGS (see tests/multidevice.py).
"""
import pathlib

import jax

CACHE_DIR = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: slow checks, run in a separate CI step")
