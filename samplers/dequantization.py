"""Truncated-normal dequantisation (Zheng et al. 2023, "i-DODE", Sec. 4.1): a variational lower
bound on the probability P(x^) of discrete data x^ (bin centres; bins of half width delta) under
the probability-flow ODE's density p_t0 at a small time t0.

The dequantiser is x_t0 = a x^ + s eps with eps ~ TN(0, I; -tau, tau) and (a, s) the kernel at t0,
the time whose noise level s / a is delta / tau: then u = x_t0 / a stays inside x^'s bin. With
p(u) = a^D p_t0(a u) and q(u) = (a / s)^D TN(eps),

  log P(x^) >= E[log p_t0(x_t0) + D log s - log TN(eps)],

so the ODE starts from x_t0 at t0 (samplers.likelihood with eps = t0) and `correction` is the rest.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from samplers.per_sample_keys import step_keys


def truncated_normal_logpdf(eps, tau: float):
  """log TN(eps; 0, I, -tau, tau) summed over all but the batch axis: (B, ...) -> (B,)."""
  dim = np.prod(eps.shape[1:])
  flat = eps.reshape(eps.shape[0], -1)
  log_mass = math.log(math.erf(tau / math.sqrt(2.0)))
  return -0.5 * jnp.sum(flat * flat, -1) - dim * (0.5 * np.log(2.0 * np.pi) + log_mass)


def start_time(sde, half_width: float, tau: float) -> float:
  """t0, the time whose noise level s / a is half_width / tau (a concrete float, also under jit)."""
  with jax.ensure_compile_time_eval():
    return float(sde.time_at_noise_level(jnp.asarray([half_width / tau]))[0])


def truncated_normal_dequantize(sde, x, keys, half_width: float, tau: float, step: int = 1):
  """(x_t0 (B, ...), correction (B,)) for bin centres x (B, ...): the dequantised points at
  start_time(...) and D log s - log TN(eps) (module docstring); eps of sample j from step `step`
  of keys[j]."""
  t0 = start_time(sde, half_width, tau)
  a, s = sde.marginal_coeffs(jnp.full((1,), t0, x.dtype))
  draw = lambda key: jax.random.truncated_normal(key, -tau, tau, x.shape[1:], x.dtype)
  eps = jax.vmap(draw)(step_keys(keys, step))
  dim = np.prod(x.shape[1:])
  correction = dim * jnp.log(s[0]) - truncated_normal_logpdf(eps, tau)
  return a[0] * x + s[0] * eps, correction
