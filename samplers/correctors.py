"""Correctors of the predictor-corrector sampler (Song et al. 2021, Sec. 4.2, Alg. 4-5).

Each is a pure function (sde, score_fn, x (B, ...), t (B,), noises (n_steps, B, ...), snr,
n_steps) -> (x, x_mean) running n_steps Langevin MCMC steps targeting p_t;
`Corrector.nfe` counts score calls per corrector step.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from sde_lib import VPSDE, batch_expand


class Corrector(NamedTuple):
  update: Callable  # (sde, score_fn, x, t, noises, snr, n_steps) -> (x, x_mean)
  nfe: int  # score evaluations per corrector step


def _alpha(sde, t):
  """alpha_i = 1 - b_i for VP and sub-VP (Alg. 5), 1 for VE (Alg. 4): (B,)."""
  if isinstance(sde, VPSDE):
    return 1.0 - sde.discrete_betas[sde.timestep_index(t)]
  return jnp.ones_like(t)


def _per_sample_norm(v):
  """Euclidean norm of each sample: (B, ...) -> (B,)."""
  return jnp.linalg.norm(v.reshape(v.shape[0], -1), axis=-1)


def _langevin_steps(score_fn, x, t, noises, n_steps, step_size_fn):
  """x <- x + e s(x, t) + sqrt(2 e) z, n_steps times, with e = step_size_fn(score, z) (B,)."""
  def body(carry, noise):
    x, _ = carry
    grad = score_fn(x, t)
    step = batch_expand(step_size_fn(grad, noise), x)
    x_mean = x + step * grad
    return (x_mean + jnp.sqrt(2.0 * step) * noise, x_mean), None

  (x, x_mean), _ = jax.lax.scan(body, (x, x), noises, length=n_steps)
  return x, x_mean


def langevin(sde, score_fn, x, t, noises, snr, n_steps):
  """Langevin corrector, Alg. 4 (VE) / 5 (VP): e = 2 alpha (r ||z|| / ||s||)^2.

  Norms are per sample (the released code averages them over the batch), so a sample does
  not depend on the rest of its batch. The step then depends on x through ||s(x)||: the
  chain's fixed point is tilted to ~ p_t(x) ||s(x)||^2, a variance bias of about 2 / dim,
  negligible for images but heavy-tailed in 2-D. For low-dimensional data use 'ald'.
  """
  alpha = _alpha(sde, t)
  step_size_fn = lambda grad, noise: 2.0 * alpha * jnp.square(
      snr * _per_sample_norm(noise) / _per_sample_norm(grad))
  return _langevin_steps(score_fn, x, t, noises, n_steps, step_size_fn)


def annealed_langevin(sde, score_fn, x, t, noises, snr, n_steps):
  """Annealed Langevin dynamics of NCSN (Song & Ermon 2019, Alg. 1) as in the released code:
  e = 2 alpha (r std(t))^2, std(t) the perturbation kernel's standard deviation."""
  std = sde.marginal_prob(x, t)[1]
  step = 2.0 * _alpha(sde, t) * jnp.square(snr * std)
  return _langevin_steps(score_fn, x, t, noises, n_steps, lambda grad, noise: step)


def no_corrector(sde, score_fn, x, t, noises, snr, n_steps):
  """Identity: predictor-only sampling."""
  del sde, score_fn, t, noises, snr, n_steps
  return x, x


CORRECTORS = {
    "langevin": Corrector(langevin, 1),
    "ald": Corrector(annealed_langevin, 1),
    "none": Corrector(no_corrector, 0),
}


def get_corrector(name: str) -> Corrector:
  """The corrector registered as `name` (one of CORRECTORS)."""
  if name not in CORRECTORS:
    raise ValueError(f"Unknown corrector {name!r}; choose one of {sorted(CORRECTORS)}.")
  return CORRECTORS[name]
