"""--mode=schedule: a time schedule for config.sampling's solver at sampling.num_steps, made for
the workdir's model (samplers.schedules) and written to workdir/schedules/NAME.json; sample with
it by --config.sampling.grid=file --config.sampling.grid_path=NAME.

schedule.method=gits picks the n times among a fine edm grid by dynamic programming over one-step
costs against a teacher (schedule.teacher, schedule.teacher_substeps per fine interval);
schedule.method=learned fits them by Adam through the jitted solver to the teacher's samples.
Both fit schedule.num_samples prior draws and report, on as many held-out draws, the mean squared
distance to the teacher of the solver on the new schedule (`loss`) and on config.sampling's grid
(`initial_loss`): in data space (schedule.loss=l2), or between the features of eval.features'
network (schedule.loss=features: the digits CNN or the FID Inception for images), which the
learned method then also fits. A learned schedule saves its state every schedule.save_every
iterations and on SIGINT / SIGTERM (workdir/schedules/NAME.state.npz); rerunning the command
resumes it to the same result. An existing schedule is never overwritten.
"""
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fileio
import samplers
from configs.errors import UserError, config_keys
from parallel import DataParallel
from samplers import schedules
from training import interrupt
from workflows import build

METHODS = ("gits", "learned")
LOSSES = ("l2", "features")


def schedule_path(config, workdir) -> pathlib.Path:
  c, s = config.schedule, config.sampling
  name = c.name or f"{c.method}_{s.method}_{s.num_steps}"
  return pathlib.Path(workdir) / "schedules" / f"{name}.json"


def _solver(config, name: str):
  """samplers.SOLVERS[name].sample with its config.sampling options."""
  solver = samplers.get_solver(name)
  if not solver.uses_grid:
    raise UserError(f"{name!r} solves without a grid: a schedule needs a grid solver.")
  return functools.partial(solver.sample, **samplers.solver_options(name, config.sampling))


class ScheduleProblem:
  """The model, teacher and draws a schedule is fitted to, with its jitted pieces."""

  def __init__(self, config, workdir):
    s, c = config.sampling, config.schedule
    self.config, parallel = config, DataParallel.over_all_devices()
    self.sde = build.build_sde(config)
    score_model = build.build_score_model(config, self.sde)
    self.params = build.load_score_params(config, workdir, score_model, parallel.replicated)
    self.fns_of = lambda params: build.model_fns(self.sde, score_model, params)
    self.shape = build.data_info(config).shape
    keys = samplers.sample_keys(build.stream_key(config, "schedule"),
                                jnp.arange(2 * c.num_samples))
    self.fit_keys, self.held_keys = keys[:c.num_samples], keys[c.num_samples:]
    with config_keys({"num_steps": "schedule.fine_steps"}):
      self.fine = samplers.make_grid(self.sde, "edm", c.fine_steps, s.eps, rho=s.grid_rho)
    teacher = samplers.get_solver(c.teacher)
    if not teacher.deterministic(samplers.solvers.all_options(c.teacher, s)):
      raise UserError(f"schedule.teacher={c.teacher!r} with these sampling options is not "
                      "deterministic; use heun (s_churn=0), dpm_solver_3m, deis, ...")
    self.teacher, self.student = _solver(config, c.teacher), _solver(config, s.method)
    # Each compiled once: the fit and the held-out draws share shapes, as the grids do.
    self._teacher_run = jax.jit(lambda params, keys: schedules.teacher_states(
        self.teacher, self.fns_of(params), self.fine, keys, self.shape, c.teacher_substeps))
    self._denoise_at_eps = jax.jit(lambda params, x: self.fns_of(params).denoise(
        x, jnp.full(x.shape[:1], self.fine[-1], x.dtype)))
    self._student_run = jax.jit(lambda params, times, keys: self.student(
        self.fns_of(params), times, keys, self.shape))
    self.embed = (build.feature_network(config, build.model_input_range(config))[1]
                  if c.loss == "features" else lambda x: x)

  def teacher_states(self, keys):
    """The teacher's states (M, B, ...) on the fine grid from the prior draws of `keys`."""
    return self._teacher_run(self.params, keys)

  def target(self, keys):
    """The embedded teacher's samples (B, ...): its state at eps, denoised as the student's are."""
    x = self.teacher_states(keys)[-1]
    x = self._denoise_at_eps(self.params, x) if self.config.sampling.noise_removal else x
    return self.embed(x)

  def loss(self, times, keys, target):
    """(mean squared distance to target of the embedded student on `times`, its NFE)."""
    x, nfe = self._student_run(self.params, times, keys)
    return float(jnp.mean(jnp.square(self.embed(x) - target))), int(np.max(nfe))


