"""Variational bounds (samplers.bounds) against their closed forms on Gaussian data.

For x ~ N(mu, diag(c)) the exact score is linear, so eps - eps^ is Gaussian given x and every
term's expectation over the noise is closed form; the continuous bound's integrand in nu = log SNR
is 1/2 sum_d [r (x - mu)^2 + r^2 c^2] / (r c + 1)^2 with r = e^nu, whatever the process.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from samplers import ModelFns, sample_keys
from samplers.bounds import continuous_elbo, discrete_elbo, discretized_gaussian_nll
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

SDES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE(sigma_max=20.0), "edm": EDMSDE()}
EPS = {"vp": 1e-4, "subvp": 1e-4, "ve": 1e-4, "edm": 2e-3}
MU, VAR = np.array([[0.5, -1.0, 2.0]]), np.array([[0.3, 1.0, 2.5]])  # (1, D)
X = np.random.default_rng(0).normal(MU, np.sqrt(VAR), (6, 3))
DRAWS = 4000


def gaussian_fns(sde, scale=1.0):
  """The exact score of N(MU, diag(VAR)) under sde, times `scale` (1: exact)."""
  def score(x, t):
    a, s = sde.marginal_coeffs(t)
    return -scale * (x - a[:, None] * MU) / (jnp.square(a)[:, None] * VAR + jnp.square(s)[:, None])
  return ModelFns(sde, score)


def gaussian_kl(mean, std, prior_std):
  return np.sum(np.log(prior_std / std) + (std**2 + mean**2) / (2 * prior_std**2) - 0.5, axis=-1)


def prior_std(sde):
  return 1.0 if isinstance(sde, VPSDE) else sde.sigma_max


def coefficients(sde, t):
  with jax.enable_x64(True):
    a, s = sde.marginal_coeffs(jnp.asarray([t], jnp.float64))
    return float(a[0]), float(s[0])


def closed_form_continuous(sde, eps, squared_error):
  """The continuous bound per example, (x - mu)^2 given as squared_error (B, D)."""
  log_snr = lambda t: -2.0 * np.log(np.divide(*reversed(coefficients(sde, t))))
  def integrand(nu, row):
    r = np.exp(nu)
    return 0.5 * np.sum((r * row + r**2 * VAR**2) / (r * VAR + 1.0) ** 2)
  diffusion = [integrate.quad(integrand, log_snr(sde.T), log_snr(eps), args=(row,), limit=200,
                              epsabs=1e-10, epsrel=1e-10)[0] for row in squared_error]
  sigma0 = np.exp(-0.5 * log_snr(eps))
  decoder = 0.5 * MU.shape[1] * np.log(2 * np.pi * np.e * sigma0**2)
  return np.asarray(diffusion) + decoder


def bound_of(sde, eps, x):
  """The closed-form continuous bound at data x (B, D)."""
  a_end, s_end = coefficients(sde, sde.T)
  return (closed_form_continuous(sde, eps, (x - MU) ** 2)
          + gaussian_kl(a_end * x, s_end, prior_std(sde)))


@functools.lru_cache(maxsize=None)
def mc_bound(name, t_sampling="log_snr", scale=1.0):
  sde = SDES[name]
  with jax.enable_x64(True):
    keys = sample_keys(jax.random.key(1), jnp.arange(len(X)))
    fn = jax.jit(lambda x: continuous_elbo(gaussian_fns(sde, scale), x, keys, DRAWS, EPS[name],
                                           t_sampling))
    return tuple(np.asarray(v) for v in fn(jnp.asarray(X)))


@pytest.mark.parametrize("name", sorted(SDES))
def test_continuous_bound_equals_its_closed_form_and_bounds_the_nll(name):
  sde = SDES[name]
  bound, stderr = mc_bound(name)
  exact = bound_of(sde, EPS[name], X)
  assert np.all(np.abs(bound - exact) < 5 * stderr), (bound, exact, stderr)
  # Averaged over the data (x - mu)^2 -> c, x^2 -> mu^2 + c: the cross-entropy bound >= entropy.
  a_end, s_end = coefficients(sde, sde.T)
  expected = (closed_form_continuous(sde, EPS[name], VAR)[0]
              + np.sum(np.log(prior_std(sde) / s_end)
                       + (s_end**2 + a_end**2 * (MU**2 + VAR)) / (2 * prior_std(sde) ** 2) - 0.5))
  entropy = 0.5 * np.sum(np.log(2 * np.pi * np.e * VAR))
  assert entropy < expected < entropy + 0.02 * MU.shape[1], (expected, entropy)


def test_a_wrong_score_raises_the_bound():
  bound, stderr = mc_bound("vp", scale=0.5)
  assert np.all(bound > bound_of(SDES["vp"], EPS["vp"], X) + 5 * stderr)


def test_log_snr_sampling_keeps_the_mean_and_lowers_the_variance():
  """Measured: the per-example variance of t-uniform draws over log-SNR-uniform draws, VP."""
  uniform, uniform_se = mc_bound("vp", "uniform")
  log_snr, log_snr_se = mc_bound("vp")
  assert np.all(np.abs(uniform - log_snr) < 5 * np.hypot(uniform_se, log_snr_se))
  ratio = (uniform_se / log_snr_se) ** 2
  assert np.all(ratio > 3.0), ratio


def chain_closed_form(sde, n):
  """The discrete bound less its prior term, x (B, D) -> (B,), in closed form (the exact sum over
  levels) for the model eps^_j = -sigmas_j score(x_j, t_j) with the exact continuous score."""
  levels = jax.tree.map(np.asarray, sde.discrete_levels(n))
  with jax.enable_x64(True):
    a, s = map(np.asarray, sde.marginal_coeffs(jnp.linspace(0.0, sde.T, n)))
  alpha, sigma = levels.alphas[:, None, None], levels.sigmas[:, None, None]  # (n, 1, 1)
  k = a[:, None, None] ** 2 * VAR + s[:, None, None] ** 2                      # (n, 1, D)
  snr = (levels.alphas / levels.sigmas) ** 2
  std = levels.sigmas[0] / levels.alphas[0]

  def bound(x):
    # E||z - eps^_j||^2 per level and example (n, B)
    eps_error = np.sum((1 - sigma**2 / k) ** 2
                       + sigma**2 * (alpha * x - a[:, None, None] * MU) ** 2 / k**2, axis=-1)
    chain = np.sum(0.5 * (snr[:-1] / snr[1:] - 1)[:, None] * eps_error[1:], axis=0)
    return chain + 0.5 * MU.shape[1] * np.log(2 * np.pi * std**2) + 0.5 * eps_error[0]

  return bound


# DDPM's table b_j = beta(j / n) / n is a chain only for n > beta_max = 20 (b_j < 1).
@pytest.mark.parametrize("name,n", [("vp", 25), ("subvp", 25), ("ve", 10)])
def test_discrete_bound_equals_its_closed_form_for_a_short_chain(name, n):
  sde = SDES[name]
  with jax.enable_x64(True):
    keys = sample_keys(jax.random.key(2), jnp.arange(len(X)))
    bound, stderr = map(np.asarray, jax.jit(
        lambda x: discrete_elbo(gaussian_fns(sde), x, keys, DRAWS, n))(jnp.asarray(X)))
  levels = sde.discrete_levels(n)
  kl = gaussian_kl(float(levels.alphas[-1]) * X, float(levels.sigmas[-1]), prior_std(sde))
  exact = chain_closed_form(sde, n)(X) + kl
  assert np.all(np.abs(bound - exact) < 5 * stderr), (bound, exact, stderr)


def test_discrete_bound_gap_shrinks_as_the_chain_grows():
  """Expected over the data: the bound minus the entropy falls with N (VP, DDPM tables)."""
  sde = SDES["vp"]
  entropy = 0.5 * np.sum(np.log(2 * np.pi * np.e * VAR))
  draws = np.random.default_rng(3).normal(MU, np.sqrt(VAR), (1000, 3))
  gaps = []
  for n in (25, 100, 1000):
    levels = sde.discrete_levels(n)
    kl = gaussian_kl(float(levels.alphas[-1]) * draws, float(levels.sigmas[-1]), 1.0)
    gaps.append(np.mean(chain_closed_form(sde, n)(draws) + kl) - entropy)
  assert gaps[0] > gaps[1] > gaps[2] > 0, gaps


def test_discretized_decoder_is_a_distribution_over_the_bins():
  """The masses of all 256 bins of [-1, 1] sum to 1; an inner bin's is the normal CDF's
  difference."""
  centres = np.linspace(-1.0, 1.0, 256)
  with jax.enable_x64(True):
    nll = np.asarray(discretized_gaussian_nll(jnp.asarray(centres)[:, None], 0.3, 0.2, 1 / 255,
                                              -1.0, 1.0))
  np.testing.assert_allclose(np.sum(np.exp(-nll)), 1.0, rtol=1e-10)
  inner = stats.norm.cdf((centres[100] + 1 / 255 - 0.3) / 0.2) - stats.norm.cdf(
      (centres[100] - 1 / 255 - 0.3) / 0.2)
  np.testing.assert_allclose(np.exp(-nll[100]), inner, rtol=1e-9)


@pytest.mark.parametrize("route", ["elbo", "elbo_discrete"])
def test_the_likelihood_mode_reports_a_bound_above_the_exact_nll(tmp_path, route):
  """The analytic mixture model: the bound, in nats/dim over 64 held-out examples, lies above the
  exact density's NLL, by less than 0.05 nats/dim for the continuous bound and less than 0.6 for
  DDPM's 1000-level chain (whose closed-form gap on the Gaussian data above is 0.47 nats/dim);
  the record says it is a bound."""
  from configs import load_config  # pylint: disable=import-outside-toplevel
  from workflows.likelihood import likelihood  # pylint: disable=import-outside-toplevel
  config = load_config("configs/gmm_analytic.py:vpsde", {
      "eval.num_samples": 64, "eval.batch_size": 64, "eval.likelihood": route,
      "eval.elbo_draws": 512})
  record = likelihood(config, tmp_path)
  gap = record["continuous_nats_per_dim"] - record["exact_continuous_nats_per_dim"]
  assert 0 < gap < (0.05 if route == "elbo" else 0.6), record
  assert record["kind"] == "upper bound" and "upper bound on the NLL" in record["note"]
  assert record["mean_nfe"] == 512 * (1 if route == "elbo" else 2)


def test_an_unknown_likelihood_route_is_refused_in_one_line():
  from configs import load_config  # pylint: disable=import-outside-toplevel
  from workflows.likelihood import make_log_likelihood  # pylint: disable=import-outside-toplevel
  from workflows import build  # pylint: disable=import-outside-toplevel
  config = load_config("configs/gmm_analytic.py:edm", {"eval.likelihood": "elbo_discrete"})
  sde = build.build_sde(config)
  with pytest.raises(ValueError, match="no noisy discrete chain"):
    make_log_likelihood(config, sde, build.build_score_model(config, sde))
  config = load_config("configs/gmm_analytic.py:vpsde", {"eval.likelihood": "elb"})
  with pytest.raises(ValueError, match=r"^eval.likelihood='elb' is not one of \['ode'"):
    make_log_likelihood(config, build.build_sde(config), None)
