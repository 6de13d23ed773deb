"""--mode=import of released score_sde checkpoints, against checkpoints and outputs the released
code itself wrote (shared/fixtures/score_sde_checkpoints, commit 0acb9e0, 16x16 models):
network outputs, scores and noise labels at the fixtures' (x, t), the Adam state, resuming
training, and the errors for a wrong config, a missing file and a file of another kind."""
import json
import pathlib
import re
import shutil
import subprocess
import sys

import flax.serialization
import flax.traverse_util as traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import load_config
from configs.errors import UserError
from parallel import DataParallel
from training import checkpoints
from training.checkpoints import CheckpointMismatchError
from workflows import build, import_released, likelihood
from workflows import sample as sample_mode, train as train_mode
from workflows.import_released import import_checkpoint
from workflows.sample import draw_samples, make_sample_fn

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "score_sde_checkpoints"
if not FIXTURES.is_dir():
  pytest.skip(f"No released-checkpoint fixtures at {FIXTURES} (the shared/ folder beside the "
              "repository).", allow_module_level=True)
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.json").is_file())
CKPT = "checkpoint_1234"


def released_to_ours() -> dict:
  """Released config path -> ours, from our configs' docstrings ('Released code: PATH')."""
  table = {}
  for f in sorted((ROOT / "configs").rglob("*.py")):
    match = re.search(r"Released code: (configs/\S+?\.py)", f.read_text())
    if match:
      table[match.group(1)] = str(f.relative_to(ROOT))
  return table


def case_config(case: str, **overrides):
  """Our config for a fixture case: its reference config with its model and data overrides."""
  info = json.loads((FIXTURES / case / "case.json").read_text())
  values = {f"model.{k}": tuple(v) if isinstance(v, list) else v
            for k, v in info["model_overrides"].items()}
  values.update({f"data.{k}": v for k, v in info["data_overrides"].items()})
  values["eval.import_path"] = str(FIXTURES / case / CKPT)
  values.update(overrides)
  return load_config(str(ROOT / released_to_ours()[info["reference_config"]]), values)


def released_state(case: str) -> dict:
  return flax.serialization.msgpack_restore((FIXTURES / case / CKPT).read_bytes())


def restore_state(config, workdir):
  """The full TrainState of workdir's newest checkpoint, as train would restore it."""
  sde = build.build_sde(config)
  init = build.state_initializer(config, build.build_score_model(config, sde),
                                 build.build_optimizer(config))
  sharding = DataParallel.over_all_devices().replicated
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                          jax.eval_shape(init, jax.random.key(0)))
  manager = checkpoints.require_checkpoint(workdir)
  state = checkpoints.restore_latest(manager, abstract)
  manager.close()
  return state


def released_network_output(config, raw, labels):
  """What the released network returns: with model.scale_by_sigma (VE) it divides by sigma
  itself, the label (continuous: labels are sigmas) or get_sigmas()[label] (discrete)."""
  if not config.model.scale_by_sigma:
    return raw
  s = config.sde
  descending = np.exp(np.linspace(np.log(s.sigma_max), np.log(s.sigma_min), s.num_scales))
  sigmas = labels if config.training.continuous else descending[labels.astype(int)]
  return raw / sigmas.reshape(-1, 1, 1, 1)


def assert_close(actual, expected):
  """rtol = atol = 1e-5, atol in units of each example's RMS where that exceeds 1: float32
  rounding error grows with the output's scale (VE outputs ~ 1 / sigma reach ~100 here), and the
  released float32 outputs themselves differ by ~2.5e-6 RMS from our network run in float64."""
  expected = np.asarray(expected)
  rms = np.sqrt(np.mean(np.square(expected), axis=tuple(range(1, expected.ndim)), keepdims=True))
  np.testing.assert_array_less(np.abs(np.asarray(actual) - expected),
                               1e-5 * np.abs(expected) + 1e-5 * np.maximum(rms, 1.0))


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
  """case -> (config, workdir) imported through the library function --mode=import calls."""
  result = {}
  for case in CASES:
    config, workdir = case_config(case), tmp_path_factory.mktemp(case) / "workdir"
    import_checkpoint(config, workdir)
    result[case] = (config, workdir)
  return result


def check_released_outputs(config, workdir, case):
  """Network output, score and labels of workdir's EMA params at the fixture's (x, t)."""
  expected = np.load(FIXTURES / case / "expected.npz")
  x, t, labels = (jnp.asarray(expected[k]) for k in ("x", "t", "labels"))
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model,
                                   DataParallel.over_all_devices().replicated)
  raw = jax.jit(score_model.network.apply)({"params": params}, x, labels)
  assert_close(released_network_output(config, np.asarray(raw), expected["labels"]),
               expected["net_out"])
  assert_close(jax.jit(score_model.score)(params, x, t), expected["score"])
  np.testing.assert_array_equal(score_model.parameterization.precondition(t).c_noise,
                                expected["labels"].astype(np.float32))


