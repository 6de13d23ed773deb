"""Empirical model statistics (EMS) of DPM-Solver-v3 (Zheng et al. 2023, Sec. 3)
at one half-log-SNR lambda, over data x0 perturbed to x = a x0 + s z:

  l = E tr(grad_x (s eps(x))) / D       (minimises E ||grad_x (s eps - l x)||_F^2, Hutchinson),
  f = (s eps - l x) / a,   f' = d f / dlambda along the ODE dx/dlambda = (a'/a) x - s eps,
  s, b = argmin E ||f' - s f - b||^2     (s a scalar, b (D,)).

f' is one forward-mode derivative in (x, lambda) plus -l' x / a, l' from the fitted l across the
nodes; its per-example values are reduced on the host (`fit_sb`). The same noise z and probe v
serve every node, so l is smooth in lambda and its finite differences are too.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np


def lambda_nodes(sde, eps: float, num_nodes: int) -> np.ndarray:
  """num_nodes + 1 half-log-SNRs (increasing) uniform from lambda(T) to lambda(eps)."""
  a, s = sde.marginal_coeffs(jnp.asarray([sde.T, eps], jnp.float32))
  lam = np.log(np.asarray(a, np.float64)) - np.log(np.asarray(s, np.float64))
  return np.linspace(lam[0], lam[1], num_nodes + 1)


def _coeffs(sde, lam):
  """(t, a, s) at the half-log-SNR lam (scalar)."""
  t = sde.time_at_noise_level(jnp.exp(-lam))
  a, s = sde.marginal_coeffs(t)
  return t, a, s


def trace_terms(fns, x0, z, v, lam):
  """v . grad_x(s eps(x)) v / D (B,) at x = a x0 + s z: per-example terms of l's estimate."""
  t, a, s = _coeffs(fns.sde, lam)
  noise_fn = lambda x: s * fns.eps(x, jnp.full(x.shape[:1], t, x.dtype))
  _, jv = jax.jvp(noise_fn, (a * x0 + s * z,), (v,))
  return jnp.sum((v * jv).reshape(len(x0), -1), axis=1) / np.prod(x0.shape[1:])


def regression_terms(fns, x0, z, lam, l, dl):
  """(f, f') (B, ...) at x = a x0 + s z, with l and its slope dl at lam."""
  sde = fns.sde
  t, a, s = _coeffs(sde, lam)
  x = a * x0 + s * z
  dlog_a = jax.jvp(lambda u: jnp.log(_coeffs(sde, u)[1]), (lam,), (jnp.ones_like(lam),))[1]
  dx = dlog_a * x - s * fns.eps(x, jnp.full(x.shape[:1], t, x.dtype))

  def f_of(x, u):
    t, a, s = _coeffs(sde, u)
    return (s * fns.eps(x, jnp.full(x.shape[:1], t, x.dtype)) - l * x) / a

  f, df = jax.jvp(f_of, (x, lam), (dx, jnp.ones_like(lam)))
  return f, df - dl * x / a


def fit_sb(f: np.ndarray, df: np.ndarray):
  """s (scalar) and b (...) minimising the mean of ||df - s f - b||^2 over the examples of f, df
  (M, ...). Where f does not vary (Var f ~ 0, e.g. isotropic Gaussian data) s is 0, the least-
  norm solution."""
  f, df = np.asarray(f, np.float64), np.asarray(df, np.float64)
  mean_f, mean_df = f.mean(0), df.mean(0)
  var = np.sum(np.mean(np.square(f), 0) - np.square(mean_f))
  cov = np.sum(np.mean(f * df, 0) - mean_f * mean_df)
  s = cov / var if var > 1e-12 * np.sum(np.mean(np.square(f), 0)) else 0.0
  return float(s), mean_df - s * mean_f


def slopes(lambdas: np.ndarray, l: np.ndarray) -> np.ndarray:
  """dl/dlambda at the nodes: second-order finite differences (one-sided at the ends)."""
  return np.gradient(l, lambdas, edge_order=2)


def estimate(fns, x0, z, v, lambdas: np.ndarray):
  """(l, s, b) (N,), (N,), (N, ...) at the nodes `lambdas` (N,) from data x0 with noise z and
  probes v (M, ...), all in memory on one device (--mode=ems batches them over devices and
  resumes)."""
  trace = jax.jit(lambda *args: jnp.mean(trace_terms(fns, *args)))  # data as arguments, not
  l = np.array([float(trace(x0, z, v, lam)) for lam in lambdas])    # constants to fold
  regression = jax.jit(functools.partial(regression_terms, fns))
  fitted = [fit_sb(*regression(x0, z, lam, l_k, dl_k))
            for lam, l_k, dl_k in zip(lambdas, l, slopes(lambdas, l))]
  return l, np.array([s for s, _ in fitted]), np.stack([b for _, b in fitted])
