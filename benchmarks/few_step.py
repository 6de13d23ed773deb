"""Few-step sampling: every deterministic solver x schedule at NFE 3-10 on exact Gaussian
mixtures (the 2-D one of tests/oracles.py, its 16-D lift, and a harder 64-D mixture with
components of unequal scales and low-rank covariances), by the pathwise error: the RMS distance
of the solver's samples (denoised at eps, as sampling returns them) to those of a tight float64
adaptive probability-flow solve from the same prior draws (rtol = atol = 1e-10).

Schedules: `logsnr` (uniform lambda), `edm` (rho = 7), `ays` (closed form, data std 1), and the
two made for each solver and NFE on separate fitting draws (samplers.schedules): `gits` (fine
edm grid of --fine-steps points, Heun teacher with 4 substeps) and `learned` (--iterations Adam
steps from the edm grid). A run of n grid points costs n NFE (n - 1 steps and the final
denoising step); Heun costs 2n - 1, so its cell at NFE B is the run of the largest 2n - 1 <= B
(and a 2-point Heun run, one step from T to eps, blows up: its corrector divides by sigma(eps)).
DPM-Solver-v3 runs with EMS estimated (samplers.ems) at --ems-nodes + 1 nodes on --ems-data
samples of the same tight solve from their own prior draws (the model's own samples).
Then the verdict of the few-step issue's target: the best
solver + schedule at 5 NFE against DPM-Solver++(2M) on the logsnr grid at 10 NFE.

With --digits-workdir (a trained configs/digits.py:vpsde workdir) it also runs the digits model:
its EMS (--mode=ems, timed; reused if present), GITS and learned schedules (--mode=schedule on
--digits-fit-samples draws, timed; reused if present) for each solver at 5 NFE, and FD-digits of
--digits-samples samples against the training split for every solver on the logsnr and edm grids
and on its made schedules, with DPM-Solver++(2M) at 5 and 10 NFE beside them.

  python benchmarks/few_step.py --dims 2,16,64 --nfe 3,4,5,6,8,10 --samples 500
  python benchmarks/few_step.py --dims "" --digits-workdir workdirs/digits_vp
"""
import argparse
import functools
import os
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import samplers
from data_sources.mixture import GaussianMixture
from samplers import ems, schedules
from samplers.ode import flow_drift, integrate
from sde_lib import VPSDE

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from oracles import gmm_fns, lifted_fns  # noqa: E402  (the exact mixtures and scores)

SDE, EPS = VPSDE(), 1e-3
SOLVERS = ("ddim", "heun", "dpm_solver_2m", "dpm_solver_3m", "unipc", "ipndm", "deis",
           "dpm_solver_v3")
FIXED_GRIDS = ("logsnr", "edm", "ays")
MADE = ("gits", "learned")


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dims", default="2,16,64")
  parser.add_argument("--nfe", default="3,4,5,6,8,10")
  parser.add_argument("--samples", type=int, default=500, help="evaluation prior draws")
  parser.add_argument("--fit-samples", type=int, default=128, help="draws the schedules fit")
  parser.add_argument("--fine-steps", type=int, default=48)
  parser.add_argument("--iterations", type=int, default=100, help="learned: Adam steps")
  parser.add_argument("--learning-rate", type=float, default=0.05)
  parser.add_argument("--ems-nodes", type=int, default=1200, help="DPM-Solver-v3's EMS nodes")
  parser.add_argument("--ems-data", type=int, default=1024, help="samples the EMS average")
  parser.add_argument("--digits-workdir", default="")
  parser.add_argument("--digits-samples", type=int, default=1024)
  parser.add_argument("--digits-fit-samples", type=int, default=32)
  parser.add_argument("--digits-fine-steps", type=int, default=24)
  parser.add_argument("--digits-iterations", type=int, default=30)
  return parser.parse_args()


