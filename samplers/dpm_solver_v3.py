"""DPM-Solver-v3 (Zheng et al. 2023, "DPM-Solver-v3: Improved Diffusion ODE Solver with Empirical
Model Statistics"): a multistep exponential integrator whose linearisation comes from the model.

In lambda = log(a / s) the probability-flow ODE is dx/dlambda = (a'/a) x - s eps. With empirical
model statistics (EMS) l, s, b on lambda nodes (samplers.ems; L, S their integrals from the first
node, B = int e^-S b), the paper's change of variables (its Sec. 3) gives from lambda_s to
lambda_t

  x_t = (a_t / a_s) e^(L_s - L_t) x_s - a_t e^(L_s - L_t) int_s^t E_s(u) [g(u) + beta(u)] du,
  f = (s eps - l x) / a,  E_s(u) = e^(L(u) + S(u) - L_s - S_s),  beta(u) = int_s^u e^(S_s - S) b,
  g(u) = e^(S_s - S(u)) f(u) - beta(u)

with g expanded in a Taylor series at lambda_s whose derivatives come from the earlier points (the
polynomial through them, or with `pseudo` the divided differences of the official code). The
statistics are piecewise linear in lambda between nodes, so L and S are exact; the integrals of
one step are Gauss-Legendre sums, made once per grid, not inside the sampling loop. Each step is
then linear: x_t = rho x_s + sum_j c_j f_j + (weights over nodes) @ b.

The official code snaps the times to the EMS nodes and integrates by the trapezoid rule; here any
grid runs, and with l = 1, s = b = 0 (`ems=""`) each step is DPM-Solver++'s Taylor multistep step
(dpm_solver_3m with solver_type='taylor') to quadrature accuracy.

The corrector (the official code's multistep_corrector_update) recomputes x_i from x_{i-1} once eps(x_i) is known, holding
N = s eps - l x (so f) fixed: no extra model call.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, MissingFileError, UserError
from samplers.multistep import final_denoise, step_orders

QUADRATURE_POINTS = 24  # Gauss-Legendre nodes per integral: e^u over |h| <= 17 to ~1e-16


class Statistics(NamedTuple):
  """EMS on nodes increasing in lambda: lambdas, l, s (N,) and b (N, *shape)."""

  lambdas: jax.Array
  l: jax.Array
  s: jax.Array
  b: jax.Array


def degenerate_statistics(lambda_range, shape) -> Statistics:
  """l = 1, s = b = 0 over lambda_range (lo, hi): DPM-Solver++'s linearisation."""
  return Statistics(lambda_range, np.ones(2), np.zeros(2), np.zeros((2, *shape)))


def read_statistics(path: str, shape) -> Statistics:
  """The EMS of --mode=ems in `path` (.npz; numpy float64), checked against the data shape."""
  try:
    with np.load(path) as f:
      stats = Statistics(*(np.asarray(f[k], np.float64) for k in Statistics._fields))
  except FileNotFoundError:
    raise MissingFileError(f"sampling.ems={path!r} is not a file; run --mode=ems first, or set "
                           "sampling.ems to a name in workdir/ems.") from None
  if stats.b.shape[1:] != tuple(shape):
    raise UserError(f"The EMS in {path} are for data shaped {stats.b.shape[1:]}, not "
                    f"{tuple(shape)}: estimate them with this model's config.")
  return stats


def check_coverage(stats: Statistics, lam, path: str) -> None:
  """One line where a concrete grid's half-log-SNRs lam (n,) leave the range of the EMS."""
  if isinstance(lam, jax.core.Tracer):
    return
  lo, hi = float(stats.lambdas[0]), float(stats.lambdas[-1])
  slack = 1e-5 * (hi - lo)
  if lam.min() < lo - slack or lam.max() > hi + slack:
    raise UserError(f"The EMS in {path} cover lambda in [{lo:.4g}, {hi:.4g}]; this grid reaches "
                    f"[{lam.min():.4g}, {lam.max():.4g}]: estimate them with the same "
                    "sampling.eps (--mode=ems).")


def _segment(lam, nodes, xp=jnp):
  """The node interval k of each lambda (clamped to the end intervals) and lambda - nodes[k]."""
  k = xp.clip(xp.searchsorted(nodes, lam, side="right") - 1, 0, nodes.shape[0] - 2)
  return k, lam - nodes[k]


