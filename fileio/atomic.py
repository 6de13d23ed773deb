"""Atomic file writes: a temporary file in the same directory, fsync, then a rename, so a killed
run never leaves a half-written file that a later run would trust.

Files get the permissions of a plain `open()` (0666 less the umask, e.g. 0644), not the 0600 that
`mkstemp` gives its temporary file. With overwrite=False an existing file is left alone and
FileExistsError raised.
"""
import io
import json
import os
import pathlib
import tempfile

import numpy as np


def current_umask() -> int:
  """The process's umask, read without changing it where /proc allows (Linux)."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError):
    pass
  mask = os.umask(0o022)  # elsewhere: read it by setting it (briefly a safe value), then restore
  os.umask(mask)
  return mask


def write_bytes_atomic(path, data: bytes, overwrite: bool = True) -> pathlib.Path:
  """Writes `data` to `path` (parents created), whole or not at all."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      os.fchmod(f.fileno(), 0o666 & ~current_umask())
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    if overwrite:
      os.replace(tmp, path)
    else:
      _link_exclusive(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise
  return path


def _link_exclusive(tmp: str, path: pathlib.Path) -> None:
  """Renames tmp to path unless path exists (FileExistsError): a hard link, which fails on an
  existing name, then removing tmp; a check and a rename where links are not supported."""
  try:
    os.link(tmp, path)
  except FileExistsError:
    raise
  except OSError:
    if path.exists():
      raise FileExistsError(f"{path} exists") from None
    os.replace(tmp, path)
    return
  os.unlink(tmp)


def write_text_atomic(path, text: str, overwrite: bool = True) -> pathlib.Path:
  """write_bytes_atomic for text (UTF-8)."""
  return write_bytes_atomic(path, text.encode(), overwrite)


def write_json_atomic(path, record, overwrite: bool = True) -> pathlib.Path:
  """`record` as indented JSON (one trailing newline)."""
  return write_text_atomic(path, json.dumps(record, indent=2) + "\n", overwrite)


def write_npz_atomic(path, **arrays) -> pathlib.Path:
  """`arrays` as an uncompressed .npz (np.savez)."""
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  return write_bytes_atomic(path, buf.getvalue())
