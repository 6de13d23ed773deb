"""iPNDM (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
App. B: the improved pseudo numerical method of Liu et al. 2022), as zju-pi/diff-sampler runs it:
linear multistep (Adams-Bashforth) steps of EDM's ODE dx~/dsigma = (x~ - D(x, t)) / sigma in the
unscaled x~ = x / a(t) (samplers.edm), reusing the derivatives of earlier steps. The first steps
warm up at orders 1, 2, 3 (no extra model calls), then max_order; the coefficients are those of
equal steps, whatever the grid.
"""
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError
from samplers.edm import sigma_multistep_sample

# Adams-Bashforth weights of d_i, d_{i-1}, d_{i-2}, d_{i-3} at orders 1 to 4.
ADAMS_BASHFORTH = ((1.0, 0.0, 0.0, 0.0), (3 / 2, -1 / 2, 0.0, 0.0),
                   (23 / 12, -16 / 12, 5 / 12, 0.0), (55 / 24, -59 / 24, 37 / 24, -9 / 24))


def ipndm(fns, times, keys, shape, max_order: int = 4, denoise: bool = True):
  """Samples (B, *shape) over `times` (n,) (T to eps): n - 1 steps, step i of order
  min(i + 1, max_order) with one denoiser call, then D(x, eps) if `denoise`: n - 1 (+ 1) NFE.
  keys (B, key): per-sample keys (the prior from step 0)."""
  if max_order not in (1, 2, 3, 4):
    raise ArgumentError("max_order", f"{{arg}} of ipndm must be 1 to 4; got {max_order}.")
  n = times.shape[0]
  sigmas = fns.sde.noise_level(times)
  orders = np.minimum(np.arange(1, n), max_order)
  weights = jnp.asarray(np.asarray(ADAMS_BASHFORTH)[orders - 1, :max_order], sigmas.dtype)
  coefficients = (sigmas[1:] - sigmas[:-1])[:, None] * weights  # (n - 1, max_order)
  return sigma_multistep_sample(fns, times, keys, shape, coefficients, denoise)
