"""Checkpoints of the train state through orbax (atomic writes, keep policy, resume from latest).

Two kinds of saves share one directory: snapshots every `snapshot_freq` steps are all kept, and
rolling pre-emption saves in between keep only the newest `max_to_keep`. Each checkpoint holds
two items: `state` (the train state) and `data` (the input pipeline's JSON position), so a
resumed run reads the same examples as an uninterrupted one.

Restoring tells damage from a mismatch. A checkpoint whose files cannot be read (truncated,
missing, not JSON) is damaged: `restore_newest_intact` warns in one line and falls back to the
newest intact one, never deleting the damaged one. A checkpoint whose metadata reads fine but
whose tree or shapes differ from the state the config builds is a mismatch
(CheckpointMismatchError), named by its first differing path and both shapes.
"""
import asyncio
import contextlib
import json
import pathlib
import re
import sys

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from configs.errors import MissingFileError, UserError

# Errors that are bugs or resource limits, never a sign of a damaged checkpoint.
_NOT_DAMAGE = (AttributeError, NameError, AssertionError, NotImplementedError, MemoryError,
               RecursionError)
DAMAGED_SUFFIX = ".damaged"


class CheckpointMismatchError(UserError):
  """The checkpoint's tree or shapes differ from what the config builds."""


class DamagedCheckpointError(UserError):
  """A checkpoint's files cannot be read (truncated, missing, not JSON); `reason` says which."""

  reason = ""


# --- orbax without noise -------------------------------------------------------------------

def _run_sync_finishing_tasks(coro):
  """orbax's `_run_sync_via_new_loop` (orbax-checkpoint 0.12.8), except that when the coroutine
  fails, the loop's other tasks (the reads of the other arrays) are let finish before the loop
  closes. orbax closes it at once, so those tasks print "Task exception was never retrieved",
  "Exception ignored in <coroutine ...>" and TensorStore's "Event loop is closed" tracebacks
  later, from other threads, after the error has been reported cleanly."""
  loop = asyncio.new_event_loop()
  try:
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(coro)
  except BaseException as err:
    pending = asyncio.all_tasks(loop)
    if pending:  # on Ctrl-C, cancel them; else let them finish (reads of local files: soon)
      done, left = set(), pending
      if isinstance(err, Exception):
        done, left = loop.run_until_complete(asyncio.wait(pending, timeout=60))
      for task in left:
        task.cancel()
      if left:
        loop.run_until_complete(asyncio.wait(left, timeout=5))
      for task in done | left:  # retrieve each exception, so that none is logged as unseen
        if task.done() and not task.cancelled():
          task.exception()
    raise
  finally:
    asyncio.set_event_loop(None)
    loop.close()


try:  # orbax-checkpoint is pinned (setup.cfg); a later one without this function runs unchanged
  from orbax.checkpoint._src import asyncio_utils as _orbax_asyncio  # pylint: disable=g-import-not-at-top
except ImportError:
  _orbax_asyncio = None
if getattr(_orbax_asyncio, "_run_sync_via_new_loop", None) is not None:
  _orbax_asyncio._run_sync_via_new_loop = _run_sync_finishing_tasks  # pylint: disable=protected-access


@contextlib.contextmanager
def _orbax_quiet():
  """Silences absl's log lines (orbax's INFO and WARNING ones, and the ERROR lines it logs about
  a damaged file it then raises about) inside the block."""
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    yield
  finally:
    absl_logging.set_verbosity(level)


# --- the manager and saves -----------------------------------------------------------------

def checkpoint_manager(workdir, *, snapshot_freq: int, max_to_keep: int = 1,
                       read_only: bool = False) -> ocp.CheckpointManager:
  """The manager of workdir/checkpoints; read_only for restoring only (no saves, no cleanup)."""
  directory = pathlib.Path(workdir).resolve() / "checkpoints"
  if read_only:  # orbax warns about every option a read-only manager ignores, and once more
    options = ocp.CheckpointManagerOptions(max_to_keep=None, keep_period=None,
                                           save_interval_steps=0, create=False, read_only=True)
  else:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, keep_period=snapshot_freq,
                                           create=True)
  with _orbax_quiet():  # and logs an ERROR line per damaged _CHECKPOINT_METADATA it lists
    return ocp.CheckpointManager(directory, options=options)


