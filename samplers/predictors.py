"""Predictors of the predictor-corrector sampler (Song et al. 2021, Sec. 4.2, App. E-F).

Each is a pure function (fns, x (B, ...), step, noise (B, ...), probability_flow) -> (x, x_mean)
advancing the reverse-time process by one grid step; `step` is one row of samplers.pc.PCSteps
(scalars: the time, Euler-Maruyama's dt, and the chain x_j = a x_{j-1} + b z from the next, less
noisy level to this one, with the stds of both). x_mean is the step without its noise (the final
denoising step returns it). `Predictor.nfe` counts score calls per step.
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp

from configs.errors import UserError
from sde_lib import batch_expand


class Predictor(NamedTuple):
  update: Callable  # (fns, x, step, noise, probability_flow) -> (x, x_mean)
  nfe: int  # score evaluations per step


def _times(step, x):
  return jnp.full((x.shape[0],), step.t, x.dtype)


def euler_maruyama(fns, x, step, noise, probability_flow):
  """Euler-Maruyama on the reverse SDE (Eq. 6) or the probability-flow ODE (Eq. 13) with the
  grid's dt = t_{i+1} - t_i (< 0)."""
  drift, diffusion = fns.sde.reverse(fns.score, probability_flow).sde(x, _times(step, x))
  x_mean = x + drift * step.dt
  return x_mean + batch_expand(diffusion * jnp.sqrt(-step.dt), x) * noise, x_mean


def reverse_diffusion(fns, x, step, noise, probability_flow):
  """Reverse of the forward chain (Eq. 46): x_{j-1} = (2 - a_j) x_j + w b_j^2 s(x_j) + b_j z,
  w = 1 (w = 1/2 and no noise for the probability flow). With the released tables this is the
  released ReverseDiffusionPredictor (VE: a = 1, b^2 = sigma_j^2 - sigma_{j-1}^2; VP:
  a = sqrt(1 - beta_j), b^2 = beta_j)."""
  weight = 0.5 if probability_flow else 1.0
  score = fns.score(x, _times(step, x))
  x_mean = (2.0 - step.a) * x + weight * step.b**2 * score
  return (x_mean if probability_flow else x_mean + step.b * noise), x_mean


def ancestral_sampling(fns, x, step, noise, probability_flow):
  """Ancestral sampling of the chain (Eq. 47): mean (x_j + b_j^2 s) / a_j; noise of std
  `sde.ancestral_std` (DDPM's b_j, sigma_t^2 = beta_t, or SMLD's posterior b_j sigma_{j-1} /
  sigma_j). Stochastic only."""
  if probability_flow:
    raise UserError("Ancestral sampling has no probability-flow variant; use "
                     "'euler_maruyama' or 'reverse_diffusion' with probability_flow=True.")
  x_mean = (x + step.b**2 * fns.score(x, _times(step, x))) / step.a
  std = fns.sde.ancestral_std(step.b, step.sigma, step.sigma_next)
  return x_mean + std * noise, x_mean


def no_predictor(fns, x, step, noise, probability_flow):
  """Identity: corrector-only sampling (e.g. annealed Langevin dynamics of NCSN)."""
  del fns, step, noise, probability_flow
  return x, x


PREDICTORS = {
    "euler_maruyama": Predictor(euler_maruyama, 1),
    "reverse_diffusion": Predictor(reverse_diffusion, 1),
    "ancestral_sampling": Predictor(ancestral_sampling, 1),
    "none": Predictor(no_predictor, 0),
}


def get_predictor(name: str) -> Predictor:
  """The predictor registered as `name` (one of PREDICTORS)."""
  if name not in PREDICTORS:
    raise UserError(f"Unknown predictor {name!r}; choose one of {sorted(PREDICTORS)}.")
  return PREDICTORS[name]
