"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
Diffusion Models") with data prediction, on any SDE's kernel x_t = a x0 + s eps and any grid, in
lambda = log(a / s) (samplers.multistep).

Step i: t_i -> t_{i+1}, h = lambda_{i+1} - lambda_i, m_j = D(x_j, t_j), r_k = (lambda_{i-k} -
lambda_i) / h, D1_k = (m_{i-k} - m_i) / r_k (k = 1..p-1), z = -h:

  x_base = (s'/s) x - a' expm1(z) m_i
  UniP-p (Sec. 3):  x_pred = x_base - a' B sum_k rho_p,k D1_k,   R_{p-1} rho_p = b_{p-1}
  UniC-p (Sec. 3):  x' = x_base - a' B (sum_k rho_c,k D1_k + rho_c,p (D(x_pred, t') - m_i)),
                    R_p rho_c = b_p,

with R_p[i, k] = r_k^(i-1) (r_p = 1), b_i = i! z phi_{i+1}(z) / B (i = 1..p;
samplers.multistep.phi_functions), and, as the official code, rho_p = 1/2 for p = 2 and
rho_c = 1/2 for p = 1. B = B(z) may be any nonzero B(h) = O(h) (Sec. 3); `variant` picks the
paper's two (the official code's `variant`, diffusers' `solver_type`): 'bh2', B = expm1(z), where
UniP-2 is DPM-Solver++(2M) and b_i = i! phi_{i+1}(z) / phi_1(z), and 'bh1', B = z, so
b_i = i! phi_{i+1}(z) (diffusers recommends it for unconditional sampling with < 10 steps).
The corrector reuses the evaluation D(x_pred, t') as the next step's m_{i+1}, so it costs no
model call; there is none after the last step. UniP-p has order p and UniC-p raises it to p + 1
(either B): the default p = 2 is third order. The first steps use order min(p, i + 1) (fewer
points so far).
"""
import functools
import math

import jax
import jax.numpy as jnp

from configs.errors import ArgumentError
from samplers.multistep import final_denoise, log_snr_steps, phi_functions

UNIPC_ORDERS = (1, 2, 3)
UNIPC_VARIANTS = ("bh1", "bh2")


def _rhos(k: int, p: int, variant: str, r, z):
  """(rho_p (p - 1,), rho_c (p,)) of UniP-k / UniC-k, zero-padded to the run's order p so that
  rho_c[-1] weighs D(x_pred) - m_i. r (p - 1,): r_1.. of the history (the first k - 1 used)."""
  phis = phi_functions(z, k + 1)
  b_over_z = 1.0 if variant == "bh1" else phis[0]  # B / z; bh2: expm1(z) / z = phi_1(z)
  b = jnp.stack([math.factorial(i) * phis[i] / b_over_z for i in range(1, k + 1)])
  rks = jnp.concatenate([r[:k - 1], jnp.ones((1,), r.dtype)])
  big_r = jnp.stack([rks**i for i in range(k)])
  half = jnp.full((1,), 0.5, r.dtype)
  if k == 1:
    rho_p, rho_c = half[:0], half
  else:
    rho_p = half if k == 2 else jnp.linalg.solve(big_r[:-1, :-1], b[:-1])
    rho_c = jnp.linalg.solve(big_r, b)
  pad = jnp.zeros((p - k,), r.dtype)
  return jnp.concatenate([rho_p, pad]), jnp.concatenate([rho_c[:-1], pad, rho_c[-1:]])


def _weighted(weights, terms, like):
  return sum((w * d for w, d in zip(weights, terms)), jnp.zeros_like(like))


def _predict(x, m, step, p: int, variant: str):
  """UniP: x_pred at t_{i+1} and what UniC reuses (x_base, -a' B, D1_k, rho_c)."""
  r = -jnp.cumsum(step.h_prev) / step.h
  branches = [functools.partial(_rhos, k, p, variant) for k in range(1, p + 1)]
  rho_p, rho_c = jax.lax.switch(step.order - 1, branches, r, -step.h)
  d1 = [(m[k] - m[0]) / r[k - 1] for k in range(1, p)]
  b_h = -step.h if variant == "bh1" else jnp.expm1(-step.h)
  scale = -step.alpha_next * b_h
  x_base = step.sigma_ratio * x - step.alpha_next * jnp.expm1(-step.h) * m[0]
  return x_base + scale * _weighted(rho_p, d1, x), (x_base, scale, d1, rho_c)


def _correct(m_next, m_now, parts):
  """UniC from the model's evaluation m_next at x_pred."""
  x_base, scale, d1, rho_c = parts
  return x_base + scale * (_weighted(rho_c[:-1], d1, x_base) + rho_c[-1] * (m_next - m_now))


def unipc(fns, times, keys, shape, order: int = 2, lower_order_final: bool = True,
          denoise: bool = True, variant: str = "bh2", lower_order_final_always: bool = False):
  """UniPC-`order` (1 to 3; of accuracy order + 1, without lower_order_final) over `times` (n,)
  (T to eps): n - 1 steps of UniP then UniC (none after the last), then the denoising step
  D(x, eps) if `denoise`. With lower_order_final and fewer than 15 steps the last steps' orders
  drop, to 1 at the last (DPM-Solver's rule); with lower_order_final_always too, at any number
  of steps, as the official UniPC (wl-zhao/UniPC) does. variant: B(h), 'bh2' or 'bh1' (see above). keys (B, key): per-sample keys (the prior
  from step 0). NFE = n - 1 (+ 1 to denoise)."""
  if order not in UNIPC_ORDERS:
    raise ArgumentError("order", f"{{arg}} of unipc must be one of {UNIPC_ORDERS}; got {order}.")
  if variant not in UNIPC_VARIANTS:
    raise ArgumentError("variant", f"{{arg}} must be one of {UNIPC_VARIANTS}; got {variant!r}.")
  n = times.shape[0]
  x = fns.initial(keys, shape)
  vec = lambda v: jnp.full((x.shape[0],), v, x.dtype)

  def body(carry, step):
    x, m = carry
    x_pred, parts = _predict(x, m, step, order, variant)
    x_pred = fns.constrain(x_pred, vec(step.t_next), step.index + 1)
    m_next = fns.denoise(x_pred, vec(step.t_next))
    x = fns.constrain(_correct(m_next, m[0], parts), vec(step.t_next), step.index + 1)
    return (x, (m_next,) + m[:-1]), None

  if n > 1:
    steps = log_snr_steps(fns.sde, times, order - 1, order, lower_order_final,
                          lower_order_final_always)
    m = (fns.denoise(x, vec(times[0])),) + (jnp.zeros_like(x),) * (order - 1)
    (x, m), _ = jax.lax.scan(body, (x, m), jax.tree.map(lambda v: v[:-1], steps))
    last = jax.tree.map(lambda v: v[-1], steps)
    x = fns.constrain(_predict(x, m, last, order, variant)[0], vec(last.t_next), last.index + 1)
  return final_denoise(fns, x, times, denoise), n - 1 + int(denoise)