def _slope(k, nodes, values):
  return (values[k + 1] - values[k]) / (nodes[k + 1] - nodes[k])


def interpolate(lam, nodes, values, xp=jnp):
  """The piecewise-linear interpolant of scalar `values` (N,) at lam (any shape); xp: the array
  module (numpy for a concrete grid, jax.numpy for a traced one)."""
  k, d = _segment(lam, nodes, xp)
  return values[k] + _slope(k, nodes, values) * d


def integral(lam, nodes, values, xp=jnp):
  """int_{nodes[0]}^lam of the piecewise-linear interpolant of `values` (N,), exactly."""
  cumulative = xp.concatenate([xp.zeros(1, values.dtype), xp.cumsum(
      0.5 * (values[1:] + values[:-1]) * xp.diff(nodes))])
  k, d = _segment(lam, nodes, xp)
  return cumulative[k] + values[k] * d + 0.5 * _slope(k, nodes, values) * d * d


def _gauss(lo, hi):
  """Gauss-Legendre nodes and weights (..., Q) for the signed integral from lo to hi (...)."""
  unit, weights = np.polynomial.legendre.leggauss(QUADRATURE_POINTS)
  mid, half = 0.5 * (hi + lo)[..., None], 0.5 * (hi - lo)[..., None]
  lead = (1,) * np.ndim(lo)
  return mid + half * unit.reshape(*lead, -1), half * weights.reshape(*lead, -1)


def _node_weights(lam, values, nodes, xp=jnp):
  """Weights (S, N) over nodes of sum_q values[s, q] b(lam[s, q]) for b interpolated linearly."""
  k, d = _segment(lam, nodes, xp)
  frac = d / (nodes[k + 1] - nodes[k])
  rows = np.broadcast_to(np.arange(lam.shape[0]).reshape(-1, *([1] * (lam.ndim - 1))), lam.shape)
  out = xp.zeros((lam.shape[0], nodes.shape[0]), values.dtype)
  for index, part in ((k, values * (1 - frac)), (k + 1, values * frac)):
    if xp is np:
      np.add.at(out, (rows, index), part)
    else:
      out = out.at[rows, index].add(part)
  return out


def derivative_weights(lam, count, pseudo: bool, xp=jnp):
  """W (S, K-1, K-1) with g^(k)(lambda_0) ~ sum_j W[k-1, j-1] (g_j - g_0), from the first count
  of the points lam (S, K): the derivatives of their interpolating polynomial, or with `pseudo`,
  k! times the divided differences [lambda_0..lambda_k] g (the official `pseudo` option)."""
  kk = lam.shape[1]
  k = np.arange(1, kk)[None, :, None]                                       # derivative order
  j = np.arange(1, kk)[None, None, :]                                       # point
  used = (k < count[:, None, None]) & (j < count[:, None, None])
  gap = lam[:, 1:] - lam[:, :1]                                             # (S, K-1)
  if not pseudo:
    factorial = np.array([math.factorial(i) for i in range(1, kk)], float)[None, None]
    vandermonde = xp.where(used.transpose(0, 2, 1),
                           gap[:, :, None] ** np.arange(1, kk)[None, None] / factorial,
                           np.eye(kk - 1)[None])                             # [j, k]
    return xp.where(used, xp.linalg.inv(vandermonde), 0.0)
  m = np.arange(kk)[None, None, None, :]
  diffs = lam[:, None, 1:, None] - lam[:, None, None, :]                    # lambda_j - lambda_m
  factors = xp.where((m <= k[..., None]) & (m != j[..., None]), diffs, 1.0)
  factorial = np.array([math.factorial(i) for i in range(1, kk)], float)[None, :, None]
  used = used & (j <= k)
  return xp.where(used, factorial / xp.where(used, xp.prod(factors, axis=-1), 1.0), 0.0)


class StepCoefficients(NamedTuple):
  """x_t = rho x_s + sum_j coef[j] f_j + b_weights @ b, per step (S,), (S, K), (S, N)."""

  rho: jax.Array
  coef: jax.Array
  b_weights: jax.Array


