"""Every sampler by name, and the contract a new one follows.

Adding a solver is one function (its own file in samplers/) plus one SOLVERS line: its keyword
options become `config.sampling.<option>` keys with the signature's defaults (configs.common),
and the registry tests (tests/test_solver_contract.py) check it with no new test code.

The contract of `sample(fns, times, keys, shape, **options) -> (x, nfe)`:
- fns: samplers.ModelFns. A solver queries `fns.denoise` / `fns.eps` / `fns.predictions` (any
  model), or `fns.score` (set `needs_score`: PC, Langevin and SDE variants; a denoiser-only
  model, e.g. PFGM++'s non-Gaussian kernel, is then refused with one line).
- times: the grid (samplers.grids, (n,) from T down to eps) for grid solvers; None for adaptive
  ones (`uses_grid` False). n is num_steps.
- keys (B, key): per-sample keys (samplers.per_sample_keys). The state at times[0] is
  fns.initial(keys, shape) (the prior sample from key step 0, or the start hook's state: latents
  to decode, data to encode along an increasing grid), the noise of grid step i from step i + 1; other draws use streams of their own
  (fold_in with a constant), never the batch index, so samples do not depend on the batch.
- Projection: after every update to a state at time t the solver calls fns.constrain(x, t (B,),
  step) with a step number unique within the run, and on the output fns.constrain(x, None, step)
  (clean data). A solver that cannot (the adaptive ODE) sets `projects` False and is refused a
  model with a projection.
- nfe: score / denoiser evaluations per sample, an int (or (B,) int32 for adaptive solvers),
  equal to the calls a counting model sees.
- options: keyword parameters with defaults. build_sampler passes the config.sampling keys of
  the same names (ALIASES maps the released key names), so a new option needs no config edit.
"""
import inspect
from typing import Callable, NamedTuple

from configs.errors import UserError
from samplers.ddim import ddim_sample
from samplers.deis import deis
from samplers.dpm_solver import dpm_solver_2m, dpm_solver_3m, dpm_solver_sde_2m
from samplers.dpm_solver_v3 import dpm_solver_v3
from samplers.edm import euler_sample, heun_sample
from samplers.ipndm import ipndm
from samplers.ode import ode_sample
from samplers.pc import pc_sample, pc_steps
from samplers.repaint import repaint_sample
from samplers.unipc import unipc


class Solver(NamedTuple):
  sample: Callable  # (fns, times, keys, shape, **options) -> (x (B, *shape), nfe)
  uses_grid: bool = True  # False: adaptive, times is None
  needs_score: bool = False  # queries fns.score (refuses a denoiser-only model)
  projects: bool = True  # applies fns.project after every update
  # options -> whether each sample is solved alone (conditions are then applied per sample).
  solves_each_sample: Callable = lambda options: False
  # options (all of them) -> whether the solve is deterministic, so that it also runs up an
  # increasing grid (ODE inversion: --mode=encode).
  deterministic: Callable = lambda options: False


def _use_tables(sde, times, use_tables, grid: str) -> bool:
  """The released PC tables go with the uniform grid of the SDE's own N steps (None: auto)."""
  return grid == "uniform" and times.shape[0] == sde.N if use_tables is None else use_tables


def pc_grid_sample(fns, times, keys, shape, predictor: str = "reverse_diffusion",
                   corrector: str = "none", snr: float = 0.16, n_steps: int = 1,
                   probability_flow: bool = False, denoise: bool = True,
                   use_tables: bool | None = None, grid: str = "uniform"):
  """PC sampling (samplers.pc) over `times`; use_tables: the SDE's own chain of len(times)
  levels (the released discretisation) instead of the exact kernels between grid times (None:
  when `times` is the uniform grid (named `grid`) of the SDE's N steps, as released)."""
  steps = pc_steps(fns.sde, times, _use_tables(fns.sde, times, use_tables, grid))
  return pc_sample(fns, steps, keys, shape, predictor, corrector, snr, n_steps, probability_flow,
                   denoise)


def repaint_grid_sample(fns, times, keys, shape, predictor: str = "reverse_diffusion",
                        corrector: str = "none", snr: float = 0.16, n_steps: int = 1,
                        resamples: int = 10, probability_flow: bool = False,
                        denoise: bool = True, use_tables: bool | None = None,
                        grid: str = "uniform"):
  """RePaint resampling (samplers.repaint) of PC steps over `times`: pair it with a projection
  (inpainting's replacement), which it re-applies at every pass (use_tables: as pc)."""
  steps = pc_steps(fns.sde, times, _use_tables(fns.sde, times, use_tables, grid))
  return repaint_sample(fns, steps, keys, shape, predictor, corrector, snr, n_steps, resamples,
                        probability_flow, denoise)


