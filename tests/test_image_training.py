"""Tiny image score networks: train steps and sampling give the same results on 1 and 8 devices;
a short digits run lowers the loss and moves sample pixel statistics toward the data's."""
import numpy as np
import pytest

from configs import load_config
from test_training import assert_same_training
from workflows import build, likelihood, sample as sample_mode, train as train_mode
import data_sources

DIGITS = {"data.dataset": "digits", "data.image_size": 8, "data.num_channels": 1,
          "training.batch_size": 16, "sde.num_scales": 4, "sampling.num_steps": 4, "model.dropout": 0.1,
          "sampling.corrector": "none", "sampling.num_samples": 8, "sampling.batch_size": 8}
TINY = {
    "ncsnpp": ("configs/digits.py:vesde", {"model.nf": 16, "model.num_res_blocks": 1}),
    "ddpm": ("configs/vp/ddpm_cifar10.py", {"model.nf": 16, "model.ch_mult": (1, 2),
                                            "model.num_res_blocks": 1,
                                            "model.attn_resolutions": (4,)}),
    "ncsnv2": ("configs/ve/ncsnv2_cifar10.py", {"model.nf": 8}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_network_same_on_one_and_eight_devices(tmp_path, name):
  spec, overrides = TINY[name]
  assert_same_training(tmp_path, spec, {**DIGITS, **overrides})


@pytest.mark.slow
def test_digits_training_moves_samples_toward_data(tmp_path):
  config = load_config("configs/digits.py:vpsde", {
      "training.n_iters": 300, "training.log_freq": 50, "training.snapshot_freq": 300,
      "training.snapshot_freq_for_preemption": 300, "model.nf": 16, "model.num_res_blocks": 1,
      "sde.num_scales": 100, "sampling.num_steps": 100,
      "training.ema_rate": 0.9, "sampling.corrector": "none",
      "sampling.num_samples": 128, "sampling.batch_size": 128, "eval.num_samples": 16,
      "eval.batch_size": 16, "eval.rtol": 1e-3, "eval.atol": 1e-3})
  train_mode(config, tmp_path)
  samples = np.clip(sample_mode(config, tmp_path), -1.0, 1.0)  # the range images are shown in
  data = data_sources.preprocess(build.load_split(config, "test"), is_image=True,
                                 centered=True, uniform_dequantization=False)
  prior = np.clip(np.random.default_rng(0).standard_normal(samples.shape), -1.0, 1.0)
  # Per-pixel mean image and the histogram of pixel values, against the test split's.
  mean_err = lambda x: np.abs(x.mean(0) - data.mean(0)).mean()
  hist = lambda x: np.histogram(x, np.linspace(-1.0, 1.0, 9))[0] / x.size
  hist_err = lambda x: np.abs(hist(x) - hist(data)).sum()
  assert mean_err(samples) < 0.5 * mean_err(prior), (mean_err(samples), mean_err(prior))
  assert hist_err(samples) < 0.5 * hist_err(prior), (hist_err(samples), hist_err(prior))
  # Bits/dim on held-out digits beat 8, the cost of a uniform distribution over pixel values.
  record = likelihood(config, tmp_path)
  assert 0.0 < record["bits_per_dim"] < 8.0, record


@pytest.mark.slow
def test_one_train_step_on_mock_cifar10(tmp_path):
  """The TFDS pipeline end to end: a tiny DDPM++ trains a step on tfds' offline mock CIFAR-10."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config = load_config("configs/vp/ddpmpp_cifar10_continuous.py", {
      "training.batch_size": 4, "training.n_iters": 1, "training.log_freq": 1,
      "model.nf": 16, "model.ch_mult": (1, 2), "model.num_res_blocks": 1,
      "model.attn_resolutions": (16,)})
  with tfds.testing.mock_data(num_examples=8):
    state = train_mode(config, tmp_path)
  assert int(state.step) == 1
  assert np.isfinite(float(np.asarray(
      [float(l.split('"loss": ')[1].split(",")[0]) for l in
       (tmp_path / "metrics.jsonl").read_text().splitlines()][0])))