def hard_mixture(dim: int = 64, rank: int = 4) -> GaussianMixture:
  """Three components in `dim` dimensions: scales 0.05, 0.5 and 2, each covariance a rank-`rank`
  factor plus a small isotropic part, means on different axes."""
  rng = np.random.default_rng(64)
  means, covs = [], []
  for k, scale in enumerate((0.05, 0.5, 2.0)):
    factor = rng.normal(size=(dim, rank)) * scale
    covs.append(factor @ factor.T / rank + 1e-3 * np.eye(dim))
    mean = np.zeros(dim)
    mean[k] = 2.0 * (k - 1)
    means.append(mean)
  return GaussianMixture((0.3, 0.3, 0.4), tuple(map(tuple, means)),
                         tuple(tuple(map(tuple, c)) for c in covs))


def model(dim: int):
  """The exact ModelFns of the benchmark's mixture in `dim` dimensions."""
  if dim == 2:
    return gmm_fns(SDE)
  if dim == 64:
    return gmm_fns(SDE, hard_mixture())
  return lifted_fns(SDE, jnp.linspace(0.3, 1.5, dim - 2))


def grid_points(name: str, nfe: int) -> int:
  return (nfe + 1) // 2 if name == "heun" else nfe


def ems_file(fns, dim: int, num_nodes: int, num_data: int, directory: str) -> str:
  """DPM-Solver-v3's statistics of the model from its own samples (the tight solve), in a file."""
  keys = samplers.sample_keys(jax.random.key(3), jnp.arange(num_data))
  x0 = reference(fns, keys, dim)
  z = samplers.per_sample_normal(keys, 1, (dim,))
  v = jnp.sign(samplers.per_sample_normal(keys, 2, (dim,)))
  nodes = ems.lambda_nodes(SDE, EPS, num_nodes)
  l, s, b = ems.estimate(fns, x0, z, v, nodes)
  path = os.path.join(directory, f"ems_{dim}d.npz")
  np.savez(path, lambdas=nodes, l=l, s=s, b=b)
  return path


def solver_fn(name: str, options: dict):
  """SOLVERS[name].sample with the benchmark's options for it."""
  return functools.partial(samplers.get_solver(name).sample, **options.get(name, {}))


def solve(name: str, fns, times, keys, dim: int, options: dict):
  return solver_fn(name, options)(fns, times, keys, (dim,))[0]


def reference(fns, keys, dim: int):
  """The tight float64 probability-flow solution at eps from the prior draws, denoised."""
  drift = flow_drift(fns)
  x = samplers.per_sample_prior(SDE, keys, 0, (dim,))
  end = integrate(lambda t, v: drift(v, t), x, SDE.T, EPS, "dopri5", 1e-10, 1e-10, 100_000)[0]
  return fns.denoise(end, jnp.full(x.shape[:1], EPS))


def gits_grid(name: str, fns, keys, points: int, fine_steps: int, dim: int, options: dict):
  fine = samplers.make_grid(SDE, "edm", fine_steps, EPS)
  heun = samplers.get_solver("heun").sample
  step = solver_fn(name, options)
  states = jax.jit(lambda k: schedules.teacher_states(heun, fns, fine, k, (dim,), 4))(keys)
  costs = jax.jit(lambda s, k: schedules.one_step_costs(step, fns, fine, s, k))(states, keys)
  return fine[schedules.cheapest_path(np.asarray(costs, np.float64), points)]


def learned_grid(name: str, fns, keys, target, points: int, iterations: int, rate: float,
                 dim: int, options: dict):
  optimizer = optax.adam(rate)
  solver = solver_fn(name, options)

  @jax.jit
  def update(logits, state):
    loss, grad = jax.value_and_grad(lambda v: schedules.matching_loss(
        solver, fns, SDE, v, keys, (dim,), target, EPS, 7.0))(logits)
    change, state = optimizer.update(grad, state)
    return optax.apply_updates(logits, change), state, loss

  logits = jnp.zeros(points - 1)
  state = optimizer.init(logits)
  for _ in range(iterations):
    logits, state, _ = update(logits, state)
  return schedules.ramp_times(SDE, logits, EPS, 7.0)