def save(manager: ocp.CheckpointManager, state, data_state: dict | None = None) -> None:
  """Saves `state` and the input position `data_state` (JSON; None for states that no input
  produced, e.g. imported weights) at the state's step (async; orbax writes to a temporary dir,
  then renames)."""
  items = {"state": ocp.args.StandardSave(state)}
  if data_state is not None:
    items["data"] = ocp.args.JsonSave(data_state)
  manager.save(int(jax.device_get(state.step)), args=ocp.args.Composite(**items), force=True)


# --- trees: the first difference -----------------------------------------------------------

def _key_name(key) -> str:
  for attribute in ("key", "name", "idx"):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def flat_shapes(tree) -> dict:
  """{'a/b/0/c': shape} of every leaf with a shape (arrays, ShapeDtypeStructs, orbax's array
  metadata), keyed as orbax names them (attributes, dict keys and sequence indices)."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))
  return {"/".join(_key_name(k) for k in path): tuple(getattr(leaf, "shape", ()))
          for path, leaf in leaves}


def natural_key(path: str) -> list:
  """Sorts 'ResnetBlock_2' before 'ResnetBlock_10'."""
  return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", path)]


def differences(found: dict, built: dict) -> list:
  """[(path, found shape or None, built shape or None)] of every differing leaf of two
  flat_shapes, in natural order of the paths (None: the leaf is missing there)."""
  paths = sorted(found.keys() | built.keys(), key=natural_key)
  return [(p, found.get(p), built.get(p)) for p in paths if found.get(p) != built.get(p)]


def _shape(shape) -> str:
  return "missing" if shape is None else str(shape)


# --- restoring -----------------------------------------------------------------------------

def _step_directory(manager: ocp.CheckpointManager, step: int) -> pathlib.Path:
  return pathlib.Path(str(manager.directory)) / str(step)


class _Unreadable(Exception):
  """A file of a checkpoint that is missing or does not parse; its message is the reason."""


# The checkpoint's JSON files (orbax's metadata; `data/metadata` is the input position).
_JSON_FILES = ("_CHECKPOINT_METADATA", "state/_METADATA", "state/_sharding", "data/metadata")


def _check_files(directory: pathlib.Path, with_data: bool) -> None:
  """Raises _Unreadable naming the first of the checkpoint's metadata files that is missing or
  not JSON (a truncated one), before orbax reads them: it misreports some (a truncated
  _METADATA as a tree mismatch) and only logs others (_CHECKPOINT_METADATA)."""
  if not (directory / "state").is_dir():
    raise _Unreadable("its state/ folder is missing")
  if not (directory / "state" / "_METADATA").is_file():
    raise _Unreadable("state/_METADATA is missing")
  names = [*_JSON_FILES, *(f"state/array_metadatas/{p.name}"
                           for p in sorted((directory / "state" / "array_metadatas").glob("*")))]
  for name in names:
    path = directory / name
    if (name.startswith("data/") and not with_data) or not path.is_file():
      continue
    try:
      json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
      raise _Unreadable(f"{name} is truncated or not JSON") from err


# What TensorStore's error codes say about a checkpoint's files.
_TENSORSTORE_CODES = {"OUT_OF_RANGE": ", a truncated file", "NOT_FOUND": ", a missing file",
                      "DATA_LOSS": ", a corrupt file",
                      "FAILED_PRECONDITION": ", a corrupt or missing file"}


def _reason(err: BaseException) -> str:
  """What could not be read, in at most ~100 characters: the file, or the array whose data
  TensorStore could not read (a truncated or missing data file) and its error code."""
  if isinstance(err, _Unreadable):
    return str(err)
  while err.__cause__ is not None:
    err = err.__cause__
  text = " ".join(str(err).split()) or type(err).__name__
  array = re.search(r'Error reading "([^"/]+)/', text)
  if array:
    code = re.match(r"([A-Z_]+):", text)
    code = code.group(1) if code else ""
    return (f"the data of {array.group(1).replace('.', '/')} cannot be read"
            + (f": {code}" if code else "") + _TENSORSTORE_CODES.get(code, ""))
  text = f"{type(err).__name__}: {text}"
  return text if len(text) <= 100 else text[:99] + "…"


def _damaged(step: int, directory: pathlib.Path, err: BaseException) -> DamagedCheckpointError:
  while err.__cause__ is not None and not isinstance(err, _Unreadable):
    err = err.__cause__
  shown = err.__cause__ if isinstance(err, _Unreadable) and err.__cause__ else err
  detail = " ".join(f"{err}: {type(shown).__name__}: {shown}".split()) if shown is not err else (
      " ".join(f"{type(err).__name__}: {err}".split()))
  error = DamagedCheckpointError(f"Checkpoint {step} is damaged ({_reason(err)}).",
                                 f"In {directory}: {detail[:2000]}")
  error.reason = _reason(err)
  return error


def _check_fits(metadata_tree, abstract_state, step: int, directory: pathlib.Path) -> None:
  """Raises CheckpointMismatchError if the checkpoint's tree or shapes differ from
  abstract_state's, naming the first differing path and both shapes."""
  differing = differences(flat_shapes(metadata_tree), flat_shapes(abstract_state))
  if not differing:
    return
  path, found, built = differing[0]
  listed = "; ".join(f"{p}: checkpoint {_shape(f)}, config {_shape(b)}"
                     for p, f, b in differing[:10])
  raise CheckpointMismatchError(
      f"Checkpoint {step} does not match the config's model: first difference at {path}: "
      f"checkpoint {_shape(found)}, config {_shape(built)}. Use the config it was trained with "
      "or a new --workdir.",
      f"{len(differing)} differing leaves in {directory}, the first {min(len(differing), 10)}: "
      f"{listed}")


