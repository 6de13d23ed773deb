"""--mode=sample with sampling.task in {inpaint, colorize, super_resolution}: the analytic mixture
from the command line (no training), digits with an untrained tiny network (shapes and the
known-pixel exactness), and one-line errors for bad input."""
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from configs import load_config
from training import checkpoints
from workflows import build, outputs, sample as sample_mode

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY_DIGITS = {"model.nf": 8, "model.ch_mult": (1,), "model.num_res_blocks": 1,
               "model.attn_resolutions": (), "sampling.num_steps": 3,
               "sampling.inverse.num_inputs": 3, "sampling.inverse.samples_per_input": 2,
               "sampling.batch_size": 4}


def run_main(*args):
  return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                        text=True, check=False)


def test_gmm_inpainting_from_the_command_line(tmp_path):
  result = run_main("--config=configs/gmm_analytic.py:vpsde", f"--workdir={tmp_path}",
                    "--mode=sample", "--config.sampling.task=inpaint",
                    "--config.sampling.num_steps=50", "--config.sampling.inverse.num_inputs=5",
                    "--config.sampling.inverse.samples_per_input=3",
                    "--config.sampling.batch_size=8")
  assert result.returncode == 0, result.stderr
  config = load_config("configs/gmm_analytic.py:vpsde")
  written = tmp_path / "samples" / f"inpaint_replacement_{config.sampling.method}_50.npz"
  assert str(written) in result.stdout, result.stdout  # the path written is printed
  with np.load(written) as out:
    samples, inputs, y, mask = out["samples"], out["inputs"], out["observations"], out["masks"]
  assert samples.shape == (5, 3, 2) and inputs.shape == (5, 2) and mask.tolist() == [True, False]
  np.testing.assert_array_equal(inputs, build.load_split(config, "test")[:5])
  np.testing.assert_array_equal(samples[..., 0], np.repeat(inputs[:, None, 0], 3, axis=1))
  np.testing.assert_array_equal(y[:, 0], inputs[:, 0])
  assert np.all(np.isfinite(samples)) and np.ptp(samples[..., 1], axis=1).min() > 0
  assert written.with_suffix(".png").is_file()


def untrained_workdir(workdir: pathlib.Path, config) -> pathlib.Path:
  """workdir with config.json and the step-0 checkpoint of config's freshly initialised model."""
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  state = build.state_initializer(config, score_model, build.build_optimizer(config))(
      jax.random.key(0))
  manager = checkpoints.checkpoint_manager(workdir, snapshot_freq=1)
  checkpoints.save(manager, state)
  manager.wait_until_finished()
  manager.close()
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  return workdir


@pytest.fixture(scope="module")
def digits_workdir(tmp_path_factory):
  """A workdir holding an untrained tiny NCSN++'s checkpoint (step 0)."""
  return untrained_workdir(tmp_path_factory.mktemp("digits"),
                           load_config("configs/digits.py:vpsde", TINY_DIGITS))


@pytest.mark.slow  # CI budget, 20-33 s: a CLI process on digits
def test_cfg_with_inpainting_on_digits_from_the_command_line(tmp_path):
  """Classifier-free guidance and inpainting in one run (--config=WORKDIR: its recorded config):
  the observed pixels are the inputs' bit for bit, each sample has its label (i % 10)."""
  config = load_config("configs/digits.py:vpsde", {**TINY_DIGITS, "model.class_conditional": True})
  workdir = untrained_workdir(tmp_path, config)
  result = run_main(f"--workdir={workdir}", "--mode=sample", "--config.sampling.task=inpaint",
                    "--config.sampling.guidance.method=cfg", "--config.sampling.guidance.scale=2",
                    "--config.sampling.inverse.mask=half")
  assert result.returncode == 0, result.stderr
  written = workdir / "samples" / f"inpaint_cfg_all_scale2_replacement_{config.sampling.method}_3.npz"
  with np.load(written) as out:
    x, inputs, mask, labels = out["samples"], out["inputs"], out["masks"], out["labels"]
  assert x.shape == (3, 2, 8, 8, 1) and mask.sum() == 32
  np.testing.assert_array_equal(np.where(mask, x, 0.0),
                                np.where(mask, np.repeat(inputs[:, None], 2, axis=1), 0.0))
  np.testing.assert_array_equal(labels, np.arange(6) % 10)


@pytest.mark.parametrize("task, extra", [
    ("inpaint", {"sampling.inverse.mask": "box", "sampling.inverse.mask_box_size": 4}),
    ("super_resolution", {"sampling.inverse.sr_factor": 2})])
