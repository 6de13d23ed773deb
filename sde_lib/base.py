"""Abstract SDE dx = f(x, t) dt + g(t) dw and its time reversal (Song et al. 2021, Sec. 2-4).

All SDEs here are linear with Gaussian perturbation kernels p_0t(x(t) | x(0)) = N(a(t) x(0),
s(t)^2 I): `marginal_coeffs` gives (a, s), `transition_coeffs` the kernel between two times, and
`noise_level` = s / a, the noise of the unscaled x / a (Karras et al. 2022's sigma(t)).
"""
import abc
import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x (B, ...), t (B,)) -> score (B, ...)


def batch_expand(v: jax.Array, x: jax.Array) -> jax.Array:
  """Reshapes per-example values v (B,) so they broadcast against x (B, ...)."""
  return jnp.reshape(v, v.shape + (1,) * (x.ndim - v.ndim))


def standard_normal_logp(z: jax.Array, scale: float = 1.0) -> jax.Array:
  """log N(z; 0, scale^2 I) summed over all but the batch axis: (B, ...) -> (B,)."""
  dim = np.prod(z.shape[1:])
  sq = jnp.sum(jnp.square(z).reshape(z.shape[0], -1), axis=-1)
  return -0.5 * dim * np.log(2 * np.pi * scale**2) - 0.5 * sq / scale**2


class DiscreteLevels(NamedTuple):
  """A Markov chain over n noise levels, ascending (level 0 is the least noisy), arrays (n,):
  x_j = a_j x_{j-1} + b_j z with x_{-1} the clean data, so level j has mean coefficient alphas[j]
  and std sigmas[j] given the data."""

  alphas: jax.Array
  sigmas: jax.Array
  a: jax.Array
  b: jax.Array


@dataclasses.dataclass(frozen=True)
class SDE(abc.ABC):
  """Forward SDE on [0, T]. N is its discretisation into noise levels, used by discrete-time
  training and labels (the released code's tables); samplers choose their own steps.
  Frozen so it can be a static jit arg."""

  N: int = 1000

  @property
  def T(self) -> float:
    return 1.0

  @abc.abstractmethod
  def sde(self, x, t):
    """Drift f(x, t) (B, ...) and diffusion g(t) (B,)."""

  @abc.abstractmethod
  def marginal_coeffs(self, t):
    """Mean coefficient a(t) (B,) and std s(t) (B,) of p_0t(x(t) | x(0))."""

  @abc.abstractmethod
  def time_at_noise_level(self, level):
    """Inverse of noise_level: (B,) -> (B,) times."""

  @abc.abstractmethod
  def prior_sampling(self, rng, shape):
    """Samples from p_T, shape (B, ...)."""

  @abc.abstractmethod
  def prior_logp(self, z):
    """log p_T(z): (B, ...) -> (B,)."""

  def marginal_prob(self, x, t):
    """Mean (B, ...) and std (B,) of the perturbation kernel p_0t(x(t) | x(0) = x)."""
    mean_coeff, std = self.marginal_coeffs(t)
    return batch_expand(mean_coeff, x) * x, std

  def noise_level(self, t):
    """s(t) / a(t), increasing in t: (B,) -> (B,)."""
    mean_coeff, std = self.marginal_coeffs(t)
    return std / mean_coeff

  def transition_coeffs(self, t_from, t_to):
    """(a, b) with x(t_to) = a x(t_from) + b z for t_to > t_from: (B,), (B,) -> (B,), (B,)."""
    a_from, s_from = self.marginal_coeffs(t_from)
    a_to, s_to = self.marginal_coeffs(t_to)
    a = a_to / a_from
    return a, jnp.sqrt(jnp.maximum(jnp.square(s_to) - jnp.square(a * s_from), 0.0))

  def released_step(self, t, level, n: int):
    """(a, b) of the released code's one-step discretisation x_level = a x_{level-1} + b z (its
    `discretize`) at times t (K,) on levels `level` (K,) int32 of an n-level chain: the SDE's own
    table (discrete_levels) by default."""
    del t
    levels = self.discrete_levels(n)
    return levels.a[level], levels.b[level]

  def ancestral_std(self, b, sigma, sigma_next):
    """Std of the ancestral step's noise from level sigma to the less noisy sigma_next, whose
    forward transition has std b (scalars or (B,)): b itself, DDPM's sigma_t^2 = beta_t (Ho et al.
    2020, Sec. 3.2; the released VP sampler)."""
    del sigma, sigma_next
    return b

  def classifier_noise_input(self) -> str:
    """Which input (models.classifiers.NOISE_INPUTS) a noise-conditional classifier reads by
    default: 'time', t itself, or 'log_sigma', the log noise level, where that spans decades."""
    return "time"

  def discrete_levels(self, n: int) -> DiscreteLevels:
    """The chain over n levels at times j T / (n - 1), j = 0..n-1 (the released code's tables
    where it has them: VE and VP override this)."""
    times = jnp.linspace(0.0, self.T, n)
    alphas, sigmas = self.marginal_coeffs(times)
    a, b = self.transition_coeffs(jnp.concatenate([jnp.zeros(1), times[:-1]]), times)
    return DiscreteLevels(alphas, sigmas, a.at[0].set(alphas[0]), b.at[0].set(sigmas[0]))

  def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> "ReverseSDE":
    return ReverseSDE(self, score_fn, probability_flow)


@dataclasses.dataclass(frozen=True)
class ReverseSDE:
  """dx = [f - g^2 score] dt + g dw_bar (Eq. 6), or the probability-flow ODE
  dx = [f - g^2 score / 2] dt (Eq. 13) when probability_flow is set."""

  forward: SDE
  score_fn: ScoreFn
  probability_flow: bool = False

  @property
  def score_weight(self) -> float:
    return 0.5 if self.probability_flow else 1.0

  def sde(self, x, t):
    drift, diffusion = self.forward.sde(x, t)
    g2 = batch_expand(jnp.square(diffusion), x)
    drift = drift - g2 * self.score_fn(x, t) * self.score_weight
    return drift, jnp.zeros_like(diffusion) if self.probability_flow else diffusion
