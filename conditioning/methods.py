"""Conditional samplers of linear inverse problems by name (sampling.inverse_method):

  replacement  the paper's: any grid solver (samplers.SOLVERS) with the replacement hook;
  repaint      RePaint resampling around the PC sampler (conditioning.repaint).

Each entry is fn(solver_name, fns, times, keys, shape, observation, y, resamples, **options)
-> (samples (B, *shape), NFE); fns are the unconditional samplers.ModelFns and options those of
samplers.SOLVERS[solver_name].
"""
from conditioning.repaint import repaint_sample
from conditioning.replacement import with_replacement
from samplers.pc import pc_steps
from samplers.solvers import get_solver


def replacement_method(solver_name, fns, times, keys, shape, observation, y, resamples,
                       **options):
  del resamples
  solver = get_solver(solver_name)
  if not solver.uses_grid:
    raise ValueError(f"sampling.method={solver_name!r} (adaptive) cannot replace the observed "
                     "part after each step; use a grid solver (pc, ddim, heun, dpm_solver_2m, ...) "
                     "for inverse problems.")
  return solver.sample(with_replacement(fns, observation, y, keys), times, keys, shape, **options)


def repaint_method(solver_name, fns, times, keys, shape, observation, y, resamples,
                   use_tables: bool = False, **options):
  if solver_name != "pc":
    raise ValueError(f"sampling.inverse_method='repaint' resamples PC steps; set "
                     f"sampling.method='pc' (got {solver_name!r}) or use inverse_method="
                     "'replacement'.")
  return repaint_sample(with_replacement(fns, observation, y, keys),
                        pc_steps(fns.sde, times, use_tables), keys, shape, resamples=resamples,
                        **options)


INVERSE_METHODS = {"replacement": replacement_method, "repaint": repaint_method}


def get_inverse_method(name: str):
  """The conditional sampler registered as `name` (one of INVERSE_METHODS)."""
  if name not in INVERSE_METHODS:
    raise ValueError(f"Unknown sampling.inverse_method {name!r}; choose one of "
                     f"{sorted(INVERSE_METHODS)}.")
  return INVERSE_METHODS[name]
