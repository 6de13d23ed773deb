"""Sample quality against cost: every solver at a few NFE budgets, by energy distance to fresh
exact samples, on the Gaussian mixture (tests/oracles.py) and its 16-D lift with exact scores.

Each grid solver runs on `--grid` with the most grid points its NFE budget allows (Heun costs
2 per step + 1, the others 1 per grid point, the final denoising step included), plus PC with
the released 1000-level tables (reverse diffusion, no corrector: the paper's baseline) and the
adaptive probability-flow ODE at a few tolerances. Each row draws R sample sets from R disjoint
sets of per-sample keys (one compile, R runs: the R seeds) and compares set k with the k-th of R
independent exact sets; the two-sample floor is the mean distance between two exact sets (over
all R (R - 1) / 2 pairs). A cell is the mean ratio over the seeds (~1: indistinguishable from
exact samples at this size). At 2000 samples one seed's ratio scatters by about its own size
(the floor's std over the pairs is printed), so the header states the resolution of a cell, the
typical std / sqrt(R) of the rows.

A second table runs every solver at `--grid-nfe` NFE on each of `--grids`, with mean +- std /
sqrt(R) and, for deterministic solvers, [the excess over the tightest ODE row from the same prior
draws]: their pathwise error is what separates them, far more precisely than the ratio. The verdict
compares the deterministic row of least excess at <= grid-nfe NFE with PC-1000: "within the
resolution" when the difference of their mean ratios is below its standard error.

  python benchmarks/quality_vs_nfe.py --samples 2000 --dims 2,16
  python benchmarks/quality_vs_nfe.py --dims "" --digits-workdir workdirs/digits_vp

Another model plugs in through `quality_rows(fns, shape, reference, ...)`: its ModelFns, the
sample shape and R >= 2 reference sets of --samples real samples each (R x N, *shape).
"""
import argparse
import os
import pathlib
import sys
from typing import NamedTuple

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
    "unipc_bh1": ("unipc", dict(variant="bh1"), lambda n: n),
    "ipndm": ("ipndm", {}, lambda n: n),
    "ipndm_v": ("ipndm", dict(variable_steps=True), lambda n: n),
    "deis": ("deis", {}, lambda n: n),
    "dpm_solver_v3": ("dpm_solver_v3", {}, lambda n: n),  # without EMS (few_step.py: with)
}
STOCHASTIC = {"pc", "dpm_solver_sde_2m"}  # their samples are not paths of the ODE
PC_RELEASED = ("pc", dict(predictor="reverse_diffusion", corrector="none", use_tables=True))


class Row(NamedTuple):
  """One run: energy distance / floor of each of the R seeds."""

  label: str
  grid: str  # "" for the rows off the grid (PC's tables, the adaptive ODE)
  budget: int  # the NFE budget it was run for (0 off the grid)
  nfe: float
  ratios: np.ndarray  # (R,)


class Floor(NamedTuple):
  mean: float  # mean energy distance between two exact sets
  std: float  # its std over the R (R - 1) / 2 pairs


def mean_se(values) -> tuple:
  """(mean, std / sqrt(R)) of R values."""
  values = np.asarray(values)
  return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def parse_args():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--samples", type=int, default=2000, help="samples per run")
  parser.add_argument("--reference-sets", type=int, default=12,
                      help="R: seeds per row and exact sets of --samples")
  parser.add_argument("--dims", default="2,16", help="mixture dimensions (2: MIX; more: lifts)")
  parser.add_argument("--nfes", default="5,10,20,50,100", help="NFE budgets")
  parser.add_argument("--solvers", default=",".join(GRID_SOLVERS))
  parser.add_argument("--sde", default="vp", choices=sorted(SDES))
  parser.add_argument("--grid", default="edm", choices=sorted(samplers.GRIDS))
  parser.add_argument("--grids", default=",".join(samplers.GRIDS),
                      help="grids of the second table (every solver at --grid-nfe)")
  parser.add_argument("--grid-nfe", type=int, default=10, help="NFE budget of the second table")
  parser.add_argument("--ode-tols", default="1e-3,1e-5",
                      help="rtol = atol of the ODE rows; the last is the pathwise reference")
  parser.add_argument("--released-steps", type=int, default=1000, help="PC on the SDE's tables")
  parser.add_argument("--eps", type=float, default=0.0,
                      help="end time of the grid solvers (0: the SDE's usual eps; PC-1000 and the "
                           "ODE always use it)")
  parser.add_argument("--digits-workdir", default="",
                      help="also the table of this trained configs/digits.py:vpsde workdir, in "
                           "pixel space against halves of the test split")
  return parser.parse_args()


