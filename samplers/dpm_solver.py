"""DPM-Solver++ multistep solvers with data prediction (Lu et al. 2022b, "DPM-Solver++: Fast
Solver for Guided Sampling of Diffusion Probabilistic Models") on any SDE's kernel
x_t = a x0 + s eps and any grid, stepping in lambda = log(a / s) (samplers.multistep).

Step i: t_i -> t_{i+1} with h = lambda_{i+1} - lambda_i, m_j = D(x_j, t_j) the data predictions
at the grid points so far, r0 = h_{i-1} / h, r1 = h_{i-2} / h, D1_0 = (m_i - m_{i-1}) / r0:

  order 1 (= DDIM, eta 0):  x' = (s'/s) x - a' expm1(-h) m_i
  2M (Alg. 2):              x' = (s'/s) x - a' expm1(-h) (m_i + D1_0 / 2)
  2M, solver_type='taylor': x' = (s'/s) x - a' expm1(-h) m_i + a' (expm1(-h) / h + 1) D1_0
      (the official code's 'taylor': D linear in lambda integrated exactly)
  3M (as the official code's multistep_dpm_solver_third_update, but see below): with
      D1_1 = (m_{i-1} - m_{i-2}) / r1, D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1) ~ h D' and
      D2 = 2 (D1_0 - D1_1) / (r0 + r1) ~ h^2 D'',
      x' = (s'/s) x + a' h (phi_1(-h) m_i + phi_2(-h) D1 + phi_3(-h) D2)

(a Taylor expansion of D in lambda integrated exactly). The official code (and diffusers) weighs
D2 without the factor 2 of its own singlestep 'taylor' update: that step is not exact for a
quadratic D and the solver is only second order (tests/test_solvers.py shows both), though its
errors are smaller at 10-20 steps; `official_3m=True` gives it. Step i has
order min(order, i + 1): the first steps have fewer evaluations to interpolate (the official
warm-up). The SDE variant (diffusers' 'sde-dpmsolver++', k-diffusion's dpmpp_2m_sde; midpoint
type) steps the reverse SDE dx = [f x + g^2 (x - a D) / s^2] dt + g dw, g^2 = -2 s^2 dlambda/dt,
solved exactly with D held at m_i; as in 2M, the midpoint type then replaces m_i by m_i + D1_0 / 2:

  x' = (s'/s) e^-h x + a' (1 - e^-2h) (m_i + D1_0 / 2) + s' sqrt(1 - e^-2h) z.
"""
import functools

import jax
import jax.numpy as jnp

from configs.errors import ArgumentError
from samplers.multistep import final_denoise, log_snr_steps, phi_functions
from samplers.per_sample_keys import per_sample_normal


def _first_order(x, m, step):
  return step.sigma_ratio * x - step.alpha_next * jnp.expm1(-step.h) * m[0]


def _second_order(x, m, step):
  d1_0 = (m[0] - m[1]) * step.h / step.h_prev[0]
  return step.sigma_ratio * x - step.alpha_next * jnp.expm1(-step.h) * (m[0] + 0.5 * d1_0)


def _second_order_taylor(x, m, step):
  d1_0 = (m[0] - m[1]) * step.h / step.h_prev[0]
  phi = jnp.expm1(-step.h)
  return step.sigma_ratio * x - step.alpha_next * phi * m[0] + step.alpha_next * (phi / step.h + 1) * d1_0


SECOND_ORDER = {"dpmsolver": _second_order, "taylor": _second_order_taylor}


def _second_order_step(solver_type: str):
  """The 2M update of the official code's `solver_type`."""
  if solver_type not in SECOND_ORDER:
    raise ArgumentError("solver_type", f"{{arg}}={solver_type!r} is not one of {list(SECOND_ORDER)}.")
  return SECOND_ORDER[solver_type]


