"""Checkpoints of the train state through orbax (atomic writes, keep policy, resume from latest).

Two kinds of saves share one directory: snapshots every `snapshot_freq` steps are all kept, and
rolling pre-emption saves in between keep only the newest `max_to_keep`. Each checkpoint holds
two items: `state` (the train state) and `data` (the input pipeline's JSON position), so a
resumed run reads the same examples as an uninterrupted one.
"""
import contextlib
import pathlib
import signal
import threading

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging


class CheckpointMismatchError(ValueError):
  """The checkpoint's tree or shapes differ from what the config builds."""


def checkpoint_manager(workdir, *, snapshot_freq: int, max_to_keep: int = 1,
                       read_only: bool = False) -> ocp.CheckpointManager:
  """The manager of workdir/checkpoints; read_only for restoring only (no saves, no cleanup)."""
  directory = pathlib.Path(workdir).resolve() / "checkpoints"
  if read_only:  # orbax warns about every option a read-only manager ignores, and once more
    options = ocp.CheckpointManagerOptions(max_to_keep=None, keep_period=None,
                                           save_interval_steps=0, create=False, read_only=True)
    with _absl_errors_only():
      return ocp.CheckpointManager(directory, options=options)
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, keep_period=snapshot_freq,
                                         create=True)
  return ocp.CheckpointManager(directory, options=options)


@contextlib.contextmanager
def _absl_errors_only():
  """Silences absl's INFO and WARNING lines (orbax's) inside the block."""
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    yield
  finally:
    absl_logging.set_verbosity(level)


def save(manager: ocp.CheckpointManager, state, data_state: dict | None = None) -> None:
  """Saves `state` and the input position `data_state` (JSON; None for states that no input
  produced, e.g. imported weights) at the state's step (async; orbax writes to a temporary dir,
  then renames)."""
  items = {"state": ocp.args.StandardSave(state)}
  if data_state is not None:
    items["data"] = ocp.args.JsonSave(data_state)
  manager.save(int(jax.device_get(state.step)), args=ocp.args.Composite(**items), force=True)


def restore_data_state(manager: ocp.CheckpointManager, step: int) -> dict | None:
  """The input position saved with checkpoint `step`, or None if it has none."""
  with _absl_errors_only():  # orbax warns about each item it is not asked to restore
    if "data" not in manager.item_metadata(step):
      return None
    return manager.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore())).data


def restore_latest(manager: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """The checkpoint of `step` (default: the newest) restored into the structure/shardings of
  `abstract_state`, or None if there is none."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  try:
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
    with _absl_errors_only():  # orbax warns that it leaves the data position unread
      return manager.restore(step, args=args).state
  except (ValueError, KeyError, TypeError) as err:
    raise CheckpointMismatchError(
        f"Checkpoint {step} in {manager.directory} does not match the model built from the config "
        f"({err}). Use the config the run was started with (its workdir holds config.json) or a "
        "new --workdir.") from err


def require_checkpoint(workdir) -> ocp.CheckpointManager:
  """A read-only manager for a workdir that must hold checkpoints (sampling, likelihood)."""
  directory = pathlib.Path(workdir) / "checkpoints"
  if not directory.is_dir() or not any(p.name.isdigit() for p in directory.iterdir()):
    raise FileNotFoundError(f"No checkpoint in {directory}. Train first: python main.py --mode=train "
                            f"--workdir={workdir} --config=...; or use the analytic model "
                            "(configs/gmm_analytic.py), which needs none.")
  return checkpoint_manager(workdir, snapshot_freq=1, read_only=True)


class PreemptionFlag:
  """Set by SIGTERM (how schedulers pre-empt jobs) so the loop can checkpoint and stop cleanly."""

  def __init__(self):
    self._event = threading.Event()
    if threading.current_thread() is threading.main_thread():
      signal.signal(signal.SIGTERM, lambda *_: self._event.set())

  def is_set(self, manager: ocp.CheckpointManager, step: int) -> bool:
    return self._event.is_set() or manager.reached_preemption(step)