@pytest.mark.parametrize("case", CASES)
def test_imported_model_gives_released_outputs(imported, case):
  check_released_outputs(*imported[case], case)


@pytest.mark.parametrize("case", CASES)
def test_imported_state_holds_released_params_and_adam_moments(imported, case):
  config, workdir = imported[case]
  state, released = restore_state(config, workdir), released_state(case)
  flat = traverse_util.flatten_dict
  moments = flat(released["optimizer"]["state"]["param_states"])
  moment = lambda name: {path[:-1]: v for path, v in moments.items() if path[-1] == name}
  trees = {"params": (flat(state.params), flat(released["optimizer"]["target"])),
           "ema_params": (flat(state.ema_params), flat(released["params_ema"])),
           "mu": (flat(optax.tree_utils.tree_get(state.opt_state, "mu")), moment("grad_ema")),
           "nu": (flat(optax.tree_utils.tree_get(state.opt_state, "nu")), moment("grad_sq_ema"))}
  for name, (ours, theirs) in trees.items():
    assert ours.keys() == theirs.keys(), name
    for path, value in theirs.items():
      np.testing.assert_array_equal(ours[path], value, err_msg=f"{name} {path}")
  counts = optax.tree_utils.tree_get_all_with_path(state.opt_state, "count")
  assert len(counts) == (2 if config.optim.warmup else 1)  # Adam; the warm-up schedule
  assert {int(c) for _, c in counts} == {released["optimizer"]["state"]["step"]} == {1234}
  assert int(state.step) == released["step"] == 1234
  assert json.loads((workdir / "config.json").read_text())["eval"]["import_path"].endswith(CKPT)


def test_labels_are_the_released_conventions():
  """The fixtures span the conventions: sigma(t), rounded indices, 999 t and t (N - 1)."""
  kinds = {case: case_config(case) for case in CASES}
  names = {case: type(build.build_parameterization(c, build.build_sde(c))).__name__
           for case, c in kinds.items()}
  assert set(names.values()) == {"VEContinuous", "VEDiscrete", "VPContinuous", "VPDiscrete"}


def _first_difference(message: str):
  match = re.search(r"first difference at (\S+): checkpoint (\(.*?\)|missing), "
                    r"config (\(.*?\)|missing)", message)
  assert match, message
  return match.groups()


@pytest.mark.parametrize("case", CASES)
def test_wrong_nf_names_the_first_differing_path_and_the_nf(tmp_path, case):
  nf = json.loads((FIXTURES / case / "case.json").read_text())["model_overrides"]["nf"]
  with pytest.raises(CheckpointMismatchError) as err:
    import_checkpoint(case_config(case, **{"model.nf": 2 * nf}), tmp_path / "wd")
  path, found, built = _first_difference(str(err.value))
  leaf = traverse_util.flatten_dict(released_state(case)["params_ema"])[tuple(path.split("/"))]
  assert found == str(tuple(leaf.shape)) and found != built
  assert f"Likely: model.nf={nf}." in str(err.value)
  assert not (tmp_path / "wd").exists()


@pytest.mark.parametrize("overrides,advice", [
    ({"model.num_res_blocks": 2}, "'deep' config"),
    ({"training.continuous": False, "model.embedding_type": "positional"}, "'fourier'"),
])
def test_wrong_config_advises_deep_or_continuous(tmp_path, overrides, advice):
  with pytest.raises(CheckpointMismatchError, match=advice):
    import_checkpoint(case_config("ve_ncsnpp_continuous", **overrides), tmp_path / "wd")


def test_missing_file_and_files_of_other_kinds(tmp_path):
  config = lambda path: case_config("ve_ncsnpp_continuous", **{"eval.import_path": str(path)})
  with pytest.raises(FileNotFoundError, match="No checkpoint file"):
    import_checkpoint(config(tmp_path / "checkpoint_24"), tmp_path / "wd")
  with pytest.raises(FileNotFoundError, match=f"folder of score_sde checkpoints.*{CKPT}"):
    import_checkpoint(config(FIXTURES / "ve_ncsnpp_continuous"), tmp_path / "wd")
  files = {"random.bin": (np.random.default_rng(0).bytes(1000), "not msgpack"),
           "checkpoint_24.pth": (b"PK\x03\x04" + bytes(100), "PyTorch"),
           "other.msgpack": (flax.serialization.msgpack_serialize({"params": np.zeros(3)}),
                             "no \\['step', 'optimizer', 'params_ema'\\]")}
  for name, (data, message) in files.items():
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=f"not a score_sde checkpoint.*{message}"):
      import_checkpoint(config(tmp_path / name), tmp_path / "wd")
  assert not (tmp_path / "wd").exists()
  with pytest.raises(ValueError, match="import_path"):
    import_checkpoint(config(""), tmp_path / "wd")


