"""Losses evaluated at the exact score of Gaussian data N(0, c^2 I) equal their closed forms.

For x(t) = a x(0) + s z and exact score -x(t) / (a^2 c^2 + s^2), the per-dimension value of
||s * score + z||^2 has expectation a^2 c^2 / (a^2 c^2 + s^2); each loss averages it over its
noise levels, so a wrong time<->noise-level mapping or scaling changes the value.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

import models
import sde_lib
from training import losses

C = 0.7      # data std
DIM = 4
BATCH = 40000


@dataclasses.dataclass(frozen=True)
class ExactGaussianScore:
  """Exact score of N(0, C^2 I) perturbed by the SDE; `discrete` uses the discrete noise tables."""

  sde: sde_lib.SDE

  def score(self, params, x, t, *, train=False, rng=None):
    del params, train, rng
    a, s = self.sde.marginal_coeffs(t)
    return -x / (a**2 * C**2 + s**2)[:, None]

  def score_at_level(self, params, x, level, *, train=False, rng=None):
    del params, train, rng
    levels = self.sde.discrete_levels(self.sde.N)
    a, s = levels.alphas[level], levels.sigmas[level]
    return -x / (a**2 * C**2 + s**2)[:, None]


def mc_loss(loss_fn):
  x = C * jax.random.normal(jax.random.key(0), (BATCH, DIM))
  loss, per_example = jax.jit(loss_fn)({}, x, jax.random.key(1))
  return float(loss), float(np.std(per_example) / np.sqrt(BATCH))


@pytest.mark.parametrize("sde", [sde_lib.VESDE(sigma_max=5.0), sde_lib.VPSDE(), sde_lib.SubVPSDE()],
                         ids=["ve", "vp", "subvp"])
def test_continuous_dsm_loss_matches_closed_form(sde):
  eps = 1e-5
  loss, stderr = mc_loss(losses.continuous_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=True,
                                                    likelihood_weighting=False, eps=eps))

  def integrand(t):
    a, s = (float(v[0]) for v in sde.marginal_coeffs(jnp.array([t])))
    return a**2 * C**2 / (a**2 * C**2 + s**2)

  expected = scipy.integrate.quad(integrand, eps, 1.0, limit=200)[0] / (1.0 - eps)
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_likelihood_weighted_loss_matches_closed_form():
  sde, eps = sde_lib.VPSDE(), 1e-3
  loss, stderr = mc_loss(losses.continuous_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=False,
                                                    likelihood_weighting=True, eps=eps))

  def integrand(t):  # g^2 E||score + z/s||^2 = g^2 DIM a^2 C^2 / (s^2 v)
    a, s = (float(v[0]) for v in sde.marginal_coeffs(jnp.array([t])))
    return float(sde.beta(t)) * DIM * a**2 * C**2 / (s**2 * (a**2 * C**2 + s**2))

  expected = scipy.integrate.quad(integrand, eps, 1.0, limit=200)[0] / (1.0 - eps)
  assert abs(loss - expected) < 5 * stderr + 1e-3 * expected, (loss, expected, stderr)


LIKELIHOOD_SDES = [sde_lib.VESDE(sigma_max=5.0), sde_lib.VPSDE(), sde_lib.SubVPSDE()]


def likelihood_closed_form(sde, eps):
  """The g^2-weighted loss at the exact score, (1 / (T - eps)) int g^2 E||score + z / s||^2 dt
  = DIM / (T - eps) [log(sigma^2 / (C^2 + sigma^2))] from eps to T (g^2 / s^2 dt = d log sigma^2
  and E||s score + z||^2 = DIM C^2 / (C^2 + sigma^2))."""
  sigma = np.asarray(sde.noise_level(jnp.array([eps, sde.T])), np.float64)
  value = np.log(sigma**2 / (C**2 + sigma**2))
  return DIM * (value[1] - value[0]) / (sde.T - eps)


@pytest.mark.parametrize("sde", LIKELIHOOD_SDES, ids=["ve", "vp", "subvp"])
def test_importance_sampled_likelihood_loss_keeps_the_mean_and_lowers_the_variance(sde):
  """Measured per-example variance ratio (uniform t over importance-sampled t): VP 19,
  sub-VP 28 (eps = 1e-3); VE 1, its importance density being uniform."""
  eps = 1e-3
  expected = likelihood_closed_form(sde, eps)
  results = {}
  for importance in (False, True):
    fn = losses.continuous_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=False,
                                    likelihood_weighting=True, eps=eps,
                                    importance_sampling=importance)
    loss, stderr = mc_loss(fn)
    assert abs(loss - expected) < 5 * stderr + 1e-3 * expected, (importance, loss, expected)
    results[importance] = stderr
  ratio = (results[False] / results[True]) ** 2
  print(f"{type(sde).__name__}: variance ratio {ratio:.3g}")
  if isinstance(sde, sde_lib.VESDE):  # g^2 / s^2 is constant: the importance density is uniform
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-4)
  else:
    assert ratio > 10, results


@pytest.mark.parametrize("sde", LIKELIHOOD_SDES, ids=["ve", "vp", "subvp"])
def test_importance_density_integrates_to_one_and_its_samples_follow_it(sde):
  """p(t) = g^2 / (s^2 Z): its integral over [eps, T] is 1, and the sampler's draws pass a KS
  test against its CDF log(sigma(t) / sigma(eps)) / log(sigma(T) / sigma(eps))."""
  eps = 1e-3
  t, normaliser = losses.likelihood_importance_times(sde, jax.random.key(0), (4000,), eps)

  def density(u):
    u = jnp.array([u])
    g = sde.sde(jnp.zeros((1, 1)), u)[1]
    return float(jnp.square(g / sde.marginal_coeffs(u)[1])[0]) / float(normaliser)

  np.testing.assert_allclose(scipy.integrate.quad(density, eps, sde.T, limit=200)[0], 1.0,
                             rtol=1e-4)
  log_sigma = lambda u: np.log(np.asarray(sde.noise_level(jnp.asarray(u, jnp.float32))))
  cdf = lambda u: (log_sigma(u) - log_sigma([eps])) / (log_sigma([sde.T]) - log_sigma([eps]))
  assert scipy.stats.kstest(np.asarray(t), cdf).pvalue > 1e-3


@dataclasses.dataclass(frozen=True)
class ExactUnderVPrediction(ExactGaussianScore):
  """The exact score, read as a v_prediction model (output_weighting asks for its c_out)."""

  @property
  def parameterization(self):
    return models.VPrediction(self.sde)


@pytest.mark.parametrize("sde", [sde_lib.VESDE(sigma_max=5.0), sde_lib.VPSDE()], ids=["ve", "vp"])
def test_output_weighted_loss_of_v_prediction_is_the_v_loss(sde):
  """Weighted so the network output's error counts, the loss of v_prediction's exact model is
  E ||v_hat - v||^2 per dimension = (a^2 + s^2) C^2 / (a^2 C^2 + s^2), v = (a z - s x0) /
  sqrt(a^2 + s^2): v_hat - v = -sqrt(a^2 + s^2) (x0_hat - x0) / s, x0's posterior variance
  C^2 s^2 / (a^2 C^2 + s^2)."""
  eps = 1e-3
  loss, stderr = mc_loss(losses.continuous_dsm_loss(sde, ExactUnderVPrediction(sde),
                                                    reduce_mean=True, likelihood_weighting=False,
                                                    eps=eps, output_weighting=True))

  def integrand(t):
    a, s = (float(v[0]) for v in sde.marginal_coeffs(jnp.array([t])))
    return (a**2 + s**2) * C**2 / (a**2 * C**2 + s**2)

  expected = scipy.integrate.quad(integrand, eps, 1.0, limit=200)[0] / (1.0 - eps)
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_smld_loss_matches_closed_form():
  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=5.0, N=100)
  loss, stderr = mc_loss(losses.discrete_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=True))
  sigmas = np.exp(np.linspace(np.log(0.01), np.log(5.0), 100))
  expected = np.mean(C**2 / (C**2 + sigmas**2))
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_ddpm_loss_matches_closed_form():
  sde = sde_lib.VPSDE(N=100)
  loss, stderr = mc_loss(losses.discrete_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=False))
  alpha_bar = np.cumprod(1 - np.linspace(0.1 / 100, 20.0 / 100, 100))
  expected = DIM * np.mean(alpha_bar * C**2 / (alpha_bar * C**2 + 1 - alpha_bar))
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


@pytest.mark.parametrize("sde", [sde_lib.EDMSDE(), sde_lib.VPSDE()], ids=["edm", "vp"])
@pytest.mark.parametrize("sigma_data", [C, 0.4])
def test_edm_loss_matches_closed_form(sde, sigma_data):
  """E ||D - x0||^2 per dim at the exact denoiser is c^2 sigma^2 / (c^2 + sigma^2) at noise level
  sigma, so the EDM loss is E_sigma[(sigma^2 + sd^2) c^2 / (sd^2 (c^2 + sigma^2))]: exactly 1
  when the data std c equals sigma_data, whatever the SDE."""
  p_mean, p_std = -1.2, 1.2
  loss, stderr = mc_loss(losses.edm_loss(sde, ExactGaussianScore(sde), reduce_mean=True,
                                         sigma_data=sigma_data, p_mean=p_mean, p_std=p_std))

  def integrand(u):  # u = ln sigma ~ N(p_mean, p_std^2)
    s2 = np.exp(2 * u)
    density = np.exp(-0.5 * ((u - p_mean) / p_std) ** 2) / (p_std * np.sqrt(2 * np.pi))
    return density * (s2 + sigma_data**2) * C**2 / (sigma_data**2 * (C**2 + s2))

  expected = scipy.integrate.quad(integrand, p_mean - 10 * p_std, p_mean + 10 * p_std)[0]
  if sigma_data == C:
    assert abs(expected - 1.0) < 1e-6
  assert abs(loss - expected) < 5 * stderr + 1e-3, (loss, expected, stderr)


def test_discrete_training_needs_a_discrete_parameterization():
  sde = sde_lib.SubVPSDE(N=10)
  model = models.NetworkScore(sde, models.MLP(nf=8, num_layers=1), models.VPContinuous(sde))
  x = jnp.zeros((2, DIM))
  loss = losses.discrete_dsm_loss(sde, model, reduce_mean=True)
  with pytest.raises(ValueError, match="vp_discrete"):
    jax.eval_shape(loss, model.init(jax.random.key(0), x), x, jax.random.key(1))


def test_importance_sampling_without_likelihood_weighting_is_refused_in_one_line():
  from configs import load_config  # pylint: disable=import-outside-toplevel
  from workflows import build  # pylint: disable=import-outside-toplevel
  config = load_config("configs/toy.py:two_moons,vpsde", {"training.importance_sampling": True})
  sde = build.build_sde(config)
  with pytest.raises(ValueError, match="^training.importance_sampling draws t for the likelihood"):
    build.build_loss(config, sde, build.build_score_model(config, sde))