def test_digits_inverse_problems_keep_the_observation(digits_workdir, task, extra):
  config = load_config("configs/digits.py:vpsde", {**TINY_DIGITS, "sampling.task": task, **extra})
  out = sample_mode(config, digits_workdir)
  x, inputs, y = out["samples"], out["inputs"], out["observations"]
  assert x.shape == (3, 2, 8, 8, 1) and inputs.shape == (3, 8, 8, 1)
  if task == "inpaint":
    mask = out["masks"]
    assert mask.shape == (8, 8, 1) and mask.sum() == 64 - 16
    np.testing.assert_array_equal(np.where(mask, x, 0.0),
                                  np.where(mask, np.repeat(inputs[:, None], 2, axis=1), 0.0))
    np.testing.assert_array_equal(y, np.where(mask, inputs, 0.0))
  else:
    assert y.shape == (3, 4, 4, 1)
    pooled = x.reshape(3, 2, 4, 2, 4, 2, 1).mean(axis=(3, 5))
    rounding = 8 * np.finfo(np.float32).eps * max(1.0, np.abs(x).max())  # of the pooled sums
    np.testing.assert_allclose(pooled, np.repeat(y[:, None], 2, axis=1), atol=rounding)
  written = outputs.latest_sample_output(digits_workdir, config.sampling)  # another test's too
  assert written.name.startswith(f"{task}_replacement_{config.sampling.method}_3")
  grid = np.asarray(Image.open(written.with_suffix(".png")))
  assert grid.shape[0] > grid.shape[1] / 4 * 0.5  # 3 rows of [observation | 2 samples | truth]
  with np.load(written) as saved:
    np.testing.assert_array_equal(saved["samples"], x)


def test_inputs_from_an_npz_file(digits_workdir, tmp_path):
  images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 1), dtype=np.uint8)
  np.savez(tmp_path / "in.npz", inputs=images)
  config = load_config("configs/digits.py:vpsde", {
      **TINY_DIGITS, "sampling.task": "inpaint", "sampling.inverse.mask": "half",
      "sampling.inverse.inputs_from": "file",
      "sampling.inverse.inputs_path": str(tmp_path / "in.npz")})
  out = sample_mode(config, digits_workdir)
  np.testing.assert_allclose(out["inputs"], images / 255.0 * 2.0 - 1.0, atol=1e-6)
  np.testing.assert_array_equal(out["samples"][:, :, :, :4], np.repeat(
      out["inputs"][:, None, :, :4], 2, axis=1))


@pytest.mark.parametrize("overrides, message", [
    ({"sampling.task": "colorize"}, "RGB"),
    ({"sampling.task": "deblur"}, "unconditional.*colorize"),
    ({"sampling.task": "class_conditional"}, "guidance.method=classifier"),
    ({"sampling.task": "inpaint", "sampling.inverse.mask": "circle"}, "half"),
    ({"sampling.task": "inpaint", "sampling.inverse.mask": "file"},  # the message, not path '.'
     "^A 'file' mask needs sampling.inverse.mask_path=PNG_OR_NPZ. "
     "Set --config.sampling.inverse.mask_path=...$"),
    ({"sampling.task": "inpaint", "sampling.inverse.method": "ddrm"}, "repaint"),
    ({"sampling.task": "inpaint", "sampling.inverse.method": "repaint"},
     "sampling.method=repaint"),  # RePaint is a solver now
    ({"sampling.task": "inpaint", "sampling.inverse.observation_noise": 0.1},
     "noise-free.*pigdm"),
    ({"sampling.task": "inpaint", "sampling.inverse.method": "dps"},
     "inverse.observation_noise > 0"),
    ({"sampling.task": "inpaint", "sampling.method": "ode"}, "grid solver"),
    ({"sampling.task": "inpaint", "sampling.inverse.inputs_from": "web"}, "file"),
    ({"sampling.task": "inpaint", "sampling.inverse.num_inputs": 0},
     "sampling.inverse.num_inputs=0"),
    ({"sampling.task": "super_resolution", "sampling.inverse.sr_factor": 3}, "divide")])
def test_bad_inverse_settings_are_rejected(tmp_path, overrides, message):
  config = load_config("configs/digits.py:vpsde", {**TINY_DIGITS, **overrides})
  with pytest.raises(ValueError, match=message):
    sample_mode(config, tmp_path)


def test_a_mask_of_the_wrong_shape_is_one_line_from_main(tmp_path):
  np.savez(tmp_path / "mask.npz", mask=np.ones((5, 5), bool))
  result = run_main("--config=configs/digits.py:vpsde", f"--workdir={tmp_path}", "--mode=sample",
                    "--config.sampling.task=inpaint", "--config.sampling.inverse.mask=file",
                    f"--config.sampling.inverse.mask_path={tmp_path / 'mask.npz'}")
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert "mask has shape (5, 5, 1)" in lines[-1] and "(8, 8, 1)" in lines[-1], result.stderr