def step_coefficients(stats: Statistics, lam, count, lam_t, a_s, a_t, pseudo: bool, xp=jnp):
  """The linear update of each step (S,) from lam[:, 0] to lam_t with f at the first count of
  the points lam (S, K)."""
  nodes = stats.lambdas
  big_l = lambda u: integral(u, nodes, stats.l, xp)
  big_s = lambda u: integral(u, nodes, stats.s, xp)
  lam_s = lam[:, 0]
  ls_s, s_s = big_l(lam_s) + big_s(lam_s), big_s(lam_s)
  e_s = lambda u: xp.exp(big_l(u) + big_s(u) - ls_s.reshape(-1, *([1] * (u.ndim - 1))))
  u, w = _gauss(lam_s, lam_t)                                               # (S, Q)
  kk = lam.shape[1]
  powers = xp.stack([(u - lam_s[:, None]) ** k / math.factorial(k) for k in range(kk)], 1)
  moments = xp.sum(w[:, None] * e_s(u)[:, None] * powers, axis=-1)        # J_k (S, K)
  moments = xp.where(np.arange(kk)[None] < count[:, None], moments, 0.0)
  weights = derivative_weights(lam, count, pseudo, xp)                          # (S, K-1, K-1)
  uses = xp.einsum("sk,skj->sj", moments[:, 1:], weights)                  # u_j (S, K-1)
  scale = -a_t * xp.exp(big_l(lam_s) - big_l(lam_t))
  rho = a_t / a_s * xp.exp(big_l(lam_s) - big_l(lam_t))
  coef = scale[:, None] * xp.concatenate(
      [moments[:, :1] - xp.sum(uses, 1, keepdims=True),
       uses * xp.exp(s_s[:, None] - big_s(lam[:, 1:]))], axis=1)
  # int_s^t E_s(u) beta(u) du = int_s^t e^(S_s - S(r)) b(r) [int_r^t E_s] dr
  inner_u, inner_w = _gauss(u, xp.broadcast_to(lam_t[:, None], u.shape))  # (S, Q, Q)
  tail = xp.sum(inner_w * e_s(inner_u), -1)                                # (S, Q)
  b_weights = _node_weights(u, scale[:, None] * w * xp.exp(s_s[:, None] - big_s(u)) * tail, nodes,
                           xp)
  # - sum_j u_j beta(lambda_j), beta(lambda_j) = int_s^j e^(S_s - S(r)) b(r) dr
  r, wr = _gauss(xp.broadcast_to(lam_s[:, None], lam[:, 1:].shape), lam[:, 1:])  # (S, K-1, Q)
  beta = -scale[:, None, None] * uses[..., None] * wr * xp.exp(s_s[:, None, None] - big_s(r))
  if kk > 1:
    b_weights = b_weights + _node_weights(r, beta, nodes, xp)
  return StepCoefficients(rho, coef, b_weights)


def _history_slots(size: int, corrector: bool) -> np.ndarray:
  """The history slot (f_i, f_{i-1}, ...) of each point a step uses, in the order its update
  reads them: i, i-1, ... (predictor from x_i) or i-1, i, i-2, ... (corrector of x_i from
  x_{i-1}); slot k is grid point i - k."""
  return np.concatenate([[1, 0], np.arange(2, size)])[:size] if corrector else np.arange(size)


def _run_coefficients(stats, lam, a, shape, size: int, counts, corrector: bool, pseudo: bool,
                      xp):
  """(rho (S,), coef (S, size) over the history (f_i, f_{i-1}, ...), const (S, *shape)) of the
  predictor (x_{i+1} from x_i) or corrector (x_i from x_{i-1}) of every step i over the grid's
  half-log-SNRs lam (n,), S = n - 1, with counts (S,) points each."""
  steps = lam.shape[0] - 1
  slots = _history_slots(size, corrector)
  idx = np.maximum(np.arange(steps)[:, None] - slots[None, :], 0)  # (S, size); unused below 0
  target = np.arange(steps) if corrector else np.arange(1, steps + 1)
  c = step_coefficients(stats, lam[idx], counts, lam[target], a[idx[:, 0]], a[target], pseudo, xp)
  coef = c.coef[:, np.argsort(slots)]
  const = (c.b_weights @ stats.b.reshape(stats.b.shape[0], -1)).reshape(steps, *shape)
  return c.rho, coef, const


