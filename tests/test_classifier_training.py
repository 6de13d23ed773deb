"""--mode=train_classifier: same params on 1 and 8 devices, exact resume, and a classifier that
learns p_t(y | x) of a labelled mixture, checked against the exact (Bayes) classifier."""
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs import load_config
from workflows import build, guidance
from workflows.train_classifier import train_classifier

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = "configs/toy.py:gmm,vpsde"
SMALL = {"classifier.batch_size": 64, "classifier.nf": 32, "classifier.num_layers": 2,
         "training.log_freq": 5, "training.snapshot_freq": 10,
         "training.snapshot_freq_for_preemption": 5}


def run_steps(tmp_path, devices: int, overrides: dict) -> dict:
  out = tmp_path / f"classifier_{devices}.npz"
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu")
  args = [f"{k}={v!r}" for k, v in overrides.items()]
  subprocess.run([sys.executable, "tests/classifier_steps_script.py", str(out), SPEC, *args],
                 cwd=ROOT, env=env, check=True, capture_output=True)
  return dict(np.load(out))


@pytest.mark.slow  # CI budget, 15-21 s: two subprocesses
def test_eight_devices_train_the_classifier_like_one(tmp_path):
  one, eight = run_steps(tmp_path, 1, SMALL), run_steps(tmp_path, 8, SMALL)
  assert int(one["devices"]) == 1 and int(eight["devices"]) == 8
  assert int(one["compiles"]) == 1 and int(eight["compiles"]) == 1
  assert one.keys() == eight.keys() and any("Dense" in k for k in one)
  for key in set(one) - {"devices", "compiles"}:
    np.testing.assert_allclose(one[key], eight[key], rtol=2e-5, atol=2e-6, err_msg=key)


def config(**overrides):
  return load_config(SPEC, {**SMALL, **overrides})


def test_resume_gives_same_classifier_as_uninterrupted(tmp_path):
  full = train_classifier(config(**{"classifier.n_iters": 20}), tmp_path / "full")
  train_classifier(config(**{"classifier.n_iters": 10}), tmp_path / "split")
  resumed = train_classifier(config(**{"classifier.n_iters": 20}), tmp_path / "split")
  assert int(resumed.step) == 20
  for a, b in zip(jax.tree.leaves((full.params, full.ema_params)),
                  jax.tree.leaves((resumed.params, resumed.ema_params))):
    np.testing.assert_array_equal(a, b)
  directory = tmp_path / "split" / "classifier"
  assert sorted(p.name for p in (directory / "checkpoints").iterdir()) == ["10", "20"]
  assert (directory / "classifier.json").is_file() and (directory / "config.json").is_file()


def cross_entropy(log_probs_fn, x, y, t):
  """Mean -log p_t(y | x_t) over x_t ~ p_0t(. | x): x (N, D), y (N,), t scalar."""
  sde = build.build_sde(config())
  tt = jnp.full((len(x),), t)
  mean, std = sde.marginal_prob(jnp.asarray(x), tt)
  x_t = mean + std[:, None] * jax.random.normal(jax.random.key(7), x.shape)
  return float(-jnp.mean(jnp.take_along_axis(log_probs_fn(x_t, tt), jnp.asarray(y)[:, None], 1)))


def test_classifier_learns_the_bayes_classifier_of_a_mixture(tmp_path):
  """300 steps: at t = eps the test cross-entropy falls from ~ln 2 to within 0.05 nats of the
  exact classifier's; at larger t it follows the exact one as the classes merge."""
  cfg = config(**{"classifier.n_iters": 300, "classifier.batch_size": 256,
                  "training.snapshot_freq": 300, "training.snapshot_freq_for_preemption": 300,
                  "training.log_freq": 100, "training.ema_rate": 0.9})
  state = train_classifier(cfg, tmp_path)
  sde = build.build_sde(cfg)
  classifier = guidance.build_classifier(cfg, sde)
  exact = models.AnalyticGMMClassifier(sde, build.build_mixture(cfg.data))
  x, y = build.load_split(cfg, "test"), build.load_labels(cfg, "test")
  trained = jax.jit(lambda x_t, t: classifier.log_probs(state.ema_params, x_t, t))
  initial_params = classifier.init(jax.random.key(0), jnp.zeros((1, 2)))
  initial = cross_entropy(lambda x_t, t: classifier.log_probs(initial_params, x_t, t), x, y, 1e-5)
  assert abs(initial - np.log(2)) < 0.3, initial
  for t in (1e-5, 0.3, 0.6, 1.0):
    ce, bayes = cross_entropy(trained, x, y, t), cross_entropy(lambda *a: exact.log_probs({}, *a),
                                                               x, y, t)
    print(f"t={t}: cross-entropy {ce:.4f}, exact classifier {bayes:.4f}")
    assert ce < bayes + 0.05, (t, ce, bayes)
  assert cross_entropy(trained, x, y, 1e-5) < np.log(2) - 0.4
  assert cross_entropy(trained, x, y, 1.0) > np.log(2) - 0.05  # no signal left at T


def test_analytic_classifier_has_nothing_to_train(tmp_path):
  with pytest.raises(ValueError, match="nothing to train"):
    train_classifier(load_config("configs/gmm_analytic.py:vpsde"), tmp_path)


def test_dataset_without_labels_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="has no class labels"):
    train_classifier(load_config("configs/toy.py:two_moons,vpsde", SMALL), tmp_path)
