"""Probability-flow ODE sampling, adaptive solver inside jit (Song et al. 2021, Sec. 4.3).

By default each sample is its own ODE (jax.vmap of diffrax.diffeqsolve), so its path and step
sizes do not depend on the rest of the batch (up to float rounding that differs between compiled
batch shapes, which adaptive stepping can amplify to the solver tolerance); the score is still
evaluated on the whole batch at once, and the batch costs its slowest sample's NFE. With
`whole_batch` the batch is one ODE (the released code): one step size for all, usually fewer
score calls at large batch, but samples are coupled through the shared error norm.
"""
import diffrax
import jax
import jax.numpy as jnp

from configs.errors import UserError

# name -> (solver class, new vector-field evaluations per step; all three reuse the last stage).
ODE_SOLVERS = {
    "dopri5": (diffrax.Dopri5, 6),  # Dormand-Prince 5(4), scipy's RK45
    "tsit5": (diffrax.Tsit5, 6),  # Tsitouras 5(4)
    "bosh3": (diffrax.Bosh3, 3),  # Bogacki-Shampine 3(2), scipy's RK23
}
# Evaluations besides the steps: the first stage (diffrax reuses it to pick the initial step).
INITIAL_EVALS = 1


def get_ode_solver(name: str):
  """(solver class, evaluations per step) registered as `name` (one of ODE_SOLVERS)."""
  if name not in ODE_SOLVERS:
    raise UserError(f"Unknown ODE solver {name!r}; choose one of {sorted(ODE_SOLVERS)}.")
  return ODE_SOLVERS[name]


def flow_drift(fns):
  """Probability-flow drift f(x, t) - g(t)^2 score(x, t) / 2 (Eq. 13) of a batch:
  (x (B, ...), t ()) -> (B, ...)."""
  rsde = fns.sde.reverse(fns.score, probability_flow=True)
  return lambda x, t: rsde.sde(x, jnp.full((x.shape[0],), t, x.dtype))[0]


def integrate(vector_field, y0, t0, t1, method, rtol, atol, max_steps):
  """Solves dy/dt = vector_field(t, y) from t0 to t1 with adaptive steps (PID controller).

  y0 is a pytree. Returns y(t1), NaN where the solve failed (e.g. max_steps reached: NaN rather
  than a host callback keeps the program free of host round trips; callers count and report
  them), and the number of vector-field evaluations (int32 scalar).
  """
  solver, evals_per_step = get_ode_solver(method)
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, args: vector_field(t, y)), solver(), t0, t1, None, y0,
      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps,
      saveat=diffrax.SaveAt(t1=True), throw=False)
  ok = sol.result == diffrax.RESULTS.successful
  y1 = jax.tree.map(lambda y: jnp.where(ok, y[0], jnp.nan), sol.ys)
  return y1, INITIAL_EVALS + evals_per_step * sol.stats["num_steps"]


def _first(solution):
  """(y (1, ...), nfe) -> (y[0], nfe): one sample's solution under jax.vmap."""
  return solution[0][0], solution[1]


def ode_sample(fns, keys, shape, rtol: float = 1e-5, atol: float = 1e-5, method: str = "dopri5",
               eps: float = 1e-3, denoise: bool = False, max_steps: int = 4096,
               whole_batch: bool = False):
  """Samples (B, *shape) by integrating the probability-flow ODE from T to eps.

  keys (B, key): per-sample keys; the prior sample comes from step 0 of each. `denoise` adds
  the denoising step D(x, eps) (Tweedie; the released code's noise-free reverse-diffusion step).
  Returns (samples, nfe) with nfe (B,) int32 per-sample score evaluations; samples whose solve
  failed are NaN.
  """
  if fns.project is not None:
    raise UserError("The adaptive ODE solver cannot apply a per-step projection (e.g. "
                     "inpainting's replacement); use a grid solver (pc, ddim, heun, ...).")
  drift = flow_drift(fns)
  x = fns.initial(keys, shape)
  solve = lambda y: integrate(lambda t, v: drift(v, t), y, fns.sde.T, eps, method, rtol, atol,
                              max_steps)
  if whole_batch:
    x, nfe = solve(x)
    nfe = jnp.full((x.shape[0],), nfe)
  else:
    x, nfe = jax.vmap(lambda y: _first(solve(y[None])))(x)
  if denoise:
    x = fns.denoise(x, jnp.full((x.shape[0],), eps, x.dtype))
    nfe = nfe + 1
  return x, nfe