def _restore_step(manager: ocp.CheckpointManager, step: int, abstract_state, with_data: bool):
  """(state, data_state or None) of checkpoint `step`, read whole.

  Raises DamagedCheckpointError if a file of it cannot be read, CheckpointMismatchError if its
  metadata reads but its tree or shapes differ from abstract_state's."""
  directory = _step_directory(manager, step)
  try:
    _check_files(directory, with_data)
    handler = ocp.StandardCheckpointHandler()
    try:
      with _orbax_quiet():
        metadata = handler.metadata(directory / "state")
    finally:
      handler.close()
  except _NOT_DAMAGE:
    raise
  except Exception as err:  # pylint: disable=broad-except
    raise _damaged(step, directory, err) from err
  _check_fits(metadata.tree, abstract_state, step, directory)
  try:
    data_state = None
    with _orbax_quiet():  # orbax warns about each item it is not asked to restore
      if with_data and (directory / "data").is_dir():
        data_state = manager.restore(step, args=ocp.args.Composite(
            data=ocp.args.JsonRestore())).data
      state = manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state))).state
  except _NOT_DAMAGE:
    raise
  except Exception as err:  # pylint: disable=broad-except
    raise _damaged(step, directory, err) from err
  return state, data_state


def _is_read_only(manager: ocp.CheckpointManager) -> bool:
  options = getattr(manager, "_options", None)
  return getattr(options, "read_only", True)


