"""Exact log-likelihoods through the probability-flow ODE (Song et al. 2021, Sec. 4.3, App. D.2).

log p_eps(x) = log p_T(x(T)) + int_eps^T div f~(x(t), t) dt  (Eq. 39), where x(t) solves the
probability-flow ODE dx/dt = f~(x, t) (Eq. 13) from x(eps) = x. The divergence is exact
(Jacobian trace) or a Hutchinson-Skilling estimate z^T (df~/dx) z with one probe z per sample,
fixed along the path (FFJORD), so the estimate is an unbiased, continuous function of x.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import UserError
from samplers.per_sample_keys import step_keys
from samplers.ode import flow_drift, integrate


class TraceEstimator(NamedTuple):
  probe: Callable  # (key, x (*shape)) -> probe like x (or None)
  divergence: Callable  # (fn, y (*shape), probe) -> (fn(y), div fn at y ())


def hutchinson_divergence(fn, y, probe):
  """fn(y) and z^T (dfn/dy) z with z = probe, by one forward-mode JVP."""
  out, jvp = jax.jvp(fn, (y,), (probe,))
  return out, jnp.sum(probe * jvp)


def exact_divergence(fn, y, probe):
  """fn(y) and the trace of the full Jacobian (one JVP per dimension: low dimensions only)."""
  del probe

  def out_and_aux(v):
    out = fn(v)
    return out, out

  jac, out = jax.jacfwd(out_and_aux, has_aux=True)(y)
  return out, jnp.trace(jac.reshape(y.size, y.size))


TRACE_ESTIMATORS = {
    "gaussian": TraceEstimator(lambda key, x: jax.random.normal(key, x.shape, x.dtype),
                               hutchinson_divergence),
    "rademacher": TraceEstimator(lambda key, x: jax.random.rademacher(key, x.shape, x.dtype),
                                 hutchinson_divergence),
    "exact": TraceEstimator(lambda key, x: None, exact_divergence),
}


def get_trace_estimator(name: str) -> TraceEstimator:
  """The trace estimator registered as `name` (one of TRACE_ESTIMATORS)."""
  if name not in TRACE_ESTIMATORS:
    raise UserError(
        f"Unknown trace estimator {name!r}; choose one of {sorted(TRACE_ESTIMATORS)}.")
  return TRACE_ESTIMATORS[name]


def log_likelihood(fns, x, keys, trace: str = "gaussian", rtol: float = 1e-5,
                   atol: float = 1e-5, eps: float = 1e-5, method: str = "dopri5",
                   max_steps: int = 4096):
  """log p_eps(x) (B,) in nats, the prior latent z = x(T) (B, ...) and NFE (B,) int32.

  fns: samplers.ModelFns; x (B, ...) data; keys (B, key) per-sample keys for the Hutchinson
  probes (step 0 of each). Each sample is its own ODE (vmap of the solver); one NFE is one score
  evaluation together with its divergence (a JVP, or a Jacobian for 'exact'). A failed solve
  gives NaN (callers count and report them).
  """
  estimator = get_trace_estimator(trace)
  batch_drift = flow_drift(fns)
  drift = lambda y, t: batch_drift(y[None], t)[0]

  def one(x0, key):
    probe = estimator.probe(key, x0)
    vector_field = lambda t, state: estimator.divergence(lambda y: drift(y, t), state[0], probe)
    (z, delta), nfe = integrate(vector_field, (x0, jnp.zeros((), x0.dtype)), eps, fns.sde.T,
                                method, rtol, atol, max_steps)
    return z, delta, nfe

  z, delta, nfe = jax.vmap(one)(x, step_keys(keys, 0))
  return fns.sde.prior_logp(z) + delta, z, nfe


def nats_per_dim(logp, dim: int):
  """Negative log-likelihood per dimension in nats: (B,) -> (B,)."""
  return -logp / dim


def bits_per_dim(logp, dim: int, data_width: float, num_bins: int = 256):
  """Bits/dim of discrete data with num_bins levels spread over an interval of width data_width,
  under uniform dequantisation: -logp / (dim ln 2) + log2(num_bins / data_width), so +8 for data
  in [0, 1] and +7 for [-1, 1] (the released code's offset). (B,) -> (B,)."""
  return -logp / (dim * np.log(2.0)) + np.log2(num_bins / data_width)
