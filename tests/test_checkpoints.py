"""Damaged checkpoints fall back to the newest intact one (a truncated data file, a truncated
_METADATA), with one warning line and the damaged one kept; none intact and a damaged explicit
step are one-line errors; a model mismatch names its first differing path and both shapes in a
short line; and no orbax / asyncio / TensorStore noise reaches stderr. Also --mode=import's
errors for an .npz file and a workdir that is a file."""
import gc
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import load_config
from configs.errors import UserError
from training import checkpoints
from training.state import create_train_state
from workflows.import_released import import_checkpoint

ROOT = pathlib.Path(__file__).resolve().parent.parent
STEPS = (10, 20)
NOISE = ("Traceback", "Task exception", "Exception ignored", "Event loop is closed", "absl",
         "TensorStore")
# What orbax leaves running after a failed read reaches pytest as these warnings (coroutines
# closed at garbage collection, TensorStore callbacks on a closed loop): errors here.
pytestmark = [pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]


@pytest.fixture(autouse=True)
def no_asyncio_log(caplog):
  """No "Task exception was never retrieved" (logged by asyncio when a task is collected)."""
  yield
  gc.collect()
  assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]


def tiny_state(rows: int = 64, step: int = 0):
  """A TrainState of random arrays (random, so that the array data file is the largest file)."""
  keys = jax.random.split(jax.random.key(0), 2)
  params = {"Dense_0": {"kernel": jax.random.normal(keys[0], (rows, 64)), "bias": jnp.zeros(64)},
            "Dense_1": {"kernel": jax.random.normal(keys[1], (64, 2))}}
  state = create_train_state(params, optax.adam(1e-3))
  return state.replace(step=jnp.asarray(step, jnp.int32))


def abstract(rows: int = 64):
  return jax.eval_shape(lambda: tiny_state(rows))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A workdir with checkpoints at STEPS, each with its data position {"position": step}."""
  workdir = tmp_path_factory.mktemp("saved") / "workdir"
  manager = checkpoints.checkpoint_manager(workdir, snapshot_freq=10, max_to_keep=5)
  for step in STEPS:
    checkpoints.save(manager, tiny_state(step=step), {"position": step})
  manager.wait_until_finished()
  manager.close()
  return workdir


@pytest.fixture
def workdir(saved, tmp_path):
  return pathlib.Path(shutil.copytree(saved, tmp_path / "workdir"))


def truncate(path: pathlib.Path) -> None:
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def truncate_data_file(workdir, step: int) -> pathlib.Path:
  """Truncates the largest file of the checkpoint's state (its array data) to half."""
  files = [p for p in (workdir / "checkpoints" / str(step) / "state").rglob("*") if p.is_file()]
  largest = max(files, key=lambda p: p.stat().st_size)
  assert "_METADATA" not in largest.name, largest
  truncate(largest)
  return largest


def truncate_metadata(workdir, step: int) -> None:
  truncate(workdir / "checkpoints" / str(step) / "state" / "_METADATA")


def assert_quiet(text: str) -> None:
  gc.collect()  # what orbax left behind would print now
  for word in NOISE:
    assert word not in text, text


def assert_one_line_fallback(err: str) -> None:
  lines = [line for line in err.splitlines() if line.strip()]
  assert len(lines) == 1, err
  assert "damaged" in lines[0] and "20" in lines[0] and "step 10" in lines[0], lines[0]
  assert "does not match" not in lines[0] and len(lines[0]) < 400, lines[0]


@pytest.mark.parametrize("damage", [truncate_data_file, truncate_metadata])
def test_damaged_newest_falls_back_to_the_older_one_and_keeps_it(workdir, capfd, damage):
  damage(workdir, 20)
  manager = checkpoints.require_checkpoint(workdir)  # read-only, as sample and likelihood use
  try:
    step, state, data_state = checkpoints.restore_newest_intact(manager, abstract(),
                                                                with_data=True)
  finally:
    manager.close()
  assert step == 10 and int(state.step) == 10 and data_state == {"position": 10}
  np.testing.assert_array_equal(state.params["Dense_0"]["kernel"],
                                tiny_state().params["Dense_0"]["kernel"])
  assert (workdir / "checkpoints" / "20" / "state").is_dir()  # never deleted
  out, err = capfd.readouterr()
  assert_one_line_fallback(err)
  assert_quiet(out + err + capfd.readouterr().err)


def test_restore_latest_falls_back_too(workdir, capfd):
  """restore_latest without a step (guidance's classifier, tests) is restore_newest_intact."""
  truncate_data_file(workdir, 20)
  manager = checkpoints.require_checkpoint(workdir)
  try:
    assert int(checkpoints.restore_latest(manager, abstract()).step) == 10
  finally:
    manager.close()
  assert_one_line_fallback(capfd.readouterr().err)


