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

import sde_lib
from models.gmm import marginal_coeffs
from training import losses

C = 0.7      # data std
DIM = 4
BATCH = 40000


@dataclasses.dataclass(frozen=True)
class ExactGaussianScore:
  """Exact score of N(0, C^2 I) perturbed by the SDE; `discrete` uses the discrete noise tables."""

  sde: sde_lib.SDE
  discrete: bool = False

  def variance(self, t):
    if self.discrete and isinstance(self.sde, sde_lib.VESDE):
      return C**2 + self.sde.discrete_sigmas[self.sde.timestep_index(t)] ** 2
    if self.discrete:
      alpha_bar = self.sde.alphas_cumprod[self.sde.timestep_index(t)]
      return alpha_bar * C**2 + 1.0 - alpha_bar
    a, s = marginal_coeffs(self.sde, t)
    return a**2 * C**2 + s**2

  def score(self, params, x, t, *, train=False, rng=None):
    del params, train, rng
    return -x / self.variance(t)[:, None]


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
    a, s = (float(v[0]) for v in marginal_coeffs(sde, jnp.array([t])))
    return a**2 * C**2 / (a**2 * C**2 + s**2)

  expected = scipy.integrate.quad(integrand, eps, 1.0, limit=200)[0] / (1.0 - eps)
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_likelihood_weighted_loss_matches_closed_form():
  sde, eps = sde_lib.VPSDE(), 1e-3
  loss, stderr = mc_loss(losses.continuous_dsm_loss(sde, ExactGaussianScore(sde), reduce_mean=False,
                                                    likelihood_weighting=True, eps=eps))

  def integrand(t):  # g^2 E||score + z/s||^2 = g^2 DIM a^2 C^2 / (s^2 v)
    a, s = (float(v[0]) for v in marginal_coeffs(sde, jnp.array([t])))
    return float(sde.beta(t)) * DIM * a**2 * C**2 / (s**2 * (a**2 * C**2 + s**2))

  expected = scipy.integrate.quad(integrand, eps, 1.0, limit=200)[0] / (1.0 - eps)
  assert abs(loss - expected) < 5 * stderr + 1e-3 * expected, (loss, expected, stderr)


def test_smld_loss_matches_closed_form():
  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=5.0, N=100)
  loss, stderr = mc_loss(losses.smld_loss(sde, ExactGaussianScore(sde, discrete=True),
                                          reduce_mean=True))
  sigmas = np.asarray(sde.discrete_sigmas)
  expected = np.mean(C**2 / (C**2 + sigmas**2))
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_ddpm_loss_matches_closed_form():
  sde = sde_lib.VPSDE(N=100)
  loss, stderr = mc_loss(losses.ddpm_loss(sde, ExactGaussianScore(sde, discrete=True),
                                          reduce_mean=False))
  alpha_bar = np.asarray(sde.alphas_cumprod)
  expected = DIM * np.mean(alpha_bar * C**2 / (alpha_bar * C**2 + 1 - alpha_bar))
  assert abs(loss - expected) < 5 * stderr + 1e-4, (loss, expected, stderr)


def test_discrete_loss_for_subvp_is_an_error():
  with pytest.raises(ValueError, match="continuous=True"):
    losses.get_loss_fn(sde_lib.SubVPSDE(), ExactGaussianScore(sde_lib.SubVPSDE()), continuous=False,
                       reduce_mean=True, likelihood_weighting=False, eps=1e-5)