def _third_order(x, m, step, d2_weight=2.0):
  """d2_weight 2: the Taylor step, exact for quadratic D; 1: the official code's weight."""
  r0, r1 = step.h_prev[0] / step.h, step.h_prev[1] / step.h
  d1_0, d1_1 = (m[0] - m[1]) / r0, (m[1] - m[2]) / r1
  d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
  d2 = d2_weight * (d1_0 - d1_1) / (r0 + r1)
  phi_1, phi_2, phi_3 = phi_functions(-step.h, 3)
  return step.sigma_ratio * x + step.alpha_next * step.h * (phi_1 * m[0] + phi_2 * d1 + phi_3 * d2)


def _sde_second_order(x, m, step, noise):
  """SDE-DPM-Solver++(2M); first order (D1_0 dropped) where step.order is 1."""
  d1_0 = jnp.where(step.order >= 2, (m[0] - m[1]) * step.h / step.h_prev[0], 0.0)
  decay = -jnp.expm1(-2.0 * step.h)  # 1 - e^-2h
  return (step.sigma_ratio * jnp.exp(-step.h) * x + step.alpha_next * decay * (m[0] + 0.5 * d1_0)
          + step.sigma_next * jnp.sqrt(decay) * noise)


def _multistep_sample(fns, times, keys, shape, order, update, lower_order_final, denoise):
  """n - 1 steps x <- update(x, (m_i, m_{i-1}, ...), step) over `times` (n,), each after one model
  call m_i = D(x, t_i), then the denoising step: (samples (B, *shape), n - 1 + denoise NFE)."""
  n = times.shape[0]
  x = fns.initial(keys, shape)

  def body(carry, step):
    x, m = carry
    vec = lambda v: jnp.full((x.shape[0],), v, x.dtype)
    m = (fns.denoise(x, vec(step.t)),) + m[:-1]
    x = fns.constrain(update(x, m, step), vec(step.t_next), step.index + 1)
    return (x, m), None

  if n > 1:
    steps = log_snr_steps(fns.sde, times, order - 1, order, lower_order_final)
    (x, _), _ = jax.lax.scan(body, (x, (jnp.zeros_like(x),) * order), steps)
  return final_denoise(fns, x, times, denoise), n - 1 + int(denoise)


def dpm_solver_2m(fns, times, keys, shape, lower_order_final: bool = True, denoise: bool = True,
                  solver_type: str = "dpmsolver"):
  """DPM-Solver++(2M) over `times` (n,) (T to eps): the first step first order, then 2M; with
  lower_order_final and fewer than 15 steps the last step is first order too. keys (B, key):
  per-sample keys (the prior from step 0). NFE = n - 1 (+ 1 for the denoising step D(x, eps)).
  solver_type: 'dpmsolver' (Alg. 2) or 'taylor' (module docstring)."""
  second = _second_order_step(solver_type)
  update = lambda x, m, step: jax.lax.switch(step.order - 1, (_first_order, second), x, m, step)
  return _multistep_sample(fns, times, keys, shape, 2, update, lower_order_final, denoise)


def dpm_solver_3m(fns, times, keys, shape, lower_order_final: bool = True, denoise: bool = True,
                  official_3m: bool = False, solver_type: str = "dpmsolver"):
  """DPM-Solver++(3M): orders 1, 2, then 3 (with lower_order_final and fewer than 15 steps, the
  last two steps of order 2 and 1), as dpm_solver_2m otherwise (solver_type: of the order-2
  steps). official_3m: the D2 weight of the official code and diffusers (second order
  asymptotically; see the module docstring)."""
  third = functools.partial(_third_order, d2_weight=1.0 if official_3m else 2.0)
  second = _second_order_step(solver_type)
  update = lambda x, m, step: jax.lax.switch(
      step.order - 1, (_first_order, second, third), x, m, step)
  return _multistep_sample(fns, times, keys, shape, 3, update, lower_order_final, denoise)


def dpm_solver_sde_2m(fns, times, keys, shape, lower_order_final: bool = True,
                      denoise: bool = True):
  """SDE-DPM-Solver++(2M) with step i's noise z from step i + 1 of the per-sample keys (prior:
  step 0), so each sample is independent of the batch. NFE as dpm_solver_2m."""
  update = lambda x, m, step: _sde_second_order(x, m, step,
                                                per_sample_normal(keys, step.index + 1, shape))
  return _multistep_sample(fns, times, keys, shape, 2, update, lower_order_final, denoise)