def gits_times(problem: ScheduleProblem):
  """GITS: the cheapest path of sampling.num_steps fine times under the one-step costs."""
  states = problem.teacher_states(problem.fit_keys)
  costs = jax.jit(lambda params, states: schedules.one_step_costs(
      problem.student, problem.fns_of(params), problem.fine, states, problem.fit_keys))(
          problem.params, states)
  with config_keys({"num_steps": "sampling.num_steps"}):
    path = schedules.cheapest_path(np.asarray(costs, np.float64), problem.config.sampling.num_steps)
  return problem.fine[path], {"fine_indices": [int(i) for i in path]}


def learned_times(problem: ScheduleProblem, initial, state_path: pathlib.Path):
  """Adam on ramp logits from `initial` times, resumed from state_path if it exists."""
  s, c = problem.config.sampling, problem.config.schedule
  target = problem.target(problem.fit_keys)
  optimizer = optax.adam(c.learning_rate)
  logits = schedules.ramp_logits(problem.sde, initial, s.eps, s.grid_rho)
  opt_state, first = optimizer.init(logits), 0
  if state_path.exists():
    with np.load(state_path) as saved:
      logits, first = jnp.asarray(saved["logits"]), int(saved["iteration"])
      leaves = [jnp.asarray(saved[f"opt_{i}"]) for i in range(len(jax.tree.leaves(opt_state)))]
      opt_state = jax.tree.unflatten(jax.tree.structure(opt_state), leaves)

  @jax.jit
  def update(params, logits, opt_state):
    loss, grad = jax.value_and_grad(lambda v: schedules.matching_loss(
        problem.student, problem.fns_of(params), problem.sde, v, problem.fit_keys, problem.shape,
        target, s.eps, s.grid_rho, problem.embed))(logits)
    change, opt_state = optimizer.update(grad, opt_state)
    return optax.apply_updates(logits, change), opt_state, loss

  def save(iteration):
    if jax.process_index() == 0:
      fileio.write_npz_atomic(state_path, logits=logits, iteration=iteration, **{
          f"opt_{i}": leaf for i, leaf in enumerate(jax.tree.leaves(opt_state))})

  with interrupt.stop_requests() as request:
    for iteration in range(first, c.iterations):
      logits, opt_state, loss = update(problem.params, logits, opt_state)
      stop = bool(request)  # read once: a signal between two reads would stop unsaved
      if (iteration + 1) % c.save_every == 0 or stop:
        save(iteration + 1)
      if stop:
        request.raise_if_set(f"at iteration {iteration + 1} of {c.iterations}, fit loss "
                             f"{float(loss):.3g}; saved {state_path}")
  return schedules.ramp_times(problem.sde, logits, s.eps, s.grid_rho), {"iterations": c.iterations}


def make_schedule(config, workdir) -> dict:
  """--mode=schedule: writes workdir/schedules/NAME.json and returns its record."""
  build.check_config(config)
  config = build.with_workdir_files(config, workdir)  # an initial grid may be a schedule file
  s, c = config.sampling, config.schedule
  if c.method not in METHODS:
    raise UserError(f"Unknown schedule.method {c.method!r}; choose one of {list(METHODS)}.")
  if c.loss not in LOSSES:
    raise UserError(f"Unknown schedule.loss {c.loss!r}; choose one of {list(LOSSES)}.")
  path = schedule_path(config, workdir)
  if path.exists():
    raise UserError(f"{path} exists; set --config.schedule.name=... to make another schedule "
                    "(a schedule is never overwritten).")
  start = time.perf_counter()
  problem = ScheduleProblem(config, workdir)
  initial = build.sampling_times(config, problem.sde)
  if c.method == "gits":
    times, extra = gits_times(problem)
  else:
    times, extra = learned_times(problem, initial, path.with_suffix(".state.npz"))
  target = problem.target(problem.held_keys)
  loss, nfe = problem.loss(times, problem.held_keys, target)
  initial_loss, _ = problem.loss(initial, problem.held_keys, target)
  record = {"sde": config.sde.to_dict(), "solver": s.method, "num_steps": s.num_steps, "nfe": nfe,
            "eps": s.eps, "made_by": c.method, "distance": c.loss, "loss": loss, "initial_grid": s.grid,
            "initial_loss": initial_loss, "teacher": c.teacher, "fine_steps": c.fine_steps,
            "seconds": time.perf_counter() - start, **extra}
  if jax.process_index() == 0:
    record = schedules.write_schedule(path, times, **record)
    path.with_suffix(".state.npz").unlink(missing_ok=True)
    print(f"Wrote {path}: {s.method} at {nfe} NFE, held-out loss {loss:.4g} (grid "
          f"{s.grid!r}: {initial_loss:.4g}) in {record['seconds']:.1f} s. Sample with "
          f"--config.sampling.grid=file --config.sampling.grid_path={path.stem}")
  return record
