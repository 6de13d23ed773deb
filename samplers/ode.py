"""Probability-flow ODE sampling, adaptive solver inside jit (Song et al. 2021, Sec. 4.3).

Each sample is its own ODE (jax.vmap of diffrax.diffeqsolve), so its path and step sizes do not
depend on the rest of the batch (up to float rounding that differs between compiled batch
shapes, which adaptive stepping can amplify to the solver tolerance); the score is still
evaluated on the whole batch at once.
"""
import diffrax
import jax
import jax.numpy as jnp

from samplers.noise import per_sample_prior
from samplers.predictors import reverse_diffusion

# name -> (solver class, new vector-field evaluations per step; all three reuse the last stage).
ODE_SOLVERS = {
    "dopri5": (diffrax.Dopri5, 6),  # Dormand-Prince 5(4), scipy's RK45
    "tsit5": (diffrax.Tsit5, 6),  # Tsitouras 5(4)
    "bosh3": (diffrax.Bosh3, 3),  # Bogacki-Shampine 3(2), scipy's RK23
}


def get_ode_solver(name: str):
  """(solver class, evaluations per step) registered as `name` (one of ODE_SOLVERS)."""
  if name not in ODE_SOLVERS:
    raise ValueError(f"Unknown ODE solver {name!r}; choose one of {sorted(ODE_SOLVERS)}.")
  return ODE_SOLVERS[name]


def flow_drift(sde, score_fn):
  """Probability-flow drift f(x, t) - g(t)^2 score(x, t) / 2 (Eq. 13) of ONE sample:
  (x (*shape), t ()) -> (*shape). Under jax.vmap the score sees the whole batch."""
  rsde = sde.reverse(score_fn, probability_flow=True)
  return lambda x, t: rsde.sde(x[None], jnp.full((1,), t, x.dtype))[0][0]


def integrate(vector_field, y0, t0, t1, method, rtol, atol, max_steps):
  """Solves dy/dt = vector_field(t, y) from t0 to t1 with adaptive steps (PID controller).

  y0 is one sample's pytree. Returns y(t1), NaN where the solve failed (e.g. max_steps
  reached: NaN rather than a host callback keeps the program free of host round trips and
  cacheable), and the number of vector-field evaluations (int32 scalar): 1 initial +
  evaluations per step x steps taken (accepted and rejected).
  """
  solver, evals_per_step = get_ode_solver(method)
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, args: vector_field(t, y)), solver(), t0, t1, None, y0,
      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps,
      saveat=diffrax.SaveAt(t1=True), throw=False)
  ok = sol.result == diffrax.RESULTS.successful
  y1 = jax.tree.map(lambda y: jnp.where(ok, y[0], jnp.nan), sol.ys)
  return y1, 1 + evals_per_step * sol.stats["num_steps"]


def ode_sample(sde, score_fn, keys, shape, rtol: float = 1e-5, atol: float = 1e-5,
               method: str = "dopri5", eps: float = 1e-3, denoise: bool = False,
               max_steps: int = 4096):
  """Samples (B, *shape) by integrating the probability-flow ODE from T to eps.

  keys (B, key): per-sample keys; the prior sample comes from step 0 of each. `denoise` adds
  one noise-free reverse-diffusion step at eps (released code). Returns (samples, nfe) with
  nfe (B,) int32 per-sample score evaluations; the batch costs nfe.max() batched calls.
  """
  drift = flow_drift(sde, score_fn)
  solve = lambda x: integrate(lambda t, y: drift(y, t), x, sde.T, eps, method, rtol, atol,
                              max_steps)
  x, nfe = jax.vmap(solve)(per_sample_prior(sde, keys, 0, shape))
  if denoise:
    t = jnp.full((x.shape[0],), eps, x.dtype)
    _, x = reverse_diffusion(sde, score_fn, x, t, jnp.zeros_like(x), False)
    nfe = nfe + 1
  return x, nfe
