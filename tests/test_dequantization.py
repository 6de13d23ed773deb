"""Truncated-normal dequantisation (samplers.dequantization) against numerical integration, on the
analytic mixture quantised to a grid: the bound lies below the log-probability of each bin."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from models.analytic import AnalyticGMMScore
from oracles import MIX, gmm_fns
from samplers import log_likelihood, sample_keys
from samplers.dequantization import start_time, truncated_normal_dequantize, truncated_normal_logpdf
from sde_lib import VPSDE

HALF_WIDTH, TAU, DRAWS = 0.25, 3.0, 32  # bins of width 0.5 on the 2-D mixture
SDE = VPSDE()
CENTRES = np.round(MIX.sample(np.random.default_rng(0), 4) / (2 * HALF_WIDTH)) * (2 * HALF_WIDTH)


@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_truncated_normal_log_density_integrates_to_one(tau):
  with jax.enable_x64(True):
    one_d = lambda e: float(np.exp(truncated_normal_logpdf(jnp.array([[e]]), tau))[0])
    np.testing.assert_allclose(integrate.quad(one_d, -tau, tau)[0], 1.0, rtol=1e-10)
    pair = np.array([[0.3, -1.2]])
    np.testing.assert_allclose(truncated_normal_logpdf(jnp.asarray(pair), tau),
                               np.log(one_d(0.3)) + np.log(one_d(-1.2)), rtol=1e-12)


def bin_quadrature(centre, t0, nodes: int = 48):
  """Gauss-Legendre points u (Q, 2) and weights (Q,) on the bin of `centre`, with the model's
  log-density log a^2 p_t0(a u) at them (the exact mixture at t0)."""
  unit, weights = np.polynomial.legendre.leggauss(nodes)
  u0, u1 = np.meshgrid(centre[0] + HALF_WIDTH * unit, centre[1] + HALF_WIDTH * unit, indexing="ij")
  u = np.stack([u0.ravel(), u1.ravel()], -1)
  w = np.outer(weights, weights).ravel() * HALF_WIDTH**2
  with jax.enable_x64(True):
    a = float(SDE.marginal_coeffs(jnp.array([t0]))[0][0])
    log_density = np.asarray(AnalyticGMMScore(SDE, MIX).log_prob(jnp.asarray(a * u),
                                                                   jnp.full((len(u),), t0)))
  return u, w, log_density + 2 * np.log(a)


@functools.lru_cache(maxsize=None)
def bounds_per_draw():
  """(DRAWS, 4) single-draw bounds log p_t0(x_t0) + correction, exact trace, float64."""
  with jax.enable_x64(True):
    x = jnp.asarray(np.repeat(CENTRES, DRAWS, axis=0))
    keys = sample_keys(jax.random.key(0), jnp.arange(len(x)))

    def bound(x, keys):
      start, correction = truncated_normal_dequantize(SDE, x, keys, HALF_WIDTH, TAU)
      logp, _, _ = log_likelihood(gmm_fns(SDE), start, keys, trace="exact",
                                  eps=start_time(SDE, HALF_WIDTH, TAU))
      return logp + correction

    return np.asarray(jax.jit(bound)(x, keys)).reshape(len(CENTRES), DRAWS).T


def test_the_bound_is_its_expectation_under_the_dequantiser_and_below_the_bin_s_probability():
  """The ODE's bound averages (within 4 standard errors) to E_q[log p(u) - log q(u)] computed
  by quadrature over the bin with the exact density, which lies below log P(bin) by
  KL(q || the bin's posterior) (here ~0.4 nats/dim: this smooth density is near uniform on a bin
  of width 0.5, TN's std is 1/12). The uniform dequantisation's bound is printed, not asserted."""
  draws = bounds_per_draw()
  mean, stderr = draws.mean(0), draws.std(0) / np.sqrt(DRAWS)
  t0 = start_time(SDE, HALF_WIDTH, TAU)
  sigma = HALF_WIDTH / TAU
  expected, log_bin, uniform = [], [], []
  for centre in CENTRES:
    u, w, log_p = bin_quadrature(centre, t0)
    with jax.enable_x64(True):
      log_q = np.asarray(truncated_normal_logpdf(jnp.asarray((u - centre) / sigma), TAU)) - 2 * np.log(sigma)
    expected.append(np.sum(w * np.exp(log_q) * (log_p - log_q)))
    log_bin.append(np.log(np.sum(w * np.exp(log_p))))
    uniform.append(np.sum(w * log_p) / (2 * HALF_WIDTH) ** 2 + 2 * np.log(2 * HALF_WIDTH))
  expected, log_bin = np.asarray(expected), np.asarray(log_bin)
  print("log P(bin)", log_bin, "truncated normal", mean, "uniform", np.asarray(uniform))
  assert np.all(np.abs(mean - expected) < 4 * stderr), (mean, expected, stderr)
  assert np.all(expected < log_bin) and np.all(expected > log_bin - 2.0), (expected, log_bin)


def test_the_start_time_keeps_the_dequantised_points_in_their_bins():
  """sigma(t0) tau = half a bin, so x_t0 / a(t0) never leaves its centre's bin."""
  with jax.enable_x64(True):
    x = jnp.asarray(np.repeat(CENTRES, 500, axis=0))
    start, _ = truncated_normal_dequantize(SDE, x, sample_keys(jax.random.key(1),
                                                               jnp.arange(len(x))), HALF_WIDTH, TAU)
    t0 = start_time(SDE, HALF_WIDTH, TAU)
    a, s = (float(v[0]) for v in SDE.marginal_coeffs(jnp.array([t0])))
  np.testing.assert_allclose(s / a, HALF_WIDTH / TAU, rtol=1e-5)
  offset = np.abs(np.asarray(start) / a - np.asarray(x))
  assert offset.max() <= HALF_WIDTH * (1 + 1e-5) and offset.max() > 0.8 * HALF_WIDTH


def test_importance_weighting_is_the_log_mean_exp_and_the_tighter_bound():
  from workflows.likelihood import importance_weighted  # pylint: disable=import-outside-toplevel
  logp = np.random.default_rng(3).normal(-5.0, 2.0, (4, 7))
  np.testing.assert_allclose(importance_weighted(logp), np.log(np.mean(np.exp(logp), 0)),
                             rtol=1e-12)
  assert np.all(importance_weighted(logp) >= logp.mean(0))


@pytest.mark.slow  # CI budget, 13 s: a digits network's ODE solves
def test_the_likelihood_mode_dequantises_digits_with_a_truncated_normal(tmp_path):
  """An untrained tiny digits model: the record is the discrete bound with no offset (its
  nats/dim times 1 / ln 2), with the importance-weighted bound over 2 repeats below it."""
  from configs import load_config  # pylint: disable=import-outside-toplevel
  from test_inverse_cli import TINY_DIGITS, untrained_workdir  # pylint: disable=import-outside-toplevel
  from workflows.likelihood import likelihood  # pylint: disable=import-outside-toplevel
  config = load_config("configs/digits.py:vpsde", {
      **TINY_DIGITS, "eval.dequantization": "truncated_normal", "eval.num_samples": 4,
      "eval.batch_size": 4, "eval.bpd_num_repeats": 2, "eval.rtol": 1e-2, "eval.atol": 1e-2})
  record = likelihood(config, untrained_workdir(tmp_path, config))
  assert record["dequantization"] == "truncated_normal" and record["kind"] == "upper bound"
  np.testing.assert_allclose(record["bits_per_dim"],
                             record["discrete_nats_per_dim"] / np.log(2.0), rtol=1e-6)
  assert record["bits_per_dim_importance_weighted"] <= record["bits_per_dim"]
  assert "truncated-normal" in record["note"] and record["num_repeats"] == 2
