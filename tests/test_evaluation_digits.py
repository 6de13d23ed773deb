"""Offline digits metric: a deterministic CNN trained on first use; its Fréchet distance and IS."""
import os
import pathlib
import stat
import subprocess
import sys

import jax
import numpy as np
import pytest

import fileio
from data_sources.images import load_digits
from evaluation import cache, digits_features

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory):
  """A fresh cache directory in which the first `load_digits_net()` has trained and saved."""
  directory = tmp_path_factory.mktemp("cache")
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv(cache.CACHE_ENV, str(directory))
    digits_features.load_digits_net()
  return directory / digits_features.CACHE_NAME


@pytest.fixture(scope="module")
def variables(cache_path):
  return digits_features.read_digits_net(cache_path)


def noisy(images_uint8, sigma, seed=0):
  unit = images_uint8 / 255.0
  noise = np.random.default_rng(seed).normal(size=unit.shape)
  return np.clip(unit + sigma * noise, 0, 1).astype(np.float32)


def test_first_use_trains_and_caches_atomically(cache_path, variables, monkeypatch):
  assert [p.name for p in cache_path.parent.iterdir()] == [cache_path.name]  # no temp file left
  assert stat.S_IMODE(cache_path.stat().st_mode) == 0o666 & ~fileio.current_umask()  # not 0600
  monkeypatch.setenv(cache.CACHE_ENV, str(cache_path.parent))
  monkeypatch.setattr(digits_features, "train_digits_net", lambda: pytest.fail("retrained"))
  again = digits_features.load_digits_net()
  assert all(np.array_equal(a, b)
             for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(variables)))


def test_a_file_of_another_network_is_rejected(tmp_path):
  path = tmp_path / "other.msgpack"
  digits_features.save_digits_net(path, {"params": {"Dense_0": {"kernel": np.zeros((3, 3))}}})
  with pytest.raises(ValueError, match="delete it to retrain"):
    digits_features.read_digits_net(path)


def test_classifier_is_accurate_on_clean_test_digits(variables):
  assert digits_features.digits_accuracy(variables, "test") >= 0.95  # 0.989 when written


def test_labels_are_those_of_the_repositorys_split():
  images, labels = digits_features.labelled_digits("test")
  np.testing.assert_array_equal(images, load_digits("test"))
  assert labels.shape == (359,) and np.array_equal(np.unique(labels), np.arange(10))


def test_frechet_digits_distance_orders_real_light_heavy_noise(variables):
  test = load_digits("test")
  distance = lambda images, input_range: digits_features.frechet_digits_distance(
      images, input_range, variables)
  real = distance(test, "uint8")
  light, heavy = distance(noisy(test, 0.1), "unit"), distance(noisy(test, 0.5), "unit")
  prior = np.random.default_rng(1).normal(size=test.shape).astype(np.float32)  # N(0, I) images
  pure_noise = distance(prior, "symmetric")
  assert 0 < real < light < heavy < pure_noise  # 3.2 < 9.9 < 87 < 407 when written
  assert 2 * real < light and 20 * real < heavy and 50 * real < pure_noise


def test_digits_inception_score_is_high_for_digits_and_low_for_noise(variables):
  test = load_digits("test")
  real, _ = digits_features.digits_inception_score(test, "uint8", variables)
  heavy, _ = digits_features.digits_inception_score(noisy(test, 0.5), "unit", variables)
  assert 8.0 < real <= 10.0 and heavy < real - 1.0  # 8.8 and 6.2 when written


def test_input_ranges_and_sizes_give_the_same_features(variables):
  test = load_digits("test")[:50]
  reference = digits_features.digits_outputs(test, "uint8", variables).features
  symmetric = (test / 127.5 - 1.0).astype(np.float32)
  np.testing.assert_allclose(digits_features.digits_outputs(symmetric, "symmetric", variables)
                             .features, reference, rtol=1e-5, atol=1e-5)
  doubled = test.repeat(2, axis=1).repeat(2, axis=2)  # 16x16: the resize averages 2x2 blocks back
  np.testing.assert_allclose(digits_features.digits_outputs(doubled, "uint8", variables).features,
                             reference, rtol=1e-5, atol=1e-5)


def test_four_devices_give_the_outputs_of_one(cache_path, variables, tmp_path):
  images = load_digits("test")[:10]  # 10 does not divide by 4: padded, then cut
  out = tmp_path / "four.npy"
  code = ("import numpy as np, jax; from evaluation import digits_features as d; "
          "from data_sources.images import load_digits; assert jax.device_count() == 4; "
          f"v = d.read_digits_net({str(cache_path)!r}); "
          f"np.save({str(out)!r}, d.make_digits_fn(v, 'uint8')(load_digits('test')[:10]).logits)")
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(
      os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4"))
  one = digits_features.make_digits_fn(variables, "uint8")(images).logits
  np.testing.assert_allclose(np.load(out), one, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_command_line_training_writes_the_same_bytes_as_first_use(cache_path, tmp_path):
  out = tmp_path / "digits.msgpack"
  subprocess.run([sys.executable, "-m", "evaluation.digits_features", f"--out={out}"], cwd=ROOT,
                 check=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert out.read_bytes() == cache_path.read_bytes()
