"""The three SDEs of the paper: VE (SMLD), VP (DDPM) and sub-VP (Song et al. 2021, Sec. 3.4)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sde_lib.base import SDE, batch_expand, standard_normal_logp


@dataclasses.dataclass(frozen=True)
class VESDE(SDE):
  """dx = sqrt(d[sigma^2(t)]/dt) dw with sigma(t) = sigma_min (sigma_max / sigma_min)^t (Eq. 30)."""

  sigma_min: float = 0.01
  sigma_max: float = 50.0

  def sigma(self, t):
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

  @property
  def discrete_sigmas(self):
    """SMLD noise levels, ascending: (N,)."""
    return jnp.exp(jnp.linspace(np.log(self.sigma_min), np.log(self.sigma_max), self.N))

  def sde(self, x, t):
    diffusion = self.sigma(t) * np.sqrt(2 * (np.log(self.sigma_max) - np.log(self.sigma_min)))
    return jnp.zeros_like(x), diffusion

  def marginal_prob(self, x, t):
    return x, self.sigma(t)

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, shape) * self.sigma_max

  def prior_logp(self, z):
    return standard_normal_logp(z, self.sigma_max)

  def discretize(self, x, t):
    """SMLD Markov chain x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z (Eq. 8)."""
    i = self.timestep_index(t)
    sigma = self.discrete_sigmas[i]
    prev_sigma = jnp.where(i == 0, 0.0, self.discrete_sigmas[jnp.maximum(i - 1, 0)])
    return jnp.zeros_like(x), jnp.sqrt(sigma**2 - prev_sigma**2)


@dataclasses.dataclass(frozen=True)
class VPSDE(SDE):
  """dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw, beta(t) = beta_min + t (beta_max - beta_min) (Eq. 32)."""

  beta_min: float = 0.1
  beta_max: float = 20.0

  def beta(self, t):
    return self.beta_min + t * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t):
    """log of the mean scale: -int_0^t beta(s) ds / 2 (Eq. 33)."""
    return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

  @property
  def discrete_betas(self):
    """DDPM betas b_i = beta_bar_i / N: (N,)."""
    return jnp.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

  @property
  def alphas_cumprod(self):
    return jnp.cumprod(1.0 - self.discrete_betas)

  def sde(self, x, t):
    beta = self.beta(t)
    return -0.5 * batch_expand(beta, x) * x, jnp.sqrt(beta)

  def marginal_prob(self, x, t):
    log_coeff = self.log_mean_coeff(t)
    return batch_expand(jnp.exp(log_coeff), x) * x, jnp.sqrt(1.0 - jnp.exp(2.0 * log_coeff))

  def prior_sampling(self, rng, shape):
    return jax.random.normal(rng, shape)

  def prior_logp(self, z):
    return standard_normal_logp(z)

  def discretize(self, x, t):
    """DDPM Markov chain x_i = sqrt(1 - b_i) x_{i-1} + sqrt(b_i) z (Eq. 10)."""
    beta = self.discrete_betas[self.timestep_index(t)]
    return batch_expand(jnp.sqrt(1.0 - beta), x) * x - x, jnp.sqrt(beta)


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
  """dx = -beta(t) x / 2 dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dw (Eq. 17)."""

  def sde(self, x, t):
    drift, _ = super().sde(x, t)
    discount = 1.0 - jnp.exp(2.0 * 2.0 * self.log_mean_coeff(t))
    return drift, jnp.sqrt(self.beta(t) * discount)

  def marginal_prob(self, x, t):
    log_coeff = self.log_mean_coeff(t)
    return batch_expand(jnp.exp(log_coeff), x) * x, 1.0 - jnp.exp(2.0 * log_coeff)

  def discretize(self, x, t):
    return SDE.discretize(self, x, t)
