"""Where evaluation keeps files it makes or finds once (weights, a trained feature net).

The directory is `$SCORE_SDE_CACHE` if set, else `~/.cache/score_sde_jax`. Files go in through
`fileio`'s atomic writers, so a killed run never leaves a half-written file that a later run
would trust.
"""
import os
import pathlib

CACHE_ENV = "SCORE_SDE_CACHE"


def cache_dir() -> pathlib.Path:
  """The cache directory (not created)."""
  env = os.environ.get(CACHE_ENV)
  return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "score_sde_jax"