def grid_coefficients(sde, times):
  """(a, s, lambda) (n,) of the grid and the array module to go on with: numpy (float64) for a
  concrete grid, so the step coefficients cost no compilation; jax.numpy for a traced one (a
  schedule being learned through the solver)."""
  if isinstance(times, jax.core.Tracer):
    a, s = sde.marginal_coeffs(times)
    return a, s, jnp.log(a) - jnp.log(s), jnp
  with jax.ensure_compile_time_eval():
    a, s = (np.asarray(v, np.float64) for v in sde.marginal_coeffs(times))
  return a, s, np.log(a) - np.log(s), np


def dpm_solver_v3(fns, times, keys, shape, ems: str = "", order: int = 3,
                  predictor_pseudo: bool = False, use_corrector: bool = True,
                  corrector_pseudo: bool = False, lower_order_final: bool = True,
                  denoise: bool = True):
  """Samples (B, *shape) over `times` (n,) (T to eps): n - 1 steps of one model call each, then
  D(x, eps) if `denoise`: n - 1 (+ 1) NFE. ems: a statistics .npz of --mode=ems (a NAME in
  workdir/ems through the workflows), "" for l = 1, s = b = 0. Step i has order min(order, i + 1),
  with lower_order_final also at most n - 1 - i (at every length, as the official code); the
  corrector of x_i (use_corrector, i >= 1) has the order of the step that made x_i, plus one with
  corrector_pseudo. keys (B, key): per-sample keys (the prior from step 0)."""
  if order not in (1, 2, 3, 4):
    raise ArgumentError("order", f"{{arg}} of dpm_solver_v3 must be 1 to 4; got {order}.")
  n, dtype = times.shape[0], times.dtype
  a, s, lam, xp = grid_coefficients(fns.sde, times)
  if ems:
    stats = read_statistics(ems, shape)
    check_coverage(stats, lam, ems)
  else:
    stats = degenerate_statistics((lam.min(), lam.max()), shape)
  stats = Statistics(*(xp.asarray(v, np.float64 if xp is np else dtype) for v in stats))
  size = max(2, order + int(use_corrector and corrector_pseudo))  # history (f_i, f_{i-1}, ...)
  p_orders = step_orders(n - 1, order, lower_order_final, at_any_length=True)
  c_orders = np.concatenate([[0], p_orders[:-1] + int(corrector_pseudo)])
  c_orders = np.where(use_corrector, c_orders, 0)
  predictor = _run_coefficients(stats, lam, a, shape, size, p_orders, False, predictor_pseudo, xp)
  corrector = _run_coefficients(stats, lam, a, shape, size, np.maximum(c_orders, 1), True,
                                corrector_pseudo, xp)
  l_grid = interpolate(lam, stats.lambdas, stats.l, xp)
  as_run = lambda tree: jax.tree.map(lambda v: jnp.asarray(v, dtype), tree)
  predictor, corrector, (a, s, l_grid) = as_run(predictor), as_run(corrector), as_run((a, s, l_grid))
  x = fns.initial(keys, shape)
  vec = lambda v: jnp.full((x.shape[0],), v, dtype)

  def update(rho, coef, const, x, history):
    return rho * x + jnp.tensordot(coef, history, 1) + const[None]

  def body(carry, inputs):
    x_prev, x, history = carry
    i, t, t_next, a_t, s_t, l_t, p, c, correct = inputs
    f = (s_t * fns.eps(x, vec(t)) - l_t * x) / a_t
    history = jnp.concatenate([f[None], history[:-1]])
    corrected = fns.constrain(update(*c, x_prev, history), vec(t), n + 1 + i)
    x = jnp.where(correct, corrected, x)
    x_next = fns.constrain(update(*p, x, history), vec(t_next), i + 1)
    return (x, x_next, history), None

  if n > 1:
    inputs = (jnp.arange(n - 1), times[:-1], times[1:], a[:-1], s[:-1], l_grid[:-1], predictor,
              corrector, jnp.asarray(c_orders > 1))
    history = jnp.zeros((size, *x.shape), dtype)
    (_, x, _), _ = jax.lax.scan(body, (x, x, history), inputs)
  return final_denoise(fns, x, times, denoise), n - 1 + int(denoise)
