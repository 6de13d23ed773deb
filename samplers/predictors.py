"""Predictors of the predictor-corrector sampler (Song et al. 2021, Sec. 4.2, App. E-F).

Each is a pure function (sde, score_fn, x (B, ...), t (B,), noise (B, ...), probability_flow)
-> (x, x_mean) advancing the reverse-time process one step from t; x_mean is the step without
its noise (used for the final denoising step). `Predictor.nfe` counts score calls per step.
"""
from typing import Callable, NamedTuple

import jax.numpy as jnp

from sde_lib import VESDE, VPSDE, SubVPSDE, batch_expand


class Predictor(NamedTuple):
  update: Callable  # (sde, score_fn, x, t, noise, probability_flow) -> (x, x_mean)
  nfe: int  # score evaluations per step


def euler_maruyama(sde, score_fn, x, t, noise, probability_flow):
  """Euler-Maruyama on the reverse SDE (Eq. 6) or the probability-flow ODE (Eq. 13), dt = -T/N."""
  dt = -sde.T / sde.N
  drift, diffusion = sde.reverse(score_fn, probability_flow).sde(x, t)
  x_mean = x + drift * dt
  return x_mean + batch_expand(diffusion * jnp.sqrt(-dt), x) * noise, x_mean


def reverse_diffusion(sde, score_fn, x, t, noise, probability_flow):
  """x_{i-1} = x_i - f_i(x_i) + G_i^2 s(x_i, i) + G_i z: reverse of the forward chain (Eq. 46)."""
  rev_f, rev_g = sde.reverse(score_fn, probability_flow).discretize(x, t)
  x_mean = x - rev_f
  return x_mean + batch_expand(rev_g, x) * noise, x_mean


def _smld_ancestral(sde, score_fn, x, t, noise):
  """SMLD ancestral step (Eq. 47): x_{i-1} = x_i + (s_i^2 - s_{i-1}^2) score
  + sqrt(s_{i-1}^2 (s_i^2 - s_{i-1}^2) / s_i^2) z, with s the discrete sigmas."""
  i = sde.timestep_index(t)
  sigma = sde.discrete_sigmas[i]
  prev_sigma = jnp.where(i == 0, 0.0, sde.discrete_sigmas[jnp.maximum(i - 1, 0)])
  var_step = sigma**2 - prev_sigma**2
  x_mean = x + batch_expand(var_step, x) * score_fn(x, t)
  std = jnp.sqrt(prev_sigma**2 * var_step / sigma**2)
  return x_mean + batch_expand(std, x) * noise, x_mean


def _ddpm_ancestral(sde, score_fn, x, t, noise):
  """DDPM ancestral step (Eq. 47; Ho et al. 2020, Alg. 2 with sigma_i^2 = b_i):
  x_{i-1} = (x_i + b_i score) / sqrt(1 - b_i) + sqrt(b_i) z."""
  beta = sde.discrete_betas[sde.timestep_index(t)]
  x_mean = (x + batch_expand(beta, x) * score_fn(x, t)) / batch_expand(jnp.sqrt(1.0 - beta), x)
  return x_mean + batch_expand(jnp.sqrt(beta), x) * noise, x_mean


def ancestral_sampling(sde, score_fn, x, t, noise, probability_flow):
  """Ancestral sampling of the SMLD (VE) or DDPM (VP) Markov chain; stochastic only."""
  if probability_flow:
    raise ValueError("Ancestral sampling has no probability-flow variant; use "
                     "'euler_maruyama' or 'reverse_diffusion' with probability_flow=True.")
  if isinstance(sde, VESDE):
    return _smld_ancestral(sde, score_fn, x, t, noise)
  if isinstance(sde, VPSDE) and not isinstance(sde, SubVPSDE):
    return _ddpm_ancestral(sde, score_fn, x, t, noise)
  raise ValueError(f"Ancestral sampling is defined for VESDE and VPSDE only, not "
                   f"{type(sde).__name__}; use 'euler_maruyama' or 'reverse_diffusion'.")


def no_predictor(sde, score_fn, x, t, noise, probability_flow):
  """Identity: corrector-only sampling (e.g. annealed Langevin dynamics of NCSN)."""
  del sde, score_fn, t, noise, probability_flow
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
    raise ValueError(f"Unknown predictor {name!r}; choose one of {sorted(PREDICTORS)}.")
  return PREDICTORS[name]
