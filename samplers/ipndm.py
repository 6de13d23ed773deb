"""iPNDM (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
App. B: the improved pseudo numerical method of Liu et al. 2022), as zju-pi/diff-sampler runs it:
linear multistep (Adams-Bashforth) steps of EDM's ODE dx~/dsigma = (x~ - D(x, t)) / sigma in the
unscaled x~ = x / a(t) (samplers.edm), reusing the derivatives of earlier steps. The first steps
warm up at orders 1, 2, 3 (no extra model calls), then max_order; the coefficients are those of
equal steps, whatever the grid.

variable_steps=True is diff-sampler's iPNDM_v: the Adams-Bashforth weights of the grid's own
steps, i.e. the Lagrange polynomial in sigma through the last k slopes integrated over the step
(samplers.deis.lagrange_coefficients), exact for slopes polynomial in sigma. Its order 2 equals
diff-sampler's closed form. Its orders 3 and 4 equal what diff-sampler's closed forms mean, not
what they compute: `1 - h / (3 (h + h1)) * (h (h + h1)) / (h1 (h1 + h2))` is evaluated as
1 - h^2 / (3 h1 (h1 + h2)), not (1 - h / (3 (h + h1))) h (h + h1) / (h1 (h1 + h2)), so its order 3
is exact only for equal steps; and its order-4 weights sum to 35/24 at equal steps (here: AB4's
55/24, -59/24, 37/24, -9/24).
"""
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError
from samplers.deis import lagrange_coefficients
from samplers.edm import sigma_multistep_sample

# Adams-Bashforth weights of d_i, d_{i-1}, d_{i-2}, d_{i-3} at orders 1 to 4.
ADAMS_BASHFORTH = ((1.0, 0.0, 0.0, 0.0), (3 / 2, -1 / 2, 0.0, 0.0),
                   (23 / 12, -16 / 12, 5 / 12, 0.0), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


def ipndm(fns, times, keys, shape, max_order: int = 4, variable_steps: bool = False,
          denoise: bool = True):
  """Samples (B, *shape) over `times` (n,) (T to eps): n - 1 steps, step i of order
  min(i + 1, max_order) with one denoiser call, then D(x, eps) if `denoise`: n - 1 (+ 1) NFE.
  variable_steps: iPNDM_v's weights (module docstring). keys (B, key): per-sample keys (the prior
  from step 0)."""
  if max_order not in (1, 2, 3, 4):
    raise ArgumentError("max_order", f"{{arg}} of ipndm must be 1 to 4; got {max_order}.")
  n = times.shape[0]
  sigmas = fns.sde.noise_level(times)
  if variable_steps:
    coefficients = lagrange_coefficients(sigmas, sigmas, max_order, lambda sigma: sigma)
    return sigma_multistep_sample(fns, times, keys, shape, coefficients, denoise)
  orders = np.minimum(np.arange(1, n), max_order)
  weights = jnp.asarray(np.asarray(ADAMS_BASHFORTH)[orders - 1, :max_order], sigmas.dtype)
  coefficients = (sigmas[1:] - sigmas[:-1])[:, None] * weights  # (n - 1, max_order)
  return sigma_multistep_sample(fns, times, keys, shape, coefficients, denoise)