def table(dim: int, nfes, args, directory: str):
  fns = model(dim)
  start = time.perf_counter()
  options = {"dpm_solver_v3": {"ems": ems_file(fns, dim, args.ems_nodes, args.ems_data, directory)}}
  ems_seconds = time.perf_counter() - start
  fit_keys = samplers.sample_keys(jax.random.key(1), jnp.arange(args.fit_samples))
  eval_keys = samplers.sample_keys(jax.random.key(2), jnp.arange(args.samples))
  fit_target, eval_target = reference(fns, fit_keys, dim), reference(fns, eval_keys, dim)
  errors, seconds = {}, {}
  for name in SOLVERS:
    for nfe in nfes:
      points = grid_points(name, nfe)
      if points < 2:
        continue
      grids = {g: samplers.make_grid(SDE, g, points, EPS, **({"data_std": 1.0} if g == "ays"
                                                              else {})) for g in FIXED_GRIDS}
      start = time.perf_counter()
      grids["gits"] = gits_grid(name, fns, fit_keys, points, args.fine_steps, dim, options)
      seconds[(name, nfe, "gits")] = time.perf_counter() - start
      start = time.perf_counter()
      grids["learned"] = learned_grid(name, fns, fit_keys, fit_target, points, args.iterations,
                                      args.learning_rate, dim, options)
      seconds[(name, nfe, "learned")] = time.perf_counter() - start
      run = jax.jit(lambda times, keys, name=name: solve(name, fns, times, keys, dim, options))
      for grid, times in grids.items():
        x = run(times, eval_keys)
        errors[(name, grid, nfe)] = float(jnp.sqrt(jnp.mean(jnp.sum(jnp.square(x - eval_target),
                                                                      axis=-1))))
  return errors, seconds, ems_seconds


DIGITS_SOLVERS = ("dpm_solver_2m", "dpm_solver_3m", "unipc", "ipndm", "deis", "dpm_solver_v3")


def digits_made(config, workdir: str, method: str, args) -> tuple:
  """(the schedule's name, seconds it took) of --mode=schedule for config.sampling, made now or
  read back from an earlier run."""
  from workflows import schedule as schedule_mode  # pylint: disable=import-outside-toplevel
  import configs  # pylint: disable=import-outside-toplevel
  s = config.sampling
  name = f"bench_{method}_{s.method}_{s.num_steps}"
  path = pathlib.Path(workdir) / "schedules" / f"{name}.json"
  if not path.exists():
    schedule_mode.make_schedule(configs.with_overrides(config, {
        "schedule.method": method, "schedule.name": name,
        "schedule.num_samples": args.digits_fit_samples,
        "schedule.fine_steps": args.digits_fine_steps,
        "schedule.iterations": args.digits_iterations}), workdir)
  return name, schedules.read_schedule(path)["seconds"]


