"""Time grids: the decreasing times t_0 = T > ... > t_{n-1} = eps at which a solver evaluates the
model, independent of the SDE's training discretisation N.

Every solver takes n = num_steps steps: step i goes from t_i to t_{i+1}, and the last one from
eps to noise-free data (the denoising step; see each solver). Spacings:

  uniform         uniform in t (the paper: linspace(T, eps, N));
  edm             sigma_i^(1/rho) uniform between the end points' noise levels (Karras et al.
                  2022, Eq. 5, rho = 7), sigma = s(t) / a(t);
  logsnr          uniform in log-SNR = -2 log sigma (DPM-Solver's 'logSNR' skip);
  quadratic       t - eps quadratic in the step index, dense near eps (DDIM's 'quad' skip);
  time_quadratic  uniform in sqrt(t) (DPM-Solver's 'time_quadratic' skip);
  ays             uniform in arctan(sigma / c) for data of std c (Sabour et al. 2024, "Align Your
                  Steps", Sec. 3.3: the optimal schedule for Gaussian data of that std);
  file            the times of a schedule file (samplers.schedules: GITS, learned), grid_path.

A grid is `fn(sde, n, eps, **options) -> times (n,)`; its keyword options are the config keys
sampling.grid_<option> (grid_rho, grid_data_std, grid_path), passed by grid_options.
"""
import inspect

import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, UserError
from samplers.schedules import from_file


def _levels(sde, eps: float):
  """Noise levels s / a at T and at eps: two floats."""
  return (float(sde.noise_level(jnp.array([t]))[0]) for t in (sde.T, eps))


def uniform(sde, n: int, eps: float):
  return jnp.linspace(sde.T, eps, n)


def edm(sde, n: int, eps: float, rho: float = 7.0):
  hi, lo = _levels(sde, eps)
  ramp = jnp.linspace(0.0, 1.0, n)
  return sde.time_at_noise_level((hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho)


def logsnr(sde, n: int, eps: float):
  hi, lo = _levels(sde, eps)
  return sde.time_at_noise_level(jnp.exp(jnp.linspace(np.log(hi), np.log(lo), n)))


def quadratic(sde, n: int, eps: float):
  return eps + jnp.square(jnp.linspace(1.0, 0.0, n)) * (sde.T - eps)


def time_quadratic(sde, n: int, eps: float):
  return jnp.square(jnp.linspace(np.sqrt(sde.T), np.sqrt(eps), n))


def ays(sde, n: int, eps: float, data_std: float = 0.5):
  """sigma_i = c tan(theta_i), theta uniform between arctan(sigma_max / c) and arctan(sigma_min
  / c), c = data_std (0.5: EDM's sigma_data for images in [-1, 1])."""
  if data_std <= 0:
    raise ArgumentError("data_std", f"{{arg}} must be positive; got {data_std}.")
  hi, lo = _levels(sde, eps)
  theta = jnp.linspace(np.arctan(hi / data_std), np.arctan(lo / data_std), n)
  return sde.time_at_noise_level(data_std * jnp.tan(theta))


GRIDS = {"uniform": uniform, "edm": edm, "logsnr": logsnr, "quadratic": quadratic,
         "time_quadratic": time_quadratic, "ays": ays, "file": from_file}


def get_grid(name: str):
  """The grid function registered as `name`: fn(sde, n, eps, **options) -> times (n,)."""
  if name not in GRIDS:
    raise UserError(f"Unknown grid {name!r}; choose one of {sorted(GRIDS)}.")
  return GRIDS[name]


def grid_option_defaults() -> dict:
  """{config key grid_<option>: default} over every grid."""
  return {f"grid_{p.name}": p.default for fn in GRIDS.values()
          for p in inspect.signature(fn).parameters.values() if p.default is not p.empty}


def grid_options(name: str, settings) -> dict:
  """The keyword options of grid `name` from `settings` (a mapping with grid_<option> keys)."""
  params = inspect.signature(get_grid(name)).parameters.values()
  return {p.name: settings[f"grid_{p.name}"] for p in params
          if p.default is not p.empty and f"grid_{p.name}" in settings}


def check_grid_option_keys(name: str, keys) -> None:
  """One line for a grid_<option> key (among `keys`) that grid `name` does not take (an
  unknown grid is left to get_grid)."""
  if name not in GRIDS:
    return
  takes = {f"grid_{p}" for p in inspect.signature(get_grid(name)).parameters}
  for key in set(keys) & set(grid_option_defaults()) - takes:
    takers = sorted(g for g in GRIDS if key[len("grid_"):] in inspect.signature(GRIDS[g]).parameters)
    raise UserError(f"sampling.{key} is an option of grid {', '.join(takers)}, not of "
                    f"sampling.grid={name!r}; drop it or pick that grid.")


def make_grid(sde, name: str, num_steps: int, eps: float, **options):
  """Times (num_steps,) from sde.T down to eps (both exact) on grid `name` with its keyword
  `options`, in the default float dtype (float64 under jax_enable_x64)."""
  grid = get_grid(name)
  if num_steps < 1:
    raise ArgumentError("num_steps", f"{{arg}} must be at least 1; got {num_steps}.")
  if not 0.0 < eps < sde.T:
    raise ArgumentError("eps", f"{{arg}}={eps} must lie in (0, T={sde.T}).")
  if num_steps == 1:
    return jnp.full((1,), sde.T)
  return grid(sde, num_steps, eps, **options).at[0].set(sde.T).at[-1].set(eps)