def test_never_writes_into_a_used_workdir_nor_leaves_half_of_one(tmp_path, monkeypatch):
  config = case_config("vp_ddpmpp_continuous")
  (tmp_path / "used").mkdir()
  (tmp_path / "used" / "metrics.jsonl").write_text("{}\n")
  with pytest.raises(UserError, match="not empty"):
    import_checkpoint(config, tmp_path / "used")

  def interrupted(*_):
    raise KeyboardInterrupt
  monkeypatch.setattr(import_released.checkpoints, "save", interrupted)
  with pytest.raises(KeyboardInterrupt):
    import_checkpoint(config, tmp_path / "wd")
  assert not (tmp_path / "wd").exists()
  monkeypatch.undo()
  import_checkpoint(config, tmp_path / "wd")  # cleans up the interrupted staging folder
  assert sorted(p.name for p in tmp_path.iterdir()) == ["used", "wd"]


def test_main_import_command_then_released_outputs(tmp_path):
  case = "vp_ddpmpp_continuous"
  info = json.loads((FIXTURES / case / "case.json").read_text())
  flags = [f"--config.model.{k}={tuple(v) if isinstance(v, list) else v}"
           for k, v in info["model_overrides"].items()]
  result = subprocess.run(
      [sys.executable, "main.py", "--mode=import", f"--workdir={tmp_path / 'wd'}",
       f"--config={released_to_ours()[info['reference_config']]}",
       f"--config.eval.import_path={FIXTURES / case / CKPT}", "--config.data.image_size=16",
       *flags], cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  check_released_outputs(case_config(case), tmp_path / "wd", case)


@pytest.mark.slow
@pytest.mark.usefixtures("compile_without_llvm_optimisation")  # a full-size train step's compile
@pytest.mark.parametrize("case", CASES)
def test_training_resumes_from_an_imported_checkpoint(imported, tmp_path, case):
  """One train step from an imported workdir; Adam continues from the released moments."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  shutil.copytree(imported[case][1], tmp_path / "wd")
  config = case_config(case, **{"training.n_iters": 1235, "training.batch_size": 4,
                                "training.log_freq": 1})
  before = restore_state(config, tmp_path / "wd")
  with tfds.testing.mock_data(num_examples=8):
    after = train_mode(config, tmp_path / "wd")
  assert int(after.step) == 1235
  counts = optax.tree_utils.tree_get_all_with_path(after.opt_state, "count")
  assert {int(c) for _, c in counts} == {1235}
  get = lambda state, name: optax.tree_utils.tree_get(state.opt_state, name)
  # Adam: mu' = b1 mu + (1 - b1) g with |g| <= grad_clip, nu' = b2 nu + (1 - b2) g^2 >= b2 nu.
  if config.optim.grad_clip >= 0:
    step = jax.tree.map(lambda new, old: new - 0.9 * old, get(after, "mu"), get(before, "mu"))
    assert float(optax.global_norm(step)) <= 0.1 * config.optim.grad_clip * (1 + 1e-4)
    # From a fresh state |mu' - 0.9 mu| >= 0.9 |mu| - 0.1 grad_clip: above the bound here.
    assert float(optax.global_norm(get(before, "mu"))) > 0.25 * config.optim.grad_clip
  assert all(jax.tree.leaves(jax.tree.map(lambda new, old: bool(jnp.all(new >= 0.999 * old)),
                                          get(after, "nu"), get(before, "nu"))))


@pytest.mark.slow
def test_sample_and_likelihood_modes_use_the_imported_workdir(imported):
  """--mode=sample on the workdir draws what the released EMA params draw; likelihood runs."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  case = "vp_ddpmpp_continuous"
  config = case_config(case, **{"sampling.num_steps": 3, "sampling.num_samples": 2,
                                "sampling.batch_size": 2, "eval.num_samples": 2,
                                "eval.batch_size": 2, "eval.rtol": 1e-2, "eval.atol": 1e-2})
  workdir = imported[case][1]
  samples = sample_mode(config, workdir)["samples"]
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  released = jax.tree.map(jnp.asarray, released_state(case)["params_ema"])
  parallel = DataParallel.over_all_devices()
  direct = draw_samples(make_sample_fn(config, sde, score_model, parallel), {"score": released},
                        parallel, config.sampling.batch_size, 2)[0]
  np.testing.assert_allclose(samples, direct, rtol=1e-5, atol=1e-5)
  with tfds.testing.mock_data(num_examples=4):
    record = likelihood(config, workdir)
  assert np.isfinite(record["bits_per_dim"]), record
