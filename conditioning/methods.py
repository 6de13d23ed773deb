"""Conditional samplers of linear inverse problems by name (sampling.inverse_method):

  replacement  the paper's: any grid solver (samplers.SOLVERS) with the replacement hook;
  repaint      RePaint resampling around the PC sampler (conditioning.repaint);
  pigdm, dps   posterior guidance of the score for y = A x + noise (conditioning.posterior): any
               grid solver, noisy observations too.

Each entry is fn(solver_name, fns, times, keys, shape, observation, y, resamples, noise_std=0.0,
scale=1.0, **options) -> (samples (B, *shape), NFE); fns are the unconditional samplers.ModelFns,
noise_std the std of the observation noise, scale the posterior guidance scale and options those
of samplers.SOLVERS[solver_name].
"""
from conditioning.posterior import check_posterior_noise, with_posterior_guidance
from conditioning.repaint import repaint_sample
from conditioning.replacement import with_replacement
from configs.errors import UserError
from samplers.pc import pc_steps
from samplers.solvers import get_solver

PROJECTING = ("replacement", "repaint")  # methods that copy y into x: noise-free, grid solvers


def check_inverse_settings(name: str, solver_name: str, noise_std: float) -> None:
  """One-line errors for a method that cannot run this solver or this observation noise."""
  get_inverse_method(name)
  if not get_solver(solver_name).uses_grid:
    raise UserError(f"sampling.method={solver_name!r} (adaptive) solves each sample alone and "
                     "cannot replace the observed part after each step; use a grid solver (pc, "
                     "ddim, heun, dpm_solver_2m, ...) for inverse problems.")
  if name == "repaint" and solver_name != "pc":
    raise UserError(f"sampling.inverse_method='repaint' resamples PC steps; set "
                    f"--config.sampling.method=pc (got {solver_name!r}) or use "
                    "inverse_method='replacement'.")
  if name not in PROJECTING:
    check_posterior_noise(name, noise_std)
  elif noise_std != 0:
    raise UserError(f"sampling.inverse_method={name!r} assumes noise-free observations y = A x "
                     f"(sampling.observation_noise={noise_std}); use inverse_method='pigdm' or "
                     "'dps' (posterior guidance) for noisy ones.")


def replacement_method(solver_name, fns, times, keys, shape, observation, y, resamples,
                       noise_std: float = 0.0, scale: float = 1.0, **options):
  del resamples, scale
  check_inverse_settings("replacement", solver_name, noise_std)
  solver = get_solver(solver_name)
  return solver.sample(with_replacement(fns, observation, y, keys), times, keys, shape, **options)


def repaint_method(solver_name, fns, times, keys, shape, observation, y, resamples,
                   noise_std: float = 0.0, scale: float = 1.0, use_tables: bool = False,
                   **options):
  del scale
  check_inverse_settings("repaint", solver_name, noise_std)
  return repaint_sample(with_replacement(fns, observation, y, keys),
                        pc_steps(fns.sde, times, use_tables), keys, shape, resamples=resamples,
                        **options)


def posterior_method(name: str):
  """The entry of conditioning.posterior's method `name` (dps | pigdm)."""

  def sample(solver_name, fns, times, keys, shape, observation, y, resamples,
             noise_std: float = 0.0, scale: float = 1.0, **options):
    del resamples
    check_inverse_settings(name, solver_name, noise_std)
    guided = with_posterior_guidance(name, fns, observation, y, noise_std, scale)
    return get_solver(solver_name).sample(guided, times, keys, shape, **options)

  return sample


INVERSE_METHODS = {"replacement": replacement_method, "repaint": repaint_method,
                   "pigdm": posterior_method("pigdm"), "dps": posterior_method("dps")}


def get_inverse_method(name: str):
  """The conditional sampler registered as `name` (one of INVERSE_METHODS)."""
  if name not in INVERSE_METHODS:
    raise UserError(f"Unknown sampling.inverse_method {name!r}; choose one of "
                     f"{sorted(INVERSE_METHODS)}.")
  return INVERSE_METHODS[name]
