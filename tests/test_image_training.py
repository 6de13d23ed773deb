"""Tiny image score networks: train steps and sampling give the same results on 1 and 8 devices;
one train step through the TFDS pipeline. (A trained digits model's samples and bits/dim against
the data: tests/test_digits_guidance.py, on the model it trains.)"""
import numpy as np
import pytest

from configs import load_config
from test_training import assert_same_training
from workflows import train as train_mode

DIGITS = {"data.dataset": "digits", "data.image_size": 8, "data.num_channels": 1,
          "training.batch_size": 16, "sde.num_scales": 4, "sampling.num_steps": 4, "model.dropout": 0.1,
          "sampling.num_samples": 8, "sampling.batch_size": 8}
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
  assert_same_training(tmp_path, spec, {**DIGITS, **overrides}, fast_compile=True,
                       likelihood=False)  # image networks' ODE solves: test_training's MLPs


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
