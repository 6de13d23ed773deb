"""The SDEs: VE (SMLD), VP (DDPM), sub-VP (Song et al. 2021, Sec. 3.4) and EDM's (Karras et al. 2022).

Every std is computed without cancellation (expm1) so it stays accurate at t ~ 1e-5.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.base import SDE, DiscreteLevels, batch_expand, standard_normal_logp


def _sqrt_difference(hi, lo):
  """sqrt(hi^2 - lo^2), clipped at 0 (fused multiply-adds can round it below 0 when hi = lo)."""
  return jnp.sqrt(jnp.maximum(jnp.square(hi) - jnp.square(lo), 0.0))


def _prepend_zero(v):
  return jnp.concatenate([jnp.zeros((1,), v.dtype), v[:-1]])


@dataclasses.dataclass(frozen=True)
class VESDE(SDE):
  """dx = sqrt(d[sigma^2(t)]/dt) dw with sigma(t) = sigma_min (sigma_max / sigma_min)^t (Eq. 30)."""

  sigma_min: float = 0.01
  sigma_max: float = 50.0

  def sigma(self, t):
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

  def sde(self, x, t):
    diffusion = self.sigma(t) * np.sqrt(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)))
    return jnp.zeros_like(x), diffusion

  def marginal_coeffs(self, t):
    return jnp.ones_like(t), self.sigma(t)

  def time_at_noise_level(self, level):
    return jnp.log(level / self.sigma_min) / np.log(self.sigma_max / self.sigma_min)

  def transition_coeffs(self, t_from, t_to):
    return jnp.ones_like(t_to), _sqrt_difference(self.sigma(t_to), self.sigma(t_from))

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, shape) * self.sigma_max

  def prior_logp(self, z):
    return standard_normal_logp(z, self.sigma_max)

  def ancestral_std(self, b, sigma, sigma_next):
    """The posterior std of q(x_{j-1} | x_j, x_0): b sigma_next / sigma (SMLD, Eq. 47)."""
    return b * sigma_next / sigma

  def classifier_noise_input(self) -> str:
    """log sigma: the noise level spans decades."""
    return "log_sigma"

  def discrete_levels(self, n: int) -> DiscreteLevels:
    """SMLD's geometric noise levels (the released code's `discrete_sigmas`) and the chain
    x_j = x_{j-1} + sqrt(sigma_j^2 - sigma_{j-1}^2) z (Eq. 8), sigma_{-1} = 0."""
    sigmas = jnp.exp(jnp.linspace(np.log(self.sigma_min), np.log(self.sigma_max), n))
    ones = jnp.ones_like(sigmas)
    return DiscreteLevels(ones, sigmas, ones, _sqrt_difference(sigmas, _prepend_zero(sigmas)))


@dataclasses.dataclass(frozen=True)
class VPSDE(SDE):
  """dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw, beta(t) = beta_min + t (beta_max - beta_min) (Eq. 32)."""

  beta_min: float = 0.1
  beta_max: float = 20.0

  def beta(self, t):
    return self.beta_min + t * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t):
    """log a(t) = -int_0^t beta(s) ds / 2 (Eq. 33)."""
    return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

  def sde(self, x, t):
    beta = self.beta(t)
    return -0.5 * batch_expand(beta, x) * x, jnp.sqrt(beta)

  def marginal_coeffs(self, t):
    log_coeff = self.log_mean_coeff(t)
    return jnp.exp(log_coeff), jnp.sqrt(-jnp.expm1(2.0 * log_coeff))

  def _time_at_log_mean_coeff(self, log_coeff):
    """Inverse of log_mean_coeff, from L = -2 log a = beta_min t + (beta_max - beta_min) t^2 / 2."""
    big_l = -2.0 * log_coeff
    slope = self.beta_max - self.beta_min
    return 2.0 * big_l / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * slope * big_l))

  def time_at_noise_level(self, level):
    return self._time_at_log_mean_coeff(-0.5 * jnp.log1p(jnp.square(level)))

  def transition_coeffs(self, t_from, t_to):
    delta = self.log_mean_coeff(t_to) - self.log_mean_coeff(t_from)
    return jnp.exp(delta), jnp.sqrt(-jnp.expm1(2.0 * delta))

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, shape)

  def prior_logp(self, z):
    return standard_normal_logp(z)

  def discrete_alphas_cumprod(self, n: int):
    """DDPM betas b_j = beta_bar_j / n (n,) and their products prod_{i<=j} (1 - b_i) (n,)."""
    betas = jnp.linspace(self.beta_min / n, self.beta_max / n, n)
    return betas, jnp.cumprod(1.0 - betas)

  def discrete_levels(self, n: int) -> DiscreteLevels:
    """DDPM's chain x_j = sqrt(1 - b_j) x_{j-1} + sqrt(b_j) z (Eq. 10), the released tables."""
    betas, alphas_cumprod = self.discrete_alphas_cumprod(n)
    return DiscreteLevels(jnp.sqrt(alphas_cumprod), jnp.sqrt(1.0 - alphas_cumprod),
                          jnp.sqrt(1.0 - betas), jnp.sqrt(betas))


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
  """dx = -beta(t) x / 2 dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dw (Eq. 17); std = 1 - a^2."""

  def sde(self, x, t):
    drift, _ = super().sde(x, t)
    discount = -jnp.expm1(4.0 * self.log_mean_coeff(t))
    return drift, jnp.sqrt(self.beta(t) * discount)

  def marginal_coeffs(self, t):
    log_coeff = self.log_mean_coeff(t)
    return jnp.exp(log_coeff), -jnp.expm1(2.0 * log_coeff)

  def time_at_noise_level(self, level):
    # level = (1 - a^2) / a  <=>  -2 log a = 2 asinh(level / 2).
    return self._time_at_log_mean_coeff(-jnp.arcsinh(0.5 * level))

  def transition_coeffs(self, t_from, t_to):
    return SDE.transition_coeffs(self, t_from, t_to)

  def released_step(self, t, level, n: int):
    """The released code has no sub-VP table: Euler-Maruyama of Eq. 17 over dt = 1 / n at t
    (its SDE.discretize), a = 1 - beta(t) / (2 n), b = g(t) / sqrt(n)."""
    del level
    drift, diffusion = self.sde(jnp.ones_like(t), t)
    return 1.0 + drift / n, diffusion / np.sqrt(n)

  def discrete_levels(self, n: int) -> DiscreteLevels:
    """The DDPM table's mean coefficients with the sub-VP std 1 - a^2 at each level."""
    _, alphas_cumprod = self.discrete_alphas_cumprod(n)
    alphas, sigmas = jnp.sqrt(alphas_cumprod), 1.0 - alphas_cumprod
    a = alphas / jnp.concatenate([jnp.ones(1), alphas[:-1]])
    b = jnp.sqrt(jnp.maximum(sigmas**2 - (a * _prepend_zero(sigmas))**2, 0.0))
    return DiscreteLevels(alphas, sigmas, a, b)


