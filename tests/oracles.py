"""Exact answers the sampler, solver and likelihood tests compare against.

A 2-D Gaussian mixture (and its lifts to more dimensions by independent Gaussian coordinates)
has closed-form perturbed scores and densities under every SDE; `matches_mixture` checks samples
against it within Monte-Carlo error and is shown (tests/test_samplers.py) to reject wrong ones.
"""
import functools

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

import models
import samplers
from data_sources.mixture import GaussianMixture
from sde_lib import batch_expand

MIX = GaussianMixture(weights=(0.3, 0.7), means=((-2.5, -1.0), (2.0, 1.5)),
                      covs=(((1.0, 0.6), (0.6, 0.8)), ((0.4, -0.15), (-0.15, 0.9))))

# Thresholds of matches_mixture: weight error in standard errors, mean error as a Mahalanobis
# distance in standard errors, max entry of the whitened covariance minus I (SE ~0.06 for a
# component of 600 samples, so 0.2 leaves ~3 SE; discretisation bias at 200 steps is below that).
MAX_WEIGHT_Z, MAX_MEAN_Z, MAX_COV_DEV = 4.0, 4.5, 0.2


def gmm_fns(sde, mixture=MIX) -> samplers.ModelFns:
  """The exact score of `mixture` under `sde` as the solvers' ModelFns."""
  model = models.AnalyticGMMScore(sde, mixture)
  return samplers.ModelFns(sde, lambda x, t: model.score({}, x, t))


def lifted_fns(sde, lift_vars) -> samplers.ModelFns:
  """Exact score of MIX times N(0, diag(lift_vars)) in the remaining coordinates."""
  score_2d = gmm_fns(sde).score

  def score(x, t):
    a, s = sde.marginal_coeffs(t)
    var = jnp.square(a)[:, None] * lift_vars[None] + jnp.square(s)[:, None]
    return jnp.concatenate([score_2d(x[:, :2], t), -x[:, 2:] / var], axis=-1)

  return samplers.ModelFns(sde, score)


def lifted_mixture(lift_vars) -> GaussianMixture:
  """MIX times N(0, diag(lift_vars)) as an explicit GaussianMixture (for small lifts)."""
  dim = 2 + len(lift_vars)
  pad = lambda c: np.block([[np.asarray(c), np.zeros((2, dim - 2))],
                            [np.zeros((dim - 2, 2)), np.diag(lift_vars)]])
  return GaussianMixture(MIX.weights, tuple(tuple(m) + (0.0,) * (dim - 2) for m in MIX.means),
                         tuple(tuple(map(tuple, pad(c))) for c in MIX.covs))


class ExactDenoiserNetwork(nn.Module):
  """The network F that makes EDM's preconditioning give the mixture's exact denoiser: it reads
  sigma from c_noise = ln(sigma) / 4 and x~ from c_in x~, and returns (D - c_skip x~) / c_out."""

  sde: object
  mixture: GaussianMixture
  sigma_data: float

  @nn.compact
  def __call__(self, x_in, c_noise, train=False):
    sigma = jnp.exp(4.0 * c_noise)
    total = jnp.square(sigma) + self.sigma_data**2
    x_tilde = x_in * jnp.sqrt(total)[:, None]
    t = self.sde.time_at_noise_level(sigma)
    a, s = self.sde.marginal_coeffs(t)
    x = batch_expand(a, x_tilde) * x_tilde
    denoised = (x + batch_expand(s**2, x) * self.mixture.score(x, a, s)) / batch_expand(a, x)
    c_skip = self.sigma_data**2 / total
    c_out = sigma * self.sigma_data / jnp.sqrt(total)
    return (denoised - c_skip[:, None] * x_tilde) / c_out[:, None]


def edm_exact_fns(sde, mixture=MIX, sigma_data=0.5) -> samplers.ModelFns:
  """The exact mixture score routed through a NetworkScore with EDM preconditioning."""
  model = models.NetworkScore(sde, ExactDenoiserNetwork(sde, mixture, sigma_data),
                              models.EDM(sde, sigma_data))
  return samplers.ModelFns(sde, lambda x, t: model.score({}, x, t))


def assign(x, mixture=MIX):
  """Index of the most responsible component of each 2-D sample: (B,)."""
  w, m, c = (np.asarray(a, np.float64) for a in (mixture.weights, mixture.means, mixture.covs))
  diff = x[:, None] - m[None]
  maha = np.einsum("bki,kij,bkj->bk", diff, np.linalg.inv(c), diff)
  return np.argmax(np.log(w) - 0.5 * (maha + np.linalg.slogdet(c)[1]), axis=-1)


def component_stats(x):
  """(weight, mean, covariance) of the samples assigned to each component."""
  x = np.asarray(x, np.float64)
  k = assign(x)
  return [(np.mean(k == i), x[k == i].mean(0), np.cov(x[k == i].T)) for i in range(2)]


@functools.lru_cache(maxsize=None)
def reference_stats():
  return component_stats(MIX.sample(np.random.default_rng(0), 200_000))


def mixture_errors(x):
  """Largest standardised errors of weight, mean and covariance over the two components."""
  x = np.asarray(x, np.float64)
  if not np.all(np.isfinite(x)):
    return {"weight": np.inf, "mean": np.inf, "cov": np.inf}
  errors = {"weight": 0.0, "mean": 0.0, "cov": 0.0}
  for (w, m, c), (w0, m0, c0) in zip(component_stats(x), reference_stats()):
    n_k = max(w * len(x), 2.0)
    dm = m - m0
    errors["weight"] = max(errors["weight"], abs(w - w0) / np.sqrt(w0 * (1 - w0) / len(x)))
    errors["mean"] = max(errors["mean"], np.sqrt(n_k * dm @ np.linalg.solve(c0, dm)))
    white = np.linalg.inv(np.linalg.cholesky(c0))
    errors["cov"] = max(errors["cov"], np.abs(white @ c @ white.T - np.eye(2)).max())
  return errors


def matches_mixture(x):
  e = mixture_errors(x)
  return e["weight"] < MAX_WEIGHT_Z and e["mean"] < MAX_MEAN_Z and e["cov"] < MAX_COV_DEV


def assert_matches_mixture(x):
  assert matches_mixture(x), mixture_errors(x)


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
  """Two-sample energy distance 2E|x-y| - E|x-x'| - E|y-y'| (zero iff equal distributions)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  d = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1).mean()
  return 2 * d(x, y) - d(x, x) - d(y, y)
