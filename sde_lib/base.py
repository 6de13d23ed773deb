"""Abstract SDE dx = f(x, t) dt + g(t) dw and its time reversal (Song et al. 2021, Sec. 2-4)."""
import abc
import dataclasses
from typing import Callable

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


@dataclasses.dataclass(frozen=True)
class SDE(abc.ABC):
  """Forward SDE on [0, T] with N discretisation steps. Frozen so it can be a static jit arg."""

  N: int = 1000

  @property
  def T(self) -> float:
    return 1.0

  @abc.abstractmethod
  def sde(self, x, t):
    """Drift f(x, t) (B, ...) and diffusion g(t) (B,)."""

  @abc.abstractmethod
  def marginal_prob(self, x, t):
    """Mean (B, ...) and std (B,) of the perturbation kernel p_0t(x(t) | x(0) = x)."""

  @abc.abstractmethod
  def prior_sampling(self, rng, shape):
    """Samples from p_T, shape (B, ...)."""

  @abc.abstractmethod
  def prior_logp(self, z):
    """log p_T(z): (B, ...) -> (B,)."""

  def discretize(self, x, t):
    """x_{i+1} = x_i + f_i(x_i) + G_i z_i. Euler-Maruyama by default (dt = T/N), Eq. (45)."""
    dt = self.T / self.N
    drift, diffusion = self.sde(x, t)
    return drift * dt, diffusion * np.sqrt(dt)

  def timestep_index(self, t):
    """Index i = floor(t (N - 1) / T) of the discretisation step at time t, truncated as in the
    released code so the sampler grid linspace(T, eps, N) visits N - 1, ..., 0 once each:
    (B,) float -> (B,) int32. Use step_time(i) to go back."""
    return jnp.floor(t * (self.N - 1) / self.T).astype(jnp.int32)

  def step_time(self, i):
    """A time whose timestep_index is i: the middle of [i, i + 1) T / (N - 1), robust to
    float rounding: (B,) int -> (B,) float."""
    return (i + 0.5) * self.T / (self.N - 1)

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

  def discretize(self, x, t):
    """Reverse of the forward discretisation: Eq. (46) of the paper's appendix."""
    f, G = self.forward.discretize(x, t)
    rev_f = f - batch_expand(jnp.square(G), x) * self.score_fn(x, t) * self.score_weight
    return rev_f, jnp.zeros_like(G) if self.probability_flow else G
