"""Parameterisations: labels and output scaling equal the released code's get_score_fn, EDM's
preconditioning equals Karras et al.'s Table 1, and the discrete labels land on the tables."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import samplers
import sde_lib
from models.score import NetworkScore
from oracles import gmm_fns


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


def score(parameterization, sde, x=X, t=T):
  model = NetworkScore(sde, EchoLabels(), parameterization)
  return np.asarray(model.score({}, x, t))[:, 0, 0, 0]


def released_ve_sigmas(sde):
  """The released code's get_sigmas: descending exp(linspace(log sigma_max, log sigma_min, N))."""
  return np.exp(np.linspace(np.log(sde.sigma_max), np.log(sde.sigma_min), sde.N))


def test_ve_continuous_label_is_sigma_and_output_divided_by_sigma():
  sigma = 0.01 * (50.0 / 0.01) ** np.asarray(T)
  np.testing.assert_allclose(score(models.VEContinuous(VE, scale_by_sigma=False), VE), sigma,
                             rtol=1e-5)
  np.testing.assert_allclose(score(models.VEContinuous(VE), VE), 1.0, rtol=1e-5)


def test_ve_discrete_label_is_rounded_index_of_descending_sigmas():
  index = np.round((1.0 - np.asarray(T, np.float64)) * 999).astype(int)
  np.testing.assert_allclose(score(models.VEDiscrete(VE, scale_by_sigma=False), VE), index)
  np.testing.assert_allclose(score(models.VEDiscrete(VE), VE), index / released_ve_sigmas(VE)[index],
                             rtol=1e-5)


@pytest.mark.parametrize("n", [10, 232, 500, 1000, 1086, 2000])
def test_ve_discrete_labels_on_the_sampler_grid_are_the_released_rounding(n):
  sde = sde_lib.VESDE(N=n)
  times = samplers.make_grid(sde, "uniform", n, 1e-5)
  labels = np.asarray(models.VEDiscrete(sde).precondition(times).c_noise)
  t64 = np.asarray(times, np.float64)
  np.testing.assert_array_equal(labels, np.round((1.0 - t64) * (n - 1)))
  np.testing.assert_array_equal(labels, np.arange(n))  # one level per step, each once


@pytest.mark.parametrize("sde", [VP, SUBVP], ids=["vp", "subvp"])
def test_vp_continuous_is_minus_output_over_std(sde):
  _, std = sde.marginal_prob(X, T)
  np.testing.assert_allclose(score(models.VPContinuous(sde), sde), -999.0 * np.asarray(T) / std,
                             rtol=1e-5)


def test_vp_discrete_label_is_unrounded_and_std_from_ddpm_table():
  labels = np.asarray(T) * 999
  alphas_bar = np.cumprod(1 - np.linspace(0.1 / 1000, 20.0 / 1000, 1000))
  expected = -labels / np.sqrt(1 - alphas_bar[labels.astype(int)])
  np.testing.assert_allclose(score(models.VPDiscrete(VP), VP), expected, rtol=1e-4)


def test_released_convention_by_sde_and_continuity():
  assert models.parameterization_name("score_sde", "subvpsde", False) == "vp_continuous"
  assert models.parameterization_name("score_sde", "vesde", False) == "ve_discrete"
  assert models.parameterization_name("edm", "vpsde", True) == "edm"
  with pytest.raises(ValueError, match="ve_discrete"):
    models.parameterization_name("karras", "vpsde", True)
  with pytest.raises(ValueError, match="no convention"):
    models.parameterization_name("score_sde", "edm", True)


def test_edm_preconditioning_is_table_1():
  sde, sigma_data = sde_lib.EDMSDE(), 0.5
  t = jnp.array([0.002, 0.3, 5.0, 80.0])
  p = models.EDM(sde, sigma_data).precondition(t)
  s = np.asarray(t, np.float64)
  np.testing.assert_allclose(p.c_skip, sigma_data**2 / (s**2 + sigma_data**2), rtol=1e-6)
  np.testing.assert_allclose(p.c_out, s * sigma_data / np.sqrt(s**2 + sigma_data**2), rtol=1e-6)
  np.testing.assert_allclose(p.c_in, 1 / np.sqrt(s**2 + sigma_data**2), rtol=1e-6)
  np.testing.assert_allclose(p.c_noise, np.log(s) / 4, rtol=1e-6, atol=1e-7)
  # score = (D - x) / sigma^2 with D = c_skip x + c_out F (here F = c_noise, x = 1).
  x = jnp.ones((4, 2))
  d = np.asarray(p.c_skip)[:, None] + np.asarray(p.c_out * p.c_noise)[:, None]
  np.testing.assert_allclose(NetworkScore(sde, EchoLabels(), models.EDM(sde)).score({}, x, t),
                             np.broadcast_to((d - 1.0) / s[:, None] ** 2, (4, 2)), rtol=2e-4,
                             atol=1e-6)


class ExactV(nn.Module):
  """The exact v = (a eps - s x0) / sqrt(a^2 + s^2) of the 2-D mixture under `sde`, read back from
  v_prediction's inputs (x / sqrt(a^2 + s^2), 999 t)."""

  sde: sde_lib.SDE

  @nn.compact
  def __call__(self, x_in, labels, train=False):
    t = labels / 999.0
    a, s = (v[:, None] for v in self.sde.marginal_coeffs(t))
    x = x_in * jnp.sqrt(a**2 + s**2)
    denoised, eps = gmm_fns(self.sde).predictions(x, t)
    return (a * eps - s * denoised) / jnp.sqrt(a**2 + s**2)


@pytest.mark.parametrize("sde", [VP, VE], ids=["vp", "ve"])
def test_v_prediction_of_the_exact_v_is_the_exact_score(sde):
  """Given the exact v, v_prediction's score is the mixture's exact score (and for VP, where
  a^2 + s^2 = 1, v = a eps - s x0 as Salimans & Ho define it)."""
  with jax.enable_x64(True):
    t = jnp.array([0.02, 0.3, 0.7, 1.0])
    x = jax.random.normal(jax.random.key(0), (4, 2)) * 3.0
    got = NetworkScore(sde, ExactV(sde), models.VPrediction(sde)).score({}, x, t)
    np.testing.assert_allclose(got, gmm_fns(sde).score(x, t), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sde", [VP, SUBVP], ids=["vp", "subvp"])
def test_vp_std_is_accurate_at_the_likelihood_eps(sde):
  t = 1e-5
  log_coeff = -0.25 * t**2 * (sde.beta_max - sde.beta_min) - 0.5 * t * sde.beta_min
  var = -np.expm1(2.0 * log_coeff)  # float64
  exact = np.sqrt(var) if sde is VP else var
  np.testing.assert_allclose(sde.marginal_coeffs(jnp.array([t], jnp.float32))[1], exact, rtol=1e-5)


def test_dropout_rng_only_used_in_training():
  class Dropout(nn.Module):
    @nn.compact
    def __call__(self, x, labels, train=False):
      return nn.Dropout(0.5, deterministic=not train)(jnp.ones_like(x))

  model = NetworkScore(VP, Dropout(), models.VPContinuous(VP))
  eval_score = model.score({}, X, T)
  a = model.score({}, X, T, train=True, rng=jax.random.key(0))
  b = model.score({}, X, T, train=True, rng=jax.random.key(1))
  assert np.all(np.asarray(eval_score) != 0) and not np.array_equal(a, b)
