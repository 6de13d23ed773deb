"""Predictor-corrector sampling (Song et al. 2021, Sec. 4.2, Alg. 1-3) on any time grid."""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from samplers.correctors import get_corrector
from samplers.per_sample_keys import per_sample_normal, step_keys
from samplers.predictors import get_predictor


class PCSteps(NamedTuple):
  """Per-step scalars of a PC run, arrays (n,) in visiting order (noisiest first): the time t,
  Euler-Maruyama's dt = t_{i+1} - t_i, and the chain x_j = a x_{j-1} + b z from the next (less
  noisy) level to this one, with the stds sigma at this level and sigma_next at the next
  (0 after the last step, whose target is noise-free data)."""

  t: jax.Array
  dt: jax.Array
  a: jax.Array
  b: jax.Array
  sigma: jax.Array
  sigma_next: jax.Array


def table_levels(sde, times, n: int):
  """Level of each time (n,) in the SDE's n-level table, as the released code picks it:
  floor(t (n - 1) / T), int32 (on the uniform grid from T to eps = 1e-5, level n - 1 - i)."""
  return (times * (n - 1) / sde.T).astype(jnp.int32)


def pc_steps(sde, times, use_tables: bool) -> PCSteps:
  """The steps of a PC run visiting `times` (n,) (decreasing, T to eps).

  use_tables: the released code's discretisation, which it pairs with the uniform grid of N
  steps: the SDE's n-level chain (sde.released_step; SMLD / DDPM tables) at the level
  table_levels picks, and Euler-Maruyama's dt = -T / n; otherwise the exact transition kernels
  between consecutive grid times (any grid, any n) and dt the grid's spacing.
  """
  n = times.shape[0]
  if use_tables:
    level = table_levels(sde, times, n)
    a, b = sde.released_step(times, level, n)
    sigmas = sde.discrete_levels(n).sigmas
    sigma_next = jnp.where(level > 0, sigmas[jnp.maximum(level - 1, 0)], 0.0)
    return PCSteps(times, jnp.full((n,), -sde.T / n, times.dtype), a, b, sigmas[level],
                   sigma_next)
  gaps = times[:-1] - times[1:]
  dt = -jnp.concatenate([gaps, gaps[-1:] if n > 1 else times])  # one step: from T to 0
  a_end, b_end = sde.marginal_coeffs(times[-1:])  # the last step starts from clean data
  a, b = sde.transition_coeffs(times[1:], times[:-1])
  a, b = jnp.concatenate([a, a_end]), jnp.concatenate([b, b_end])
  sigma = sde.marginal_coeffs(times)[1]
  return PCSteps(times, dt, a, b, sigma, jnp.concatenate([sigma[1:], jnp.zeros(1)]))


def pc_nfe(num_steps: int, predictor: str, corrector: str, n_steps: int, denoise: bool) -> int:
  """Score evaluations of pc_sample: num_steps (predictor + corrector), plus the denoising step
  of corrector-only sampling (predictors denoise for free through their mean)."""
  predict = get_predictor(predictor)
  final = 1 if denoise and predict.nfe == 0 else 0
  return num_steps * (predict.nfe + get_corrector(corrector).nfe(n_steps)) + final


def pc_sample(fns, steps: PCSteps, keys, shape, predictor: str, corrector: str, snr: float,
              n_steps: int, probability_flow: bool = False, denoise: bool = True):
  """Samples (B, *shape) with one corrector then one predictor update at each step (as the
  released code), and the NFE (a Python int).

  fns: samplers.ModelFns; keys (B, key) per-sample keys: the prior sample comes from step 0 of
  each, step i's predictor noise from step i + 1, its corrector's from the keys of step n + 1 + i
  (folded once more per corrector step). fns.project is applied after each corrector (at t_i)
  and predictor (at t_{i+1}) update, and to the output as clean data (the paper's inpainter,
  App. I.2). `denoise` returns the last predictor step's noise-free mean, or for
  corrector-only sampling (predictor 'none') adds the denoising step x + s^2 score (Tweedie;
  Song & Ermon 2020, Sec. 3.3).
  """
  predict, correct = get_predictor(predictor), get_corrector(corrector)
  x = fns.initial(keys, shape)
  vec = lambda t: jnp.full((x.shape[0],), t, x.dtype)
  n = steps.t.shape[0]
  t_next = jnp.concatenate([steps.t[1:], steps.t[-1:]])  # the last step's noisy x: still at eps

  def body(carry, inputs):
    x, _ = carry
    i, step, after = inputs
    x = correct.update(fns, x, step, step_keys(keys, n + 1 + i), snr, n_steps)
    x = fns.constrain(x, vec(step.t), 2 * i + 1)
    x, x_mean = predict.update(fns, x, step, per_sample_normal(keys, i + 1, shape), probability_flow)
    return (fns.constrain(x, vec(after), 2 * i + 2), x_mean), None

  (x, x_mean), _ = jax.lax.scan(body, (x, x), (jnp.arange(n), steps, t_next))
  if denoise and predict.nfe == 0:
    x_mean = fns.denoise(x, vec(steps.t[-1]))
  x = fns.constrain(x_mean if denoise else x, None, 2 * n + 1)
  return x, pc_nfe(n, predictor, corrector, n_steps, denoise)
