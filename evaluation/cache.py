"""Where evaluation keeps files it makes or finds once (weights, a trained feature net).

The directory is `$SCORE_SDE_CACHE` if set, else `~/.cache/score_sde_jax`. Files are written
atomically (a temporary file in the same directory, then a rename), so a killed run never leaves
a half-written file that a later run would trust.
"""
import os
import pathlib
import tempfile

CACHE_ENV = "SCORE_SDE_CACHE"


def cache_dir() -> pathlib.Path:
  """The cache directory (not created)."""
  env = os.environ.get(CACHE_ENV)
  return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "score_sde_jax"


def write_bytes_atomic(path, data: bytes) -> pathlib.Path:
  """Writes `data` to `path` (parents created) through a temporary file and a rename."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
  return path


def write_text_atomic(path, text: str) -> pathlib.Path:
  """write_bytes_atomic for text (UTF-8)."""
  return write_bytes_atomic(path, text.encode())
