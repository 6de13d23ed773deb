"""Probability-flow likelihoods against the exact log-density of a perturbed Gaussian mixture."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.analytic import AnalyticGMMScore
from oracles import MIX, edm_exact_fns, gmm_fns
from samplers import (TRACE_ESTIMATORS, bits_per_dim, get_trace_estimator, log_likelihood,
                      nats_per_dim, sample_keys)
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

SDES = {"ve": VESDE(), "vp": VPSDE(), "subvp": SubVPSDE(), "edm": EDMSDE(),
        "edm_precond": EDMSDE(), "vp_edm_precond": VPSDE()}
# The exact score, or (edm_precond) routed through EDM's preconditioning of a network.
FNS = {name: (edm_exact_fns if "precond" in name else gmm_fns) for name in SDES}
EPSILONS = {"edm": 2e-3, "edm_precond": 2e-3}
EPS = 1e-5
# Mixture samples plus points between the modes and far in the tails.
POINTS = jnp.concatenate([jnp.asarray(MIX.sample(np.random.default_rng(0), 8), jnp.float32),
                          jnp.array([[0.0, 0.0], [-6.0, 4.0]])])


@functools.lru_cache(maxsize=None)
def likelihood_fn(sde_name, trace):
  fns = FNS[sde_name](SDES[sde_name])
  return jax.jit(lambda x, keys: log_likelihood(fns, x, keys, trace=trace,
                                                eps=EPSILONS.get(sde_name, EPS)))


@functools.partial(jax.jit, static_argnums=0)
def exact_logp(sde_name, x, t):
  return AnalyticGMMScore(SDES[sde_name], MIX).log_prob(x, jnp.full((x.shape[0],), t))


@functools.lru_cache(maxsize=None)
def exact_trace_results(sde_name):
  """(log p, z, nfe) at POINTS with the exact divergence."""
  keys = sample_keys(jax.random.key(0), jnp.arange(POINTS.shape[0]))
  return likelihood_fn(sde_name, "exact")(POINTS, keys)


@pytest.mark.parametrize("sde_name", list(SDES))
def test_exact_trace_likelihood_matches_density(sde_name):
  """log p_eps(x) from the ODE equals the exact log-density at t = eps within 1e-3 nats/dim.

  The ODE's only approximation besides the solver is p_T ~ prior: swapping prior_logp(z) for
  the exact log p_T(z) isolates the integral of the divergence, which must then match to
  solver accuracy; the raw value differs from it by exactly that prior mismatch."""
  logp, z, nfe = exact_trace_results(sde_name)
  prior_logp = jax.jit(SDES[sde_name].prior_logp)(z)
  true_prior_logp = exact_logp(sde_name, z, SDES[sde_name].T)
  target = exact_logp(sde_name, POINTS, EPSILONS.get(sde_name, EPS))
  np.testing.assert_allclose(logp - prior_logp + true_prior_logp, target, atol=2 * 1e-3, rtol=0)
  np.testing.assert_allclose(logp, target + prior_logp - true_prior_logp, atol=2e-3, rtol=0)
  assert np.abs(prior_logp - true_prior_logp).max() < 0.1  # T is long enough for the prior
  assert nfe.shape == POINTS.shape[:1] and int(nfe.min()) > 10


@functools.lru_cache(maxsize=None)
def hutchinson_estimates(trace, n_probes=256):
  """(exact log p, estimates (2, n_probes)) at two points, one probe per ODE solve (VP SDE)."""
  x = jnp.repeat(POINTS[:2], n_probes, axis=0)
  keys = sample_keys(jax.random.key(1), jnp.arange(x.shape[0]))
  logp, _, _ = likelihood_fn("vp", trace)(x, keys)
  return np.asarray(exact_trace_results("vp")[0][:2]), np.asarray(logp).reshape(2, n_probes)


@pytest.mark.parametrize("trace", ["gaussian", "rademacher"])
def test_hutchinson_likelihood_is_unbiased(trace):
  """With the probe fixed along each path, the estimate is z^T (int J dt) z + prior term: an
  unbiased, finite-variance estimate of the exact-trace value. The mean of 256 independent
  probes lies within 4 standard errors of it (4 SE: false-failure rate ~1e-4 per point; the
  ODE error, ~1e-4 nats, is far below one SE)."""
  exact, estimates = hutchinson_estimates(trace)
  mean = estimates.mean(1)
  standard_error = estimates.std(1, ddof=1) / np.sqrt(estimates.shape[1])
  assert np.all(standard_error > 1e-4)  # the probes do vary
  assert np.all(np.abs(mean - exact) < 4 * standard_error), (mean, exact, standard_error)


def test_rademacher_in_2d_averages_to_exact_trace():
  """In 2-D, z^T A z = tr A + 2 z_1 z_2 A_12 (A symmetrised) with z_1 z_2 = +-1 for Rademacher
  probes: the two values the estimate takes average to the exact-trace value."""
  exact, estimates = hutchinson_estimates("rademacher")
  for target, values in zip(exact, estimates):
    high = values > values.mean()
    assert 0 < high.sum() < values.size  # both sign patterns occur
    np.testing.assert_allclose((values[high].mean() + values[~high].mean()) / 2, target,
                               atol=2e-3)


def test_bits_per_dim_offset():
  dim, bits = 3072, 3.25
  logp = jnp.full((2,), -bits * dim * np.log(2.0))
  np.testing.assert_allclose(bits_per_dim(logp, dim, data_width=1.0), bits + 8.0, rtol=1e-6)
  np.testing.assert_allclose(bits_per_dim(logp, dim, data_width=2.0), bits + 7.0, rtol=1e-6)
  np.testing.assert_allclose(bits_per_dim(logp, dim, 1.0, num_bins=32), bits + 5.0, rtol=1e-6)
  # Uniform density on [0, 1]^dim: the dequantised discrete uniform has exactly 8 bits/dim.
  np.testing.assert_allclose(bits_per_dim(jnp.zeros(1), dim, 1.0), 8.0)
  np.testing.assert_allclose(nats_per_dim(logp, dim), bits * np.log(2.0), rtol=1e-6)


def test_unknown_trace_estimator_lists_choices():
  with pytest.raises(ValueError) as info:
    get_trace_estimator("hutchinson")
  for name in TRACE_ESTIMATORS:
    assert repr(name) in str(info.value)
