"""DDIM (Song, Meng & Ermon 2021, Eq. 12) on any SDE's kernel N(a x0, s^2 I) and any grid.

Step t -> t' (< t), with x0 = D(x, t) and eps the model's noise prediction:
  x' = a' x0 + sqrt(s'^2 - c^2) eps + c z,  c = eta s' sqrt(1 - (a s' / (a' s))^2),
c^2 being eta^2 times the variance of q(x' | x, x0), so eta = 0 is the deterministic DDIM
(first-order DPM-Solver++, Lu et al. 2022) and eta = 1 ancestral DDPM sampling.
"""
import jax
import jax.numpy as jnp

from configs.errors import ArgumentError
from samplers.per_sample_keys import per_sample_normal
from sde_lib import batch_expand


def ddim_sample(fns, times, keys, shape, eta: float = 0.0, denoise: bool = True):
  """Samples (B, *shape) over `times` (n,) (T to eps), and the NFE: n - 1 steps, then the
  denoising step x0 = D(x, eps) if `denoise` (n NFE in all). keys (B, key): per-sample keys;
  the prior from step 0 of each, step i's noise from step i + 1."""
  if eta < 0:
    raise ArgumentError("eta", f"{{arg}} must be >= 0; got {eta}.")
  x = fns.initial(keys, shape)

  def body(x, inputs):
    i, t, t_next = inputs
    vec = lambda v: jnp.full((x.shape[0],), v, x.dtype)
    x0, eps = fns.predictions(x, vec(t))
    a, s = fns.sde.marginal_coeffs(vec(t))
    a_next, s_next = fns.sde.marginal_coeffs(vec(t_next))
    c = eta * s_next * jnp.sqrt(jnp.maximum(1.0 - jnp.square(a * s_next / (a_next * s)), 0.0))
    noise = per_sample_normal(keys, i + 1, shape) if eta > 0 else jnp.zeros_like(x)
    direction = jnp.sqrt(jnp.maximum(s_next**2 - c**2, 0.0))
    x = (batch_expand(a_next, x) * x0 + batch_expand(direction, x) * eps
         + batch_expand(c, x) * noise)
    return fns.constrain(x, vec(t_next), i + 1), None

  n = times.shape[0]
  x, _ = jax.lax.scan(body, x, (jnp.arange(n - 1), times[:-1], times[1:]))
  if denoise:
    x = fns.denoise(x, jnp.full((x.shape[0],), times[-1], x.dtype))
  return fns.constrain(x, None, n), n - 1 + int(denoise)
