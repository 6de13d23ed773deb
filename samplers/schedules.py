"""Time schedules made for a model and a solver, and the grid that reads them back.

GITS (Chen et al. 2024, "On the Trajectory Regularity of ODE-based Diffusion Sampling", Sec. 4):
teacher trajectories on a fine grid of M times, the cost c(i, j) of one solver step from the
teacher's state at fine time i to fine time j (its mean squared distance to the teacher's state
at j), and the n-point path from T to eps of least total cost by dynamic programming.

Learned (LD3-style, Tong et al. 2025): the n times as a softmax over increments of a
rho-ramp in sigma (zero logits: the edm grid), fitted by gradient descent through the jitted
solver so that its samples match the teacher's from the same prior draws.

A schedule file (workdir/schedules/NAME.json) holds `times` (n,) and what they were made for
(the SDE, the solver, num_steps, NFE, the method and its losses); `sampling.grid=file` with
`sampling.grid_path` reads it.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import fileio
from configs.errors import ArgumentError, MissingFileArgumentError


def substep_grid(sde, t_from, t_to, points: int):
  """`points` times from t_from to t_to, uniform in sigma (traceable scalars)."""
  sigmas = jnp.linspace(sde.noise_level(t_from[None])[0], sde.noise_level(t_to[None])[0], points)
  return sde.time_at_noise_level(sigmas).at[0].set(t_from).at[-1].set(t_to)


def solve_between(solve, fns, x, t_from, t_to, keys, points: int):
  """`solve(fns, times, keys, shape, denoise=False)` from state x (B, ...) at t_from to t_to
  over `points` times uniform in sigma: the state at t_to."""
  start = fns.with_start(lambda keys, shape: x)
  return solve(start, substep_grid(fns.sde, t_from, t_to, points), keys, x.shape[1:],
               denoise=False)[0]


def teacher_states(solve, fns, fine_times, keys, shape, substeps: int):
  """The teacher's states (M, B, *shape) at fine_times (M,) from the prior draws of `keys`: each
  fine interval solved by `solve` over substeps + 1 times."""
  def step(x, times):
    x = solve_between(solve, fns, x, times[0], times[1], keys, substeps + 1)
    return x, x

  x0 = fns.initial(keys, shape)
  _, rest = jax.lax.scan(step, x0, jnp.stack([fine_times[:-1], fine_times[1:]], axis=1))
  return jnp.concatenate([x0[None], rest])


def one_step_costs(solve, fns, fine_times, states, keys):
  """c (M, M): c[i, j] = mean over samples and coordinates of (one step of `solve` from
  states[i] at fine_times[i] to fine_times[j] - states[j])^2 for j > i, inf elsewhere."""
  m = fine_times.shape[0]

  def row(i):
    def cost(j):
      x = solve_between(solve, fns, states[i], fine_times[i], fine_times[j], keys, 2)
      return jnp.mean(jnp.square(x - states[j]))
    return jax.vmap(cost)(jnp.arange(m))

  costs = jax.lax.map(row, jnp.arange(m))
  later = jnp.arange(m)[None, :] > jnp.arange(m)[:, None]
  return jnp.where(later, costs, jnp.inf)


def cheapest_path(cost: np.ndarray, points: int) -> np.ndarray:
  """Indices (points,) from 0 to M - 1 of least total cost[i_k, i_{k+1}] (dynamic programming
  over the M x M cost matrix; cost[i, j] = inf where j <= i)."""
  m = cost.shape[0]
  if not 2 <= points <= m:
    raise ArgumentError("num_steps", f"{{arg}}={points} must lie in [2, {m}] (the fine grid).")
  best = np.full(m, np.inf)
  best[0] = 0.0
  back = np.zeros((points, m), np.int64)
  for k in range(1, points):
    total = best[:, None] + cost
    back[k], best = np.argmin(total, axis=0), np.min(total, axis=0)
  path = [m - 1]
  for k in range(points - 1, 0, -1):
    path.append(int(back[k, path[-1]]))
  return np.asarray(path[::-1])


# --- learned schedules ----------------------------------------------------------------------

def ramp_times(sde, logits, eps: float, rho: float):
  """n times from T to eps: positions u = [0, cumsum(softmax(logits))] (n - 1 logits) on the
  rho-ramp sigma(u) = (sigma_T^(1/rho) + u (sigma_eps^(1/rho) - sigma_T^(1/rho)))^rho."""
  hi, lo = (sde.noise_level(jnp.array([t], logits.dtype))[0] for t in (sde.T, eps))
  u = jnp.concatenate([jnp.zeros(1, logits.dtype), jnp.cumsum(jax.nn.softmax(logits))])
  sigmas = (hi ** (1 / rho) + u * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
  return sde.time_at_noise_level(sigmas).at[0].set(sde.T).at[-1].set(eps)


def ramp_logits(sde, times, eps: float, rho: float):
  """The logits (n - 1,) whose ramp_times are `times` (n,) (decreasing, T to eps)."""
  hi, lo = (float(sde.noise_level(jnp.array([t]))[0]) for t in (sde.T, eps))
  sigmas = np.asarray(sde.noise_level(times), np.float64)
  u = (sigmas ** (1 / rho) - hi ** (1 / rho)) / (lo ** (1 / rho) - hi ** (1 / rho))
  return jnp.asarray(np.log(np.maximum(np.diff(u), 1e-12)))


def matching_loss(solve, fns, sde, logits, keys, shape, target, eps: float, rho: float,
                  embed=lambda x: x):
  """Mean squared distance (per coordinate) of embed(samples of `solve` on ramp_times(logits)
  from the prior draws of `keys`) to `target`, the embedded teacher's samples (B, ...); embed: a
  differentiable map, e.g. a feature network (LD3's LPIPS-like distance), default the samples."""
  x = solve(fns, ramp_times(sde, logits, eps, rho), keys, shape)[0]
  return jnp.mean(jnp.square(embed(x) - target))


# --- schedule files ---------------------------------------------------------------------------

def write_schedule(path, times, **about) -> dict:
  """The schedule {"times": [...], **about} as JSON at `path` (atomically); returns it."""
  record = {"times": [float(t) for t in np.asarray(times, np.float64)], **about}
  fileio.write_json_atomic(pathlib.Path(path), record)
  return record


def read_schedule(path) -> dict:
  """The schedule file at `path` (write_schedule's JSON)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingFileArgumentError(
        "path", f"No schedule file {str(path)!r}: make one with --mode=schedule, or set {{arg}} "
        "to a schedule's JSON file.")
  return json.loads(path.read_text())


def from_file(sde, n: int, eps: float, path: str = ""):
  """The grid `times` of the schedule file at `path` (read_schedule), which must have n times
  from sde.T to eps."""
  if not path:
    raise ArgumentError("path", "grid 'file' reads a schedule file; set {arg} to its name or "
                        "path.")
  record = read_schedule(path)
  times = np.asarray(record["times"], np.float64)
  if len(times) != n:
    raise ArgumentError("num_steps", f"The schedule {path} has {len(times)} times; set {{arg}}="
                        f"{len(times)}.")
  if not (np.isclose(times[0], sde.T, rtol=1e-6) and np.isclose(times[-1], eps, rtol=1e-6)):
    raise ArgumentError("eps", f"The schedule {path} runs from {times[0]:g} to {times[-1]:g}, not "
                        f"from T={sde.T:g} to {{arg}}={eps:g}; set {{arg}}={times[-1]:g} or make "
                        "a schedule for this one.")
  return jnp.asarray(times)