@dataclasses.dataclass(frozen=True)
class EDMSDE(SDE):
  """Karras et al. (2022)'s choice sigma(t) = t, s(t) = 1: dx = sqrt(2 t) dw on [0, sigma_max],
  so t is the noise level itself (Eq. 4 with sigma(t) = t); the prior is N(0, sigma_max^2 I)."""

  sigma_min: float = 0.002
  sigma_max: float = 80.0

  @property
  def T(self) -> float:
    return self.sigma_max

  def sde(self, x, t):
    return jnp.zeros_like(x), jnp.sqrt(2.0 * t)

  def marginal_coeffs(self, t):
    return jnp.ones_like(t), t

  def time_at_noise_level(self, level):
    return level

  def transition_coeffs(self, t_from, t_to):
    return jnp.ones_like(t_to), _sqrt_difference(t_to, t_from)

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, shape) * self.sigma_max

  def prior_logp(self, z):
    return standard_normal_logp(z, self.sigma_max)

  def ancestral_std(self, b, sigma, sigma_next):
    """The posterior std of q(x_{j-1} | x_j, x_0): b sigma_next / sigma (SMLD, Eq. 47)."""
    return b * sigma_next / sigma

  def classifier_noise_input(self) -> str:
    """log sigma: the noise level spans decades."""
    return "log_sigma"