def digits_table(args, solvers, ode_tols):
  """The tables for a trained digits model (EMA params of the newest checkpoint) against the
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
                             test.reshape(2, 179, *test.shape[1:]), solvers, args.nfes, args.grid,
                             config.sampling.eps, ode_tols, config.sde.num_scales,
                             args.eps or None, args.grids, args.grid_nfe)
  print_tables(f"digits ({args.digits_workdir})", rows, floor, args, config.sde.num_scales)


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


def two_sample_floor(sets) -> Floor:
  """The energy distance between two of the independent sets (R, N, ...): mean and std over
  the pairs."""
  pairs = [energy_distance(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
  return Floor(float(np.mean(pairs)), float(np.std(pairs, ddof=1)))


def quality_rows(fns, shape, reference, solvers, nfes, grid, eps, ode_tols, released_steps,
                 grid_eps=None, grids=(), grid_nfe=10):
  """Rows (one per solver, grid and NFE budget, then PC's tables and the ODE) and the floor for
  ModelFns `fns` against `reference` (R, N, *shape): R >= 2 independent sets of real samples,
  N the number each run draws. Grid solvers run at every budget in `nfes` on `grid` and at
  `grid_nfe` on each of `grids`, ending at grid_eps (None: eps)."""
  floor = two_sample_floor(reference)
  r, n = reference.shape[:2]
  keys = [samplers.sample_keys(jax.random.key(1), jnp.arange(k * n, (k + 1) * n)) for k in range(r)]
  ratios = lambda xs: np.array([energy_distance(x, y) for x, y in zip(xs, reference)]) / floor.mean
  rows = []
  budgets = {g: [grid_nfe] for g in grids}
  budgets[grid] = sorted(set(nfes) | {grid_nfe})
  for name in solvers:
    method, options, nfe_of = GRID_SOLVERS[name]
    for on, budget in ((g, b) for g, bs in budgets.items() for b in bs):
      points = steps_for(nfe_of, budget)
      times = samplers.make_grid(fns.sde, on, points, grid_eps or eps)
      x, nfe = draw(fns, shape, keys, method, times, options)
      assert nfe == nfe_of(points), (name, nfe, nfe_of(points))
      rows.append(Row(name, on, budget, nfe, ratios(x)))
  method, options = PC_RELEASED
  x, nfe = draw(fns, shape, keys, method, samplers.make_grid(fns.sde, "uniform", released_steps,
                                                             eps), options)
  rows.append(Row(released_label(released_steps), "", 0, nfe, ratios(x)))
  for tol in ode_tols:
    x, nfe = draw(fns, shape, keys, "ode", None, dict(rtol=tol, atol=tol, eps=eps, denoise=True))
    rows.append(Row(f"ode_tol_{tol:g}", "", 0, nfe, ratios(x)))
  return rows, floor


def released_label(steps: int) -> str:
  return f"pc_{steps}_released"


def find(rows, label, grid, budget) -> Row:
  return next(r for r in rows if (r.label, r.grid, r.budget) == (label, grid, budget))


def cell(row) -> str:
  """The mean ratio, with the run's NFE in brackets where it differs from the budget (Heun)."""
  return (f"[{row.nfe:.0f}] " if row.nfe != row.budget else "") + f"{row.ratios.mean():.2f}"


def excess(row, reference) -> tuple:
  """(mean, se) over the seeds of row's ratio less reference's, from the same prior draws."""
  return mean_se(row.ratios - reference.ratios)


def print_grid_table(rows, grids, budget, tight):
  print(f"\nNFE {budget} on each grid: ratio +- se [excess over {tight.label} from the same prior "
        "draws +- se]")
  print(f"{'solver':<18}" + "".join(f"{g:>28}" for g in grids))
  for name in dict.fromkeys(r.label for r in rows if r.grid):
    cells = []
    for grid in grids:
      row = find(rows, name, grid, budget)
      text = ("[{:.0f}] ".format(row.nfe) if row.nfe != budget else "")
      text += "{:.2f}+-{:.2f}".format(*mean_se(row.ratios))
      if name not in STOCHASTIC:
        text += " [{:+.2f}+-{:.2f}]".format(*excess(row, tight))
      cells.append(text)
    print(f"{name:<18}" + "".join(f"{c:>28}" for c in cells))


def print_verdict(rows, budget, released, tight):
  """The deterministic grid row of least excess over the tight ODE at <= budget NFE, against
  PC with the released tables."""
  cheap = [r for r in rows if r.grid and r.nfe <= budget and r.label not in STOCHASTIC]
  best = min(cheap, key=lambda r: excess(r, tight)[0])
  (mean, se), (pc_mean, pc_se) = mean_se(best.ratios), mean_se(released.ratios)
  diff, diff_se = mean - pc_mean, float(np.hypot(se, pc_se))
  verdict = ("reaches PC's error" if diff <= 0 else "reaches PC's error within the resolution"
             if diff <= diff_se else "does not reach PC's error")
  print(f"best at <= {budget} NFE: {best.label} on the {best.grid} grid (NFE {best.nfe:.0f}): "
        f"ratio {mean:.2f}+-{se:.2f}, {'{:+.2f}+-{:.2f}'.format(*excess(best, tight))} over "
        f"{tight.label}; {released.label} {pc_mean:.2f}+-{pc_se:.2f}; difference "
        f"{diff:+.2f}+-{diff_se:.2f}: {verdict}")


def print_tables(title, rows, floor, args, released_steps):
  """The main table (--grid, every budget), the off-grid rows, the --grids table, the verdict."""
  r = len(rows[0].ratios)
  resolution = float(np.median([mean_se(row.ratios)[1] for row in rows]))
  print(f"\n== {title}: energy distance / two-sample floor; [NFE] where a budget is not met "
        f"exactly ==\nfloor {floor.mean:.2e} (its std over the {r * (r - 1) // 2} pairs of {r} "
        f"exact sets: {floor.std / floor.mean:.2f} of it); a cell is the mean over {r} seeds; "
        f"resolution (the rows' median std / sqrt({r})): {resolution:.2f}\ngrid {args.grid}")
  print(f"{'solver':<20}" + "".join(f"{f'NFE {b}':>14}" for b in args.nfes))
  for name in dict.fromkeys(row.label for row in rows if row.grid):
    print(f"{name:<20}" + "".join(f"{cell(find(rows, name, args.grid, b)):>14}" for b in args.nfes))
  off_grid = [row for row in rows if not row.grid]
  released, tight = find(rows, released_label(released_steps), "", 0), off_grid[-1]
  for row in off_grid:
    ratio = "{:.2f}+-{:.2f}".format(*mean_se(row.ratios))
    print(f"{row.label:<20}  NFE {row.nfe:7.1f}  ratio {ratio}")
  print_grid_table(rows, args.grids, args.grid_nfe, tight)
  print_verdict(rows, args.grid_nfe, released, tight)



def main():
  args = parse_args()
  sde, eps = SDES[args.sde]
  args.nfes = [int(v) for v in args.nfes.split(",")]
  args.grids = args.grids.split(",")
  solvers = args.solvers.split(",")
  ode_tols = [float(v) for v in args.ode_tols.split(",")]
  print(f"load average {os.getloadavg()}, {args.samples} samples, SDE {args.sde}, grid "
        f"{args.grid}, eps {eps} (grid solvers: {args.eps or eps})")
  for dim in (int(v) for v in args.dims.split(",") if v):
    mixture = MIX if dim == 2 else lifted_mixture(np.linspace(0.3, 1.5, dim - 2))
    reference = mixture.sample(np.random.default_rng(0), args.reference_sets * args.samples)
    reference = reference.reshape(args.reference_sets, args.samples, dim)
    rows, floor = quality_rows(gmm_fns(sde, mixture), (dim,), reference, solvers, args.nfes,
                               args.grid, eps, ode_tols, args.released_steps, args.eps or None,
                               args.grids, args.grid_nfe)
    print_tables(f"{dim}-D mixture", rows, floor, args, args.released_steps)
  if args.digits_workdir:
    digits_table(args, solvers, ode_tols)
  print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
  main()