def _set_aside(manager: ocp.CheckpointManager, steps: list) -> dict:
  """Renames damaged checkpoints `steps` to STEP.damaged (or STEP.damaged-N) beside the others,
  where orbax no longer lists them, so that a resumed run can save those steps again; returns
  {step: new path}. Nothing is deleted."""
  if jax.process_count() > 1:  # every process is done reading them
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices("checkpoints: setting damaged checkpoints aside")
  moved = {}
  for step in steps:
    source = _step_directory(manager, step)
    target, n = source.with_name(f"{step}{DAMAGED_SUFFIX}"), 1
    while target.exists():
      target, n = source.with_name(f"{step}{DAMAGED_SUFFIX}-{n}"), n + 1
    moved[step] = target
    if jax.process_index() == 0:
      source.rename(target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("checkpoints: damaged checkpoints set aside")
  manager.reload()
  return moved


def _warn(message: str) -> None:
  if jax.process_index() == 0:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


def restore_newest_intact(manager: ocp.CheckpointManager, abstract_state,
                          with_data: bool = False):
  """(step, state, data_state) of the newest checkpoint that reads whole, restored into the
  structure/shardings of `abstract_state`; (None, None, None) if there is no checkpoint.

  data_state: the input position saved with that same step (with_data=True; None if it has
  none), else None. Newer checkpoints that are damaged (unreadable, truncated or missing files,
  bad metadata) are skipped with a one-line warning naming them and the step used. They are never
  deleted; a writable manager (training resumes and saves those steps again) renames them to
  STEP.damaged. Raises DamagedCheckpointError if every checkpoint is damaged, and
  CheckpointMismatchError if the newest readable one does not fit abstract_state."""
  steps = sorted(manager.all_steps(), reverse=True)
  damaged = []
  for step in steps:
    try:
      state, data_state = _restore_step(manager, step, abstract_state, with_data)
    except DamagedCheckpointError as err:
      damaged.append((step, err))
      continue
    if damaged:
      kept = [_step_directory(manager, s) for s, _ in damaged]
      if not _is_read_only(manager):
        kept = list(_set_aside(manager, [s for s, _ in damaged]).values())
      _warn(f"{_which(damaged)} damaged ({damaged[0][1].reason}); restored step {step}, the "
            f"newest intact one. Kept, not deleted: {', '.join(str(p) for p in kept)}")
    return step, state, data_state
  if not damaged:
    return None, None, None
  raise DamagedCheckpointError(
      f"No intact checkpoint: {_which(damaged)} damaged ({damaged[0][1].reason}). Nothing was "
      "deleted; train in a new --workdir.",
      f"In {manager.directory}: " + " ".join(f"[{err.args[0]} {err.detail}]" for _, err in damaged))


def _listed(steps) -> str:
  """'none', or the steps in order, the newest 5 of them: '…, 30, 40, 50, 60, 70'."""
  steps = sorted(steps)
  return ", ".join(["…"] * (len(steps) > 5) + [str(s) for s in steps[-5:]]) or "none"


def _which(damaged: list) -> str:
  """'checkpoint 20 is' or 'checkpoints 30, 20 are' (the first one's reason follows)."""
  if len(damaged) == 1:
    return f"checkpoint {damaged[0][0]} is"
  return f"checkpoints {', '.join(str(s) for s, _ in damaged)} are"


def restore_latest(manager: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """The checkpoint of `step` restored into the structure/shardings of `abstract_state`; by
  default the newest intact one (restore_newest_intact), or None if there is none.

  An explicit `step` that is damaged raises DamagedCheckpointError; one that does not fit
  abstract_state raises CheckpointMismatchError."""
  if step is None:
    return restore_newest_intact(manager, abstract_state)[1]
  if step not in manager.all_steps():
    raise MissingFileError(f"No checkpoint {step} in {manager.directory}; its checkpoints: "
                           f"{_listed(manager.all_steps())}.")
  try:
    return _restore_step(manager, step, abstract_state, with_data=False)[0]
  except DamagedCheckpointError as err:
    others = [s for s in manager.all_steps() if s != step]
    error = DamagedCheckpointError(
        f"Checkpoint {step} is damaged ({err.reason}); restore another step (the other "
        f"checkpoints: {_listed(others)}).", err.detail)
    error.reason = err.reason
    raise error from err


def require_checkpoint(workdir) -> ocp.CheckpointManager:
  """A read-only manager for a workdir that must hold checkpoints (sampling, likelihood)."""
  directory = pathlib.Path(workdir) / "checkpoints"
  if not directory.is_dir() or not any(p.name.isdigit() for p in directory.iterdir()):
    raise MissingFileError(f"No checkpoint in {workdir}: train first (--mode=train), or use the "
                           "analytic model (configs/gmm_analytic.py), which needs none.",
                           f"Looked for numbered checkpoints in {directory}.")
  return checkpoint_manager(workdir, snapshot_freq=1, read_only=True)

