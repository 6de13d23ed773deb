"""Sample quality against cost: every solver at a few NFE budgets, by energy distance to fresh
exact samples, on the Gaussian mixture (tests/oracles.py) and its 16-D lift with exact scores.

Each grid solver runs on `--grid` with the most grid points its NFE budget allows (Heun costs
2 per step + 1, the others 1 per grid point, the final denoising step included), plus PC with
the released 1000-level tables (reverse diffusion, no corrector: the paper's baseline) and the
adaptive probability-flow ODE at a few tolerances. Each row draws R sample sets from R disjoint
sets of per-sample keys (one compile, R runs) and averages their energy distances to R
independent exact sets of the same size; the two-sample floor is the mean distance between two
exact sets (over all R (R - 1) / 2 pairs). The table shows the ratio (~1: indistinguishable from
exact samples at this size), with the resolution: the pairs' spread / sqrt(R), relative to the
floor. All solvers see the same prior draws, so at large NFE the deterministic ones agree with
the tight ODE's row.

  python benchmarks/quality_vs_nfe.py --samples 2000 --dims 2,16
  python benchmarks/quality_vs_nfe.py --dims "" --digits-workdir workdirs/digits_vp

Another model plugs in through `quality_rows(fns, shape, reference, ...)`: its ModelFns, the
sample shape and R >= 2 reference sets of --samples real samples each (R x N, *shape).
"""
import argparse
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import samplers
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from oracles import MIX, gmm_fns, lifted_mixture  # noqa: E402  (the exact mixture and score)

SDES = {"vp": (VPSDE(), 1e-3), "ve": (VESDE(), 1e-5), "subvp": (SubVPSDE(), 1e-3),
        "edm": (EDMSDE(), 2e-3)}
# name -> (method, options, NFE of a run over n grid points)
GRID_SOLVERS = {
    "pc": ("pc", dict(predictor="reverse_diffusion", corrector="none"), lambda n: n),
    "ddim": ("ddim", {}, lambda n: n),
    "heun": ("heun", {}, lambda n: 2 * n - 1),
    "euler": ("euler", {}, lambda n: n),
    "dpm_solver_2m": ("dpm_solver_2m", {}, lambda n: n),
    "dpm_solver_3m": ("dpm_solver_3m", {}, lambda n: n),
    "dpm_solver_sde_2m": ("dpm_solver_sde_2m", {}, lambda n: n),
    "unipc": ("unipc", {}, lambda n: n),
}
PC_RELEASED = ("pc", dict(predictor="reverse_diffusion", corrector="none", use_tables=True))


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--samples", type=int, default=2000, help="samples per run")
  parser.add_argument("--reference-sets", type=int, default=6, help="R exact sets of --samples")
  parser.add_argument("--dims", default="2,16", help="mixture dimensions (2: MIX; more: lifts)")
  parser.add_argument("--nfes", default="5,10,20,50,100", help="NFE budgets")
  parser.add_argument("--solvers", default=",".join(GRID_SOLVERS))
  parser.add_argument("--sde", default="vp", choices=sorted(SDES))
  parser.add_argument("--grid", default="edm", choices=sorted(samplers.GRIDS))
  parser.add_argument("--ode-tols", default="1e-3,1e-5", help="rtol = atol of the ODE rows")
  parser.add_argument("--released-steps", type=int, default=1000, help="PC on the SDE's tables")
  parser.add_argument("--eps", type=float, default=0.0,
                      help="end time of the grid solvers (0: the SDE's usual eps; PC-1000 and the "
                           "ODE always use it)")
  parser.add_argument("--digits-workdir", default="",
                      help="also the table of this trained configs/digits.py:vpsde workdir, in "
                           "pixel space against halves of the test split")
  return parser.parse_args()


def digits_table(args, nfes, solvers, ode_tols):
  """The table for a trained digits model (EMA params of the newest checkpoint) against the
  test split (359 images) in model space, split into two halves: R = 2 sets of 179."""
  from configs import load_config  # pylint: disable=import-outside-toplevel
  from parallel import DataParallel  # pylint: disable=import-outside-toplevel
  from workflows import build  # pylint: disable=import-outside-toplevel
  import data_sources  # pylint: disable=import-outside-toplevel
  config = load_config("configs/digits.py:vpsde")
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, args.digits_workdir, score_model,
                                   DataParallel.over_all_devices().replicated)
  test = data_sources.preprocess(build.load_split(config, "test")[:358], is_image=True,
                                 centered=True, uniform_dequantization=False)
  rows, floor = quality_rows(build.model_fns(sde, score_model, params), test.shape[1:],
                             test.reshape(2, 179, *test.shape[1:]), solvers, nfes, args.grid,
                             config.sampling.eps, ode_tols, config.sde.num_scales, args.eps or None)
  print_table(f"digits ({args.digits_workdir})", rows, floor, nfes, config.sde.num_scales)


def energy_distance(x, y) -> float:
  """2 E|x - y| - E|x - x'| - E|y - y'| (V-statistics, as tests/oracles.py), by Gram matrices."""
  x, y = (np.asarray(v, np.float64).reshape(len(v), -1) for v in (x, y))
  mean_dist = lambda a, b: np.sqrt(np.maximum(
      np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None] - 2 * a @ b.T, 0.0)).mean()
  return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def steps_for(nfe_of, budget: int) -> int:
  """The most grid points n whose run costs at most `budget` NFE."""
  return max(n for n in range(1, budget + 2) if nfe_of(n) <= budget)


