"""The network-to-score wrapper: labels and output scaling for each SDE (released code's get_score_fn)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sde_lib
from models.score import NetworkScore


class EchoLabels(nn.Module):
  """Outputs the noise label in every entry, so the wrapper's label and scale are visible."""

  @nn.compact
  def __call__(self, x, labels, train=False):
    return jnp.ones_like(x) * labels.reshape((-1,) + (1,) * (x.ndim - 1))


VE = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
VP = sde_lib.VPSDE(N=1000)
SUBVP = sde_lib.SubVPSDE(N=1000)
X = jnp.zeros((3, 4, 4, 1))
T = jnp.array([0.1, 0.5, 1.0])


def score(sde, continuous, scale_by_sigma=False):
  model = NetworkScore(sde, EchoLabels(), continuous=continuous, scale_by_sigma=scale_by_sigma)
  return np.asarray(model.score({}, X, T))[:, 0, 0, 0]


def test_ve_continuous_label_is_sigma_and_output_divided_by_sigma():
  sigma = 0.01 * (50.0 / 0.01) ** np.asarray(T)
  np.testing.assert_allclose(score(VE, True, scale_by_sigma=False), sigma, rtol=1e-5)
  np.testing.assert_allclose(score(VE, True, scale_by_sigma=True), 1.0, rtol=1e-5)


def test_ve_discrete_label_indexes_descending_sigmas():
  index = np.floor(np.asarray(T) * 999).astype(int)
  np.testing.assert_allclose(score(VE, False), 999 - index)
  sigmas = np.exp(np.linspace(np.log(0.01), np.log(50.0), 1000))
  np.testing.assert_allclose(score(VE, False, True), (999 - index) / sigmas[index], rtol=1e-5)


@pytest.mark.parametrize("sde", [VP, SUBVP], ids=["vp", "subvp"])
def test_vp_continuous_is_minus_output_over_std(sde):
  _, std = sde.marginal_prob(X, T)
  np.testing.assert_allclose(score(sde, True), -999.0 * np.asarray(T) / std, rtol=1e-5)


def test_vp_discrete_uses_ddpm_std_and_index_label():
  index = np.floor(np.asarray(T) * 999).astype(int)
  alphas_bar = np.cumprod(1 - np.linspace(0.1 / 1000, 20.0 / 1000, 1000))
  np.testing.assert_allclose(score(VP, False), -index / np.sqrt(1 - alphas_bar[index]), rtol=1e-4)


def test_subvp_labels_are_continuous_even_when_discrete():
  np.testing.assert_allclose(score(SUBVP, False), score(SUBVP, True))


def test_dropout_rng_only_used_in_training():
  class Dropout(nn.Module):
    @nn.compact
    def __call__(self, x, labels, train=False):
      return nn.Dropout(0.5, deterministic=not train)(jnp.ones_like(x))

  model = NetworkScore(VP, Dropout(), continuous=True)
  eval_score = model.score({}, X, T)
  a = model.score({}, X, T, train=True, rng=jax.random.key(0))
  b = model.score({}, X, T, train=True, rng=jax.random.key(1))
  assert np.all(np.asarray(eval_score) != 0) and not np.array_equal(a, b)
