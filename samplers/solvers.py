"""Every sampler by name: `SOLVERS[method]` is a Solver whose `sample(fns, times, keys, shape,
**options)` returns (samples (B, *shape), NFE: an int, or (B,) int32 for adaptive solvers).
`times` is the grid (samplers.grids) for grid solvers and None for the adaptive ODE."""
from typing import Callable, NamedTuple

from configs.errors import UserError
from samplers.ddim import ddim_sample
from samplers.dpm_solver import dpm_solver_2m, dpm_solver_3m, dpm_solver_sde_2m
from samplers.edm import euler_sample, heun_sample
from samplers.ode import ode_sample
from samplers.pc import pc_sample, pc_steps
from samplers.unipc import unipc


class Solver(NamedTuple):
  sample: Callable
  uses_grid: bool


def pc_grid_sample(fns, times, keys, shape, predictor: str = "reverse_diffusion",
                   corrector: str = "none", snr: float = 0.16, n_steps: int = 1,
                   probability_flow: bool = False, denoise: bool = True, use_tables: bool = False):
  """PC sampling (samplers.pc) over `times`; use_tables: the SDE's own chain of len(times)
  levels (the released discretisation) instead of the exact kernels between grid times."""
  return pc_sample(fns, pc_steps(fns.sde, times, use_tables), keys, shape, predictor, corrector,
                   snr, n_steps, probability_flow, denoise)


def adaptive_ode_sample(fns, times, keys, shape, **options):
  del times
  return ode_sample(fns, keys, shape, **options)


SOLVERS = {
    "pc": Solver(pc_grid_sample, True),
    "ode": Solver(adaptive_ode_sample, False),
    "ddim": Solver(ddim_sample, True),
    "heun": Solver(heun_sample, True),
    "euler": Solver(euler_sample, True),
    "dpm_solver_2m": Solver(dpm_solver_2m, True),
    "dpm_solver_3m": Solver(dpm_solver_3m, True),
    "dpm_solver_sde_2m": Solver(dpm_solver_sde_2m, True),
    "unipc": Solver(unipc, True),
}


def get_solver(name: str) -> Solver:
  """The solver registered as `name` (one of SOLVERS)."""
  if name not in SOLVERS:
    raise UserError(f"Unknown sampling method {name!r}; choose one of {sorted(SOLVERS)}.")
  return SOLVERS[name]
