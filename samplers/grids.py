"""Time grids: the decreasing times t_0 = T > ... > t_{n-1} = eps at which a solver evaluates the
model, independent of the SDE's training discretisation N.

Every solver takes n = num_steps steps: step i goes from t_i to t_{i+1}, and the last one from
eps to noise-free data (the denoising step; see each solver). Spacings:

  uniform    uniform in t (the paper: linspace(T, eps, N));
  edm        sigma_i^(1/rho) uniform between the end points' noise levels (Karras et al. 2022,
             Eq. 5, rho = 7), sigma = s(t) / a(t);
  logsnr     uniform in log-SNR = -2 log sigma (DPM-Solver's 'logSNR' skip);
  quadratic  t - eps quadratic in the step index, dense near eps (DDIM's 'quad' skip).
"""
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, UserError


def _levels(sde, eps: float):
  """Noise levels s / a at T and at eps: two floats."""
  return (float(sde.noise_level(jnp.array([t]))[0]) for t in (sde.T, eps))


def uniform(sde, n: int, eps: float, rho: float):
  del rho
  return jnp.linspace(sde.T, eps, n)


def edm(sde, n: int, eps: float, rho: float):
  hi, lo = _levels(sde, eps)
  ramp = jnp.linspace(0.0, 1.0, n)
  return sde.time_at_noise_level((hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho)


def logsnr(sde, n: int, eps: float, rho: float):
  del rho
  hi, lo = _levels(sde, eps)
  return sde.time_at_noise_level(jnp.exp(jnp.linspace(np.log(hi), np.log(lo), n)))


def quadratic(sde, n: int, eps: float, rho: float):
  del rho
  return eps + jnp.square(jnp.linspace(1.0, 0.0, n)) * (sde.T - eps)


GRIDS = {"uniform": uniform, "edm": edm, "logsnr": logsnr, "quadratic": quadratic}


def get_grid(name: str):
  """The grid function registered as `name`: fn(sde, n, eps, rho) -> times (n,)."""
  if name not in GRIDS:
    raise UserError(f"Unknown grid {name!r}; choose one of {sorted(GRIDS)}.")
  return GRIDS[name]


def make_grid(sde, name: str, num_steps: int, eps: float, rho: float = 7.0):
  """Times (num_steps,) from sde.T down to eps (both exact) on grid `name`, in the default float
  dtype (float64 under jax_enable_x64)."""
  grid = get_grid(name)
  if num_steps < 1:
    raise ArgumentError("num_steps", f"{{arg}} must be at least 1; got {num_steps}.")
  if not 0.0 < eps < sde.T:
    raise ArgumentError("eps", f"{{arg}}={eps} must lie in (0, T={sde.T}).")
  if num_steps == 1:
    return jnp.full((1,), sde.T)
  return grid(sde, num_steps, eps, rho).at[0].set(sde.T).at[-1].set(eps)
