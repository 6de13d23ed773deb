"""On-device adaptive ODE sampling and likelihood vs scipy's solve_ivp on the host.

Device: samplers.ode_sample / log_likelihood (diffrax Dopri5 + PID controller inside one jit;
each sample its own ODE, and for sampling also the whole batch as one ODE). Host: scipy.integrate.solve_ivp(method='RK45') on the flattened
batch, calling the jitted probability-flow drift (and its Hutchinson divergence) once per
evaluation, as the released code does. Same model (a small MLP score network with random
parameters: timing only; its flow is not a density's and its samples grow large, hence the
relative difference column), same start points, same rtol/atol.

  python benchmarks/ode_vs_scipy.py --batch 128 --dims 2
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate

import models
from models.mlp import MLP
from samplers import (ModelFns, log_likelihood, ode_sample, per_sample_prior, sample_keys,
                      step_keys)
from sde_lib import get_sde
from timing import best_time


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--dims", type=int, default=2)
  parser.add_argument("--sde", default="vpsde", choices=["vesde", "vpsde", "subvpsde"])
  parser.add_argument("--nf", type=int, default=128, help="MLP width")
  parser.add_argument("--layers", type=int, default=3, help="MLP residual blocks")
  parser.add_argument("--rtol", type=float, default=1e-5)
  parser.add_argument("--atol", type=float, default=1e-5)
  parser.add_argument("--repeats", type=int, default=3)
  return parser.parse_args()




def host_functions(sde, model, params, batch, dims):
  """Jitted batch drift f(x, t) and (drift, Hutchinson divergence) for the host solver."""
  def drift(x, t):
    rsde = sde.reverse(lambda y, s: model.score(params, y, s), probability_flow=True)
    return rsde.sde(x, jnp.full((batch,), t, x.dtype))[0]

  def drift_and_div(x, t, probe):
    out, jvp = jax.jvp(lambda y: drift(y, t), (x,), (probe,))
    return out, jnp.sum(probe * jvp, axis=-1)

  return jax.jit(drift), jax.jit(drift_and_div)


def scipy_sample(drift, x_T, t0, t1, rtol, atol):
  """Integrates the flattened batch from t0 to t1 with RK45: (samples, nfe)."""
  shape = x_T.shape
  fun = lambda t, y: np.asarray(drift(jnp.asarray(y.reshape(shape), jnp.float32), t),
                                np.float64).ravel()
  sol = integrate.solve_ivp(fun, (t0, t1), x_T.ravel().astype(np.float64), rtol=rtol, atol=atol,
                            method="RK45")
  return sol.y[:, -1].reshape(shape), sol.nfev


def scipy_likelihood(sde, drift_and_div, x, probe, t0, t1, rtol, atol):
  """log p(x) with the augmented ODE (x, delta logp) on the host: (logp (B,), nfe)."""
  shape, batch = x.shape, x.shape[0]

  def fun(t, state):
    y = jnp.asarray(state[:-batch].reshape(shape), jnp.float32)
    out, div = drift_and_div(y, t, probe)
    return np.concatenate([np.asarray(out, np.float64).ravel(), np.asarray(div, np.float64)])

  init = np.concatenate([x.ravel(), np.zeros(batch)]).astype(np.float64)
  sol = integrate.solve_ivp(fun, (t0, t1), init, rtol=rtol, atol=atol, method="RK45")
  z = jnp.asarray(sol.y[:-batch, -1].reshape(shape), jnp.float32)
  return np.asarray(sde.prior_logp(z)) + sol.y[-batch:, -1], sol.nfev


def main():
  args = parse_args()
  sde = get_sde(args.sde)
  embedding = "fourier" if args.sde == "vesde" else "positional"
  name = models.parameterization_name("score_sde", args.sde, True)
  model = models.NetworkScore(sde, MLP(nf=args.nf, num_layers=args.layers,
                                       embedding_type=embedding),
                              models.PARAMETERIZATIONS[name](sde))
  params = model.init(jax.random.key(1), jnp.zeros((args.batch, args.dims)))
  keys = sample_keys(jax.random.key(2), jnp.arange(args.batch))
  fns = lambda p: ModelFns(sde, lambda y, s: model.score(p, y, s))
  tol = dict(rtol=args.rtol, atol=args.atol)
  sample = jax.jit(lambda p, k: ode_sample(fns(p), k, (args.dims,), **tol))
  sample_whole = jax.jit(lambda p, k: ode_sample(fns(p), k, (args.dims,), whole_batch=True, **tol))
  likelihood = jax.jit(lambda p, x, k: log_likelihood(fns(p), x, k, "gaussian", **tol))
  drift, drift_and_div = host_functions(sde, model, params, args.batch, args.dims)

  dev_sample_s, (x, dev_sample_nfe) = best_time(lambda: sample(params, keys), args.repeats)
  whole_s, (x_whole, whole_nfe) = best_time(lambda: sample_whole(params, keys), args.repeats)
  x_T = np.asarray(per_sample_prior(sde, keys, 0, (args.dims,)))
  host_sample_s, (x_host, host_sample_nfe) = best_time(
      lambda: scipy_sample(drift, x_T, sde.T, 1e-3, **tol), args.repeats)
  dev_ll_s, (logp, _, dev_ll_nfe) = best_time(lambda: likelihood(params, x, keys), args.repeats)
  probe = jax.vmap(lambda k: jax.random.normal(k, (args.dims,)))(step_keys(keys, 0))
  host_ll_s, (logp_host, host_ll_nfe) = best_time(lambda: scipy_likelihood(
      sde, drift_and_div, np.asarray(x, np.float64), probe, 1e-5, sde.T, **tol), args.repeats)

  print(f"sde={args.sde} batch={args.batch} dims={args.dims} MLP nf={args.nf} "
        f"layers={args.layers} rtol={args.rtol} atol={args.atol}")
  print("device NFE: per-sample mean / max (the batch costs max); scipy NFE: batch evaluations")
  print(f"{'task':>11} {'device s':>9} {'device NFE':>11} {'scipy s':>8} {'scipy NFE':>9} "
        f"{'speed-up':>8} {'rel. diff':>9}")
  rel_diff = lambda a, b: np.abs(np.asarray(a) - b).max() / np.abs(b).max()
  rows = [("sampling", dev_sample_s, dev_sample_nfe, host_sample_s, host_sample_nfe,
           rel_diff(x, x_host)),
          ("whole-batch", whole_s, whole_nfe, host_sample_s, host_sample_nfe,
           rel_diff(x_whole, x_host)),
          ("likelihood", dev_ll_s, dev_ll_nfe, host_ll_s, host_ll_nfe, rel_diff(logp, logp_host))]
  for task, dev_s, dev_nfe, host_s, host_nfe, diff in rows:
    nfe = f"{float(jnp.mean(dev_nfe)):.0f} / {int(jnp.max(dev_nfe))}"
    print(f"{task:>11} {dev_s:>9.3f} {nfe:>11} {host_s:>8.3f} {host_nfe:>9} "
          f"{host_s / dev_s:>7.1f}x {diff:>9.1e}")


if __name__ == "__main__":
  main()
