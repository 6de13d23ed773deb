"""What the multistep exponential-integrator solvers (DPM-Solver++, UniPC) share: the grid in
half-log-SNR lambda_t = log(a(t) / s(t)), the order of each step, and the phi functions.

With data prediction D (the denoiser), the probability-flow ODE of any kernel x_t = a x0 + s eps
has the exact solution from s to t (Lu et al. 2022b, "DPM-Solver++", Sec. 4)

  x_t = (s_t / s_s) x_s + s_t int_{lambda_s}^{lambda_t} e^lambda D(x_lambda, lambda) dlambda,

whose integrals of polynomials in lambda against e^lambda are the phi functions below (h = lambda_t
- lambda_s > 0): s_t int e^lambda dlambda = -a_t expm1(-h) = a_t h phi_1(-h), and so on.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# lower_order_final lowers the last steps' order only for runs shorter than this (DPM-Solver's
# documented rule, as diffusers: it steadies very few steps and costs accuracy at many).
LOWER_ORDER_FINAL_BELOW = 15
_SERIES_TERMS = 20  # of phi_k's Taylor series on |z| < 1: error below 1 / 21! ~ 2e-20


def phi_functions(z, count: int):
  """[phi_1(z), ..., phi_count(z)] with phi_k(z) = sum_m z^m / (m + k)!, i.e. phi_0 = e^z and
  phi_{k+1}(z) = (phi_k(z) - 1/k!) / z. The recursion from expm1 cancels for small |z|, so the
  series is used where |z| < 1 (any shape; float dtype of z)."""
  small = jnp.abs(z) < 1.0
  z_big = jnp.where(small, 1.0, z)
  phis, recursive = [], jnp.expm1(z_big) / z_big
  for k in range(1, count + 1):
    series = sum(z**m / float(math.factorial(m + k)) for m in reversed(range(_SERIES_TERMS)))
    phis.append(jnp.where(small, series, recursive))
    recursive = (recursive - 1.0 / math.factorial(k)) / z_big
  return phis


def step_orders(num_steps: int, order: int, lower_order_final: bool,
                at_any_length: bool = False) -> np.ndarray:
  """The order of each of num_steps multistep steps (num_steps,) int32: min(order, i + 1) (step i
  has i + 1 evaluations to interpolate), and with lower_order_final, when num_steps < 15 (or at
  any length with at_any_length, as the official UniPC), also min(., num_steps - i) so the last
  step is first order (DPM-Solver's `lower_order_final`)."""
  i = np.arange(num_steps)
  orders = np.minimum(order, i + 1)
  if lower_order_final and (at_any_length or num_steps < LOWER_ORDER_FINAL_BELOW):
    orders = np.minimum(orders, num_steps - i)
  return orders.astype(np.int32)


class LogSNRSteps(NamedTuple):
  """Per-step scalars of a multistep run over the grid t_0 > ... > t_{n-1}, arrays over its n - 1
  steps i: t_i -> t_{i+1} (history: (n - 1, K))."""

  index: jax.Array  # i
  t: jax.Array  # t_i
  t_next: jax.Array  # t_{i+1}
  alpha_next: jax.Array  # a(t_{i+1})
  sigma_next: jax.Array  # s(t_{i+1})
  sigma_ratio: jax.Array  # s(t_{i+1}) / s(t_i)
  h: jax.Array  # lambda_{i+1} - lambda_i
  h_prev: jax.Array  # (n - 1, K): h_{i-1}, ..., h_{i-K}; h_i where i - k < 0 (then unused)
  order: jax.Array  # int32: the step's order (step_orders)


def log_snr_steps(sde, times, history: int, order: int, lower_order_final: bool,
                  at_any_length: bool = False) -> LogSNRSteps:
  """The steps over `times` (n,) (decreasing, n >= 2) with `history` previous step sizes each
  (orders: step_orders)."""
  a, s = sde.marginal_coeffs(times)
  lam = jnp.log(a) - jnp.log(s)
  h = lam[1:] - lam[:-1]
  index = jnp.arange(h.shape[0])
  h_prev = [jnp.where(index >= k, jnp.roll(h, k), h) for k in range(1, history + 1)]
  h_prev = jnp.stack(h_prev, axis=1) if history else jnp.zeros((h.shape[0], 0), h.dtype)
  return LogSNRSteps(index, times[:-1], times[1:], a[1:], s[1:], s[1:] / s[:-1], h, h_prev,
                     jnp.asarray(step_orders(h.shape[0], order, lower_order_final,
                                             at_any_length)))


def final_denoise(fns, x, times, denoise: bool):
  """The last step to noise-free data D(x, eps) if `denoise`, then the clean-data projection (the
  output's observed part is the observation itself, denoised or not)."""
  if denoise:
    x = fns.denoise(x, jnp.full(x.shape[:1], times[-1], x.dtype))
  return fns.constrain(x, None, times.shape[0])
