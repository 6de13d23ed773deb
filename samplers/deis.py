"""DEIS-tAB (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
Sec. 4): the probability-flow ODE in x~ = x / a(t), dx~ = eps(x, t) dsigma (sigma = s / a), with
eps extrapolated by the Lagrange polynomial in the SDE's own time t through the last k
evaluations (k = min(i + 1, max_order) at step i), integrated over the step:

  x~_{i+1} = x~_i + sum_j C_ij eps_{i-j},  C_ij = int_{sigma_i}^{sigma_{i+1}} l_j(t(sigma)) dsigma,

l_j the Lagrange basis on t_i, ..., t_{i-k+1}. The coefficients are integrated once per grid, by
Gauss-Legendre quadrature in sigma (where the integrand is smooth; in t, dsigma/dt of VP is
singular at 0), not inside the sampling loop. For VP this is DEIS's tAB-(k - 1); for the EDM SDE
(t = sigma) its rhoAB. max_order 1 is Euler in sigma, i.e. deterministic DDIM.
"""
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError
from samplers.edm import sigma_multistep_sample

QUADRATURE_POINTS = 16  # Gauss-Legendre nodes per step: exact for degree-31 polynomials in sigma


def lagrange_basis(nodes, count, t):
  """l_j(t) of the Lagrange basis on the first count[i] of nodes[i] (the rest get 0): nodes
  (S, K), count (S,) int, t (S, Q) -> (S, Q, K)."""
  k = nodes.shape[1]
  j, m = np.arange(k)[None, :, None], np.arange(k)[None, None, :]                 # (1, K, 1), (1, 1, K)
  # (S, K, K): factor (j, m) of l_j, for used nodes only (no 0 / 0 where a node repeats)
  used = (m < count[:, None, None]) & (j < count[:, None, None]) & (m != j)
  gaps = jnp.where(used, nodes[:, :, None] - nodes[:, None, :], 1.0)              # t_j - t_m
  factors = (t[:, :, None, None] - nodes[:, None, None, :]) / gaps[:, None]       # (S, Q, K, K)
  basis = jnp.prod(jnp.where(used[:, None], factors, 1.0), axis=-1)               # (S, Q, K)
  return jnp.where(np.arange(k)[None, None, :] < count[:, None, None], basis, 0.0)


def lagrange_coefficients(points, sigmas, max_order: int, point_at_sigma):
  """C (n - 1, max_order): C[i, j] = int_{sigma_i}^{sigma_{i+1}} l_j(p(sigma)) dsigma, l_j the
  Lagrange basis in the variable p through p_i, ..., p_{i-k+1} (k = min(i + 1, max_order)), for
  grid points (n,) in p and sigma; point_at_sigma maps quadrature sigmas to p."""
  n = points.shape[0]
  step = np.arange(n - 1)
  count = jnp.asarray(np.minimum(step + 1, max_order))
  nodes = points[np.maximum(step[:, None] - np.arange(max_order)[None, :], 0)]    # (n - 1, K)
  unit, weights = np.polynomial.legendre.leggauss(QUADRATURE_POINTS)
  half = 0.5 * (sigmas[1:] - sigmas[:-1])
  quad_sigma = 0.5 * (sigmas[1:] + sigmas[:-1])[:, None] + half[:, None] * unit[None]
  quad_points = point_at_sigma(quad_sigma.reshape(-1)).reshape(quad_sigma.shape)
  basis = lagrange_basis(nodes, count, quad_points)                                # (n - 1, Q, K)
  return half[:, None] * jnp.einsum("q,iqk->ik", jnp.asarray(weights, points.dtype), basis)


def deis_coefficients(sde, times, max_order: int):
  """C (n - 1, max_order): C[i, j] multiplies eps at t_{i-j} in step i (t_i -> t_{i+1})."""
  return lagrange_coefficients(times, sde.noise_level(times), max_order, sde.time_at_noise_level)


def deis(fns, times, keys, shape, max_order: int = 4, denoise: bool = True):
  """Samples (B, *shape) over `times` (n,) (T to eps): n - 1 steps of one model call each, then
  D(x, eps) if `denoise`: n - 1 (+ 1) NFE. keys (B, key): per-sample keys (the prior from step
  0)."""
  if max_order not in (1, 2, 3, 4):
    raise ArgumentError("max_order", f"{{arg}} of deis must be 1 to 4; got {max_order}.")
  coefficients = deis_coefficients(fns.sde, times, max_order)
  return sigma_multistep_sample(fns, times, keys, shape, coefficients, denoise)