def draw(fns, shape, key_sets, method, times, options):
  """(samples (R, B, *shape) as numpy, one per key set (R, B, key), mean NFE per sample)."""
  solver = samplers.get_solver(method)
  sample = jax.jit(lambda k: solver.sample(fns, times, k, shape, **options))
  runs = [sample(keys) for keys in key_sets]
  return np.stack([np.asarray(x) for x, _ in runs]), float(np.mean([nfe for _, nfe in runs]))


def two_sample_floor(sets):
  """(mean, resolution) of the energy distance between two of the independent sets (R, N, ...):
  the resolution is the pairs' std / sqrt(R), that of a mean over R independent pairs."""
  pairs = [energy_distance(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
  return float(np.mean(pairs)), float(np.std(pairs) / np.sqrt(len(sets)))


def quality_rows(fns, shape, reference, solvers, nfes, grid, eps, ode_tols, released_steps,
                 grid_eps=None):
  """Rows (solver, NFE, energy distance, ratio to the floor) and the floor (mean, resolution) for
  ModelFns `fns` against `reference` (R, N, *shape): R >= 2 independent sets of real samples,
  N the number each run draws."""
  floor = two_sample_floor(reference)
  r, n = reference.shape[:2]
  keys = [samplers.sample_keys(jax.random.key(1), jnp.arange(k * n, (k + 1) * n)) for k in range(r)]
  rows = []

  def add(label, xs, nfe):
    distance = float(np.mean([energy_distance(x, target) for x, target in zip(xs, reference)]))
    rows.append((label, nfe, distance, distance / floor[0]))

  for name in solvers:
    method, options, nfe_of = GRID_SOLVERS[name]
    for budget in nfes:
      points = steps_for(nfe_of, budget)
      times = samplers.make_grid(fns.sde, grid, points, grid_eps or eps)
      x, nfe = draw(fns, shape, keys, method, times, options)
      assert nfe == nfe_of(points), (name, nfe, nfe_of(points))
      add(name, x, nfe)
  method, options = PC_RELEASED
  times = samplers.make_grid(fns.sde, "uniform", released_steps, eps)
  add(released_label(released_steps), *draw(fns, shape, keys, method, times, options))
  for tol in ode_tols:
    add(f"ode_tol_{tol:g}", *draw(fns, shape, keys, "ode", None,
                                  dict(rtol=tol, atol=tol, eps=eps, denoise=True)))
  return rows, floor


def released_label(steps: int) -> str:
  return f"pc_{steps}_released"


def cell(row, budget) -> str:
  """The ratio, with the run's NFE in brackets where it differs from the budget (Heun)."""
  return (f"[{row[1]:.0f}] " if row[1] != budget else "") + f"{row[3]:.2f}"


def print_table(title, rows, floor, nfes, released_steps):
  print(f"\n== {title}: energy distance / two-sample floor ({floor[0]:.2e}; resolution "
        f"{floor[1] / floor[0]:.2f}); [NFE] where a budget is not met exactly ==")
  grid_rows = [r for r in rows if r[0] in GRID_SOLVERS]
  print(f"{'solver':<20}" + "".join(f"{f'NFE {b}':>14}" for b in nfes))
  for name in dict.fromkeys(r[0] for r in grid_rows):
    cells = [cell(r, b) for r, b in zip([r for r in grid_rows if r[0] == name], nfes)]
    print(f"{name:<20}" + "".join(f"{c:>14}" for c in cells))
  for label, nfe, distance, ratio in rows[len(grid_rows):]:
    print(f"{label:<20}  NFE {nfe:7.1f}  distance {distance:.2e}  ratio {ratio:.2f}")
  released = next(r for r in rows if r[0] == released_label(released_steps))
  cheap = [r for r in grid_rows if r[1] <= 10]
  best = min(cheap, key=lambda r: r[2]) if cheap else None
  if best is not None:
    verdict = "reaches" if best[2] <= released[2] else "does not reach"
    close = " (within the resolution)" if abs(best[3] - released[3]) < floor[1] / floor[0] else ""
    print(f"best at <= 10 NFE: {best[0]} (NFE {best[1]:.0f}, ratio {best[3]:.2f}) {verdict} "
          f"PC-{released_steps}'s error (ratio {released[3]:.2f}){close}")


def main():
  args = parse_args()
  sde, eps = SDES[args.sde]
  nfes = [int(v) for v in args.nfes.split(",")]
  solvers = args.solvers.split(",")
  ode_tols = [float(v) for v in args.ode_tols.split(",")]
  print(f"load average {os.getloadavg()}, {args.samples} samples, SDE {args.sde}, grid "
        f"{args.grid}, eps {eps} (grid solvers: {args.eps or eps})")
  for dim in (int(v) for v in args.dims.split(",") if v):
    mixture = MIX if dim == 2 else lifted_mixture(np.linspace(0.3, 1.5, dim - 2))
    reference = mixture.sample(np.random.default_rng(0), args.reference_sets * args.samples)
    reference = reference.reshape(args.reference_sets, args.samples, dim)
    rows, floor = quality_rows(gmm_fns(sde, mixture), (dim,), reference, solvers, nfes,
                               args.grid, eps, ode_tols, args.released_steps, args.eps or None)
    print_table(f"{dim}-D mixture", rows, floor, nfes, args.released_steps)
  if args.digits_workdir:
    digits_table(args, nfes, solvers, ode_tols)
  print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
  main()