def test_writable_manager_sets_the_damaged_one_aside_and_saves_its_step_again(workdir, capfd):
  """Training resumes from step 10 and must be able to save step 20 again: the damaged 20 is
  renamed to 20.damaged, not deleted."""
  truncate_data_file(workdir, 20)
  manager = checkpoints.checkpoint_manager(workdir, snapshot_freq=10, max_to_keep=5)
  try:
    step, state, data_state = checkpoints.restore_newest_intact(manager, abstract(),
                                                                with_data=True)
    assert (step, data_state) == (10, {"position": 10})
    checkpoints.save(manager, state.replace(step=jnp.asarray(20, jnp.int32)), {"position": 20})
    manager.wait_until_finished()
  finally:
    manager.close()
  names = sorted(p.name for p in (workdir / "checkpoints").iterdir())
  assert names == ["10", "20", "20.damaged"], names
  err = capfd.readouterr().err
  assert_one_line_fallback(err)
  assert "20.damaged" in err
  manager = checkpoints.require_checkpoint(workdir)
  try:
    assert checkpoints.restore_newest_intact(manager, abstract(), with_data=True)[0] == 20
  finally:
    manager.close()


@pytest.mark.parametrize("damage", [truncate_data_file, truncate_metadata])
def test_no_intact_checkpoint_is_a_one_line_error(workdir, capfd, damage):
  for step in STEPS:
    damage(workdir, step)
  manager = checkpoints.require_checkpoint(workdir)
  try:
    with pytest.raises(UserError) as err:
      checkpoints.restore_newest_intact(manager, abstract(), with_data=False)
  finally:
    manager.close()
  assert not isinstance(err.value, checkpoints.CheckpointMismatchError)
  message = err.value.args[0]
  assert "\n" not in message and len(message) < 400, message
  assert "No intact checkpoint" in message and "10" in message and "20" in message, message
  assert all((workdir / "checkpoints" / str(step)).is_dir() for step in STEPS)
  assert_quiet("".join(capfd.readouterr()))


def test_damaged_explicit_step_is_a_one_line_error(workdir, capfd):
  """eval restores the step it is given: no fallback, one line naming the step."""
  truncate_data_file(workdir, 20)
  manager = checkpoints.require_checkpoint(workdir)
  try:
    assert int(checkpoints.restore_latest(manager, abstract(), step=10).step) == 10
    with pytest.raises(checkpoints.DamagedCheckpointError) as err:
      checkpoints.restore_latest(manager, abstract(), step=20)
  finally:
    manager.close()
  message = err.value.args[0]
  assert "\n" not in message and len(message) < 400, message
  assert message.startswith("Checkpoint 20 ") and "is damaged" in message, message
  assert_quiet("".join(capfd.readouterr()))


@pytest.mark.parametrize("rows,found,built", [(32, "(64, 64)", "(32, 64)")])
def test_mismatch_names_the_first_differing_path_and_both_shapes(workdir, capfd, rows, found,
                                                                 built):
  manager = checkpoints.require_checkpoint(workdir)
  try:
    with pytest.raises(checkpoints.CheckpointMismatchError) as err:
      checkpoints.restore_newest_intact(manager, abstract(rows), with_data=True)
  finally:
    manager.close()
  message = err.value.args[0]
  assert "\n" not in message and len(message) < 300, message
  assert "ema_params/Dense_0/kernel" in message, message  # the first in path order
  assert f"checkpoint {found}" in message and f"config {built}" in message, message
  assert "damaged" not in message
  assert_quiet("".join(capfd.readouterr()))


def test_mismatch_of_the_tree_names_the_missing_leaf(workdir):
  wider = jax.eval_shape(lambda: tiny_state().replace(
      ema_params={**tiny_state().ema_params, "Extra_0": {"bias": jnp.zeros(3)}}))
  manager = checkpoints.require_checkpoint(workdir)
  try:
    with pytest.raises(checkpoints.CheckpointMismatchError,
                       match=r"at ema_params/Extra_0/bias: checkpoint missing, config \(3,\)"):
      checkpoints.restore_latest(manager, wider)
  finally:
    manager.close()


def toy_import_config(path):
  return load_config(str(ROOT / "configs/toy.py") + ":swiss_roll,vpsde",
                     {"eval.import_path": str(path)})


def test_import_of_an_npz_file_says_which_formats_are_read(tmp_path):
  np.savez(tmp_path / "weights.npz", w=np.zeros(3))
  with pytest.raises(UserError) as err:
    import_checkpoint(toy_import_config(tmp_path / "weights.npz"), tmp_path / "wd")
  message = err.value.args[0]
  assert "PyTorch" not in message and ".npz" in message, message
  assert "checkpoint_N" in message and "diffusers" in message, message
  assert "\n" not in message and len(message) < 300, message
  assert not (tmp_path / "wd").exists()


def test_import_into_a_workdir_that_is_a_file_is_a_one_line_error(tmp_path):
  (tmp_path / "wd").write_text("not a folder")
  with pytest.raises(UserError, match=r"--workdir=\S*wd is a file"):
    import_checkpoint(toy_import_config(tmp_path / "checkpoint_1"), tmp_path / "wd")
  assert (tmp_path / "wd").read_text() == "not a folder"