def digits_table(args):
  """FD-digits of each solver x grid at 5 NFE (and DPM-Solver++(2M) at 10) for the model in
  --digits-workdir, with the seconds to make its EMS and schedules."""
  import configs  # pylint: disable=import-outside-toplevel
  import evaluation  # pylint: disable=import-outside-toplevel
  import workflows  # pylint: disable=import-outside-toplevel
  from workflows import build, ems as ems_mode  # pylint: disable=import-outside-toplevel
  workdir = args.digits_workdir
  config = configs.load_config("configs/digits.py:vpsde")
  ems_path = ems_mode.ems_path(config, workdir)
  start = time.perf_counter()
  if not ems_path.exists():
    ems_mode.estimate_ems(config, workdir)
  ems_seconds = time.perf_counter() - start
  model = workflows.load(config, workdir)
  fd = lambda **settings: evaluation.frechet_digits_distance(
      model.sample(args.digits_samples, **settings), "symmetric")
  rows, made_seconds = [], {}
  for name in DIGITS_SOLVERS:
    extra = {"ems": ems_path.stem} if name == "dpm_solver_v3" else {}
    for grid in ("logsnr", "edm") + MADE:
      settings = dict(method=name, num_steps=5, grid=grid, **extra)
      if grid in MADE:
        overrides = {f"sampling.{k}": v for k, v in {**settings, "grid": "edm"}.items()}
        path, made_seconds[(name, grid)] = digits_made(configs.with_overrides(config, overrides),
                                                       workdir, grid, args)
        settings.update(grid="file", grid_path=path)
      rows.append((name, grid, 5, fd(**settings)))
  rows.append(("dpm_solver_2m", "logsnr", 10, fd(method="dpm_solver_2m", num_steps=10,
                                                  grid="logsnr")))
  floor = evaluation.frechet_digits_distance(
      build.model_space_examples(config, "test", 10_000), "symmetric")
  print(f"\ndigits ({workdir}): FD-digits of {args.digits_samples} samples vs the training "
        f"split (the test split's own: {floor:.2f})")
  for name, grid, nfe, value in rows:
    print(f"{name:>14} {grid:>8} NFE {nfe:>2}: {value:8.2f}")
  best = min((r for r in rows if r[2] == 5), key=lambda r: r[3])
  print(f"best at 5 NFE: {best[0]} on {best[1]}, {best[3]:.2f}; DPM-Solver++(2M) logsnr at 5 / 10 "
        f"NFE: {rows[0][3]:.2f} / {rows[-1][3]:.2f}")
  print(f"seconds to estimate the EMS: {ems_seconds:.0f} (0: reused); to make each schedule: " +
        ", ".join(f"{n} {g} {v:.0f}" for (n, g), v in made_seconds.items()))


def main():
  args = parse_args()
  nfes = [int(v) for v in args.nfe.split(",")]
  jax.config.update("jax_enable_x64", True)
  print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
  directory = tempfile.mkdtemp()
  for dim in [int(v) for v in args.dims.split(",") if v]:
    errors, seconds, ems_seconds = table(dim, nfes, args, directory)
    print(f"\n{dim}-D mixture: RMS pathwise error at eps (denoised) vs the tight ODE, "
          f"{args.samples} draws")
    print(f"{'solver':>14} {'grid':>8} " + " ".join(f"{f'NFE {n}':>9}" for n in nfes))
    for name in SOLVERS:
      for grid in FIXED_GRIDS + MADE:
        cells = [errors.get((name, grid, n)) for n in nfes]
        print(f"{name:>14} {grid:>8} " + " ".join(
            f"{c:9.2e}" if c is not None else f"{'-':>9}" for c in cells))
    baseline = errors.get(("dpm_solver_2m", "logsnr", 10))
    at5 = {k: v for k, v in errors.items() if k[2] == 5}
    if baseline is not None and at5:
      best = min(at5, key=at5.get)
      verdict = "reaches" if at5[best] <= baseline else "does not reach"
      print(f"best at 5 NFE: {best[0]} on {best[1]}, {at5[best]:.2e}; DPM-Solver++(2M) logsnr at 10 "
            f"NFE: {baseline:.2e} -> {verdict} it")
    if seconds:
      gits = np.mean([v for k, v in seconds.items() if k[2] == "gits"])
      learned = np.mean([v for k, v in seconds.items() if k[2] == "learned"])
      print(f"seconds to make a schedule (mean, compile included): gits {gits:.1f}, learned "
            f"{learned:.1f}; DPM-Solver-v3's EMS ({args.ems_nodes} nodes, {args.ems_data} "
            f"samples, their tight solve included): {ems_seconds:.1f}")
  if args.digits_workdir:
    jax.config.update("jax_enable_x64", False)
    digits_table(args)
  print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
  main()