def adaptive_ode_sample(fns, times, keys, shape, rtol: float = 1e-5, atol: float = 1e-5,
                        method: str = "dopri5", eps: float = 1e-3, denoise: bool = True,
                        max_steps: int = 4096, whole_batch: bool = False):
  """The probability-flow ODE with adaptive steps from T to eps (samplers.ode)."""
  del times
  return ode_sample(fns, keys, shape, rtol, atol, method, eps, denoise, max_steps, whole_batch)


SOLVERS = {
    "pc": Solver(pc_grid_sample, needs_score=True),
    "repaint": Solver(repaint_grid_sample, needs_score=True),
    "ode": Solver(adaptive_ode_sample, uses_grid=False, needs_score=True, projects=False,
                  solves_each_sample=lambda options: not options.get("whole_batch", False)),
    "ddim": Solver(ddim_sample, deterministic=lambda options: options["eta"] == 0),
    "heun": Solver(heun_sample, deterministic=lambda options: options["s_churn"] == 0),
    "euler": Solver(euler_sample, deterministic=lambda options: options["s_churn"] == 0),
    "dpm_solver_2m": Solver(dpm_solver_2m, deterministic=lambda options: True),
    "dpm_solver_3m": Solver(dpm_solver_3m, deterministic=lambda options: True),
    "dpm_solver_sde_2m": Solver(dpm_solver_sde_2m, needs_score=True),
    "dpm_solver_v3": Solver(dpm_solver_v3, deterministic=lambda options: True),
    "unipc": Solver(unipc, deterministic=lambda options: True),
    "ipndm": Solver(ipndm, deterministic=lambda options: True),
    "deis": Solver(deis, deterministic=lambda options: True),
}

# config.sampling key -> solver parameter, for the released (and older) key names.
ALIASES = {"noise_removal": "denoise", "n_steps_each": "n_steps", "ode_solver": "method",
           "ode_whole_batch": "whole_batch", "solver_order": "order", "unipc_variant": "variant",
           "repaint_resamples": "resamples"}
CONFIG_KEY = {param: key for key, param in ALIASES.items()}
POSITIONAL = ("fns", "times", "keys", "shape")
# Keys of every solver's grid or output, not one solver's option.
SHARED = ("eps", "noise_removal", "grid")


def get_solver(name: str) -> Solver:
  """The solver registered as `name` (one of SOLVERS)."""
  if name not in SOLVERS:
    raise UserError(f"Unknown sampling method {name!r}; choose one of {sorted(SOLVERS)}.")
  return SOLVERS[name]


def option_defaults(solver: Solver) -> dict:
  """{config key: default} of the solver's keyword options."""
  params = inspect.signature(solver.sample).parameters.values()
  return {CONFIG_KEY.get(p.name, p.name): p.default for p in params if p.name not in POSITIONAL}


def all_option_defaults() -> dict:
  """{config key: default} over every solver (the first registered default where they differ)."""
  defaults = {}
  for solver in SOLVERS.values():
    for key, value in option_defaults(solver).items():
      defaults.setdefault(key, value)
  return defaults


def solvers_taking(key: str) -> list:
  """Names of the solvers with the option of config key `key`."""
  return sorted(name for name, s in SOLVERS.items() if key in option_defaults(s))


def solver_options(name: str, settings) -> dict:
  """The keyword arguments of solver `name` taken from `settings` (a mapping of config keys,
  e.g. config.sampling), by the solver's signature; options not in settings keep defaults."""
  return {ALIASES.get(key, key): settings[key] for key in option_defaults(get_solver(name))
          if key in settings}


def all_options(name: str, settings) -> dict:
  """Every keyword option of solver `name`: its signature's defaults, with those `settings` (a
  mapping of config keys) sets."""
  defaults = option_defaults(get_solver(name))
  return {ALIASES.get(k, k): v for k, v in defaults.items()} | solver_options(name, settings)


def check_option_keys(name: str, keys) -> None:
  """One line for a solver option set for a solver that does not take it, naming those that do."""
  for key in keys:
    if key in SHARED:
      continue
    takers = solvers_taking(key)
    if takers and name not in takers:
      raise UserError(f"sampling.{key} is an option of {', '.join(takers)}, not of "
                       f"sampling.method={name!r}; drop it or pick one of those methods.")
