"""Variational upper bounds on -log p(x) in nats, per example with a Monte Carlo standard error:
the continuous-time ELBO of any Gaussian noise process and the discrete chain's ELBO. Unlike
samplers.likelihood's PF-ODE log-density they bound the NLL of the model's reverse process.

Continuous (Kingma et al. 2021, "VDM", Eq. 17-18 and App. E; Song et al. 2021b, Thm. 2 in
denoiser form), for the kernel x_t = a x + s eps with SNR = a^2 / s^2 falling from t0 to T:

  -log p(x) <= KL(q(x_T | x) || p_T) + E[-log p(x | x_t0)] + 1/2 int_{t0}^T -SNR'(t) E||x - D(x_t, t)||^2 dt,

with VDM's decoder p(x | x_t0) = N(x_t0 / a_t0, sigma_t0^2 I), whose term is D/2 log(2 pi e
sigma_t0^2) exactly. Since SNR ||x - D||^2 = ||eps - eps^||^2, in nu = log SNR the integral is
1/2 int ||eps - eps^||^2 dnu: t is drawn with nu uniform (`t_sampling='log_snr'`, VDM's
importance sampling) or t uniform ('uniform', weight -dnu/dt).

Discrete chain over levels j = 0..n-1, x_j = alphas_j x + sigmas_j z (Sohl-Dickstein et al. 2015;
Ho et al. 2020, Eq. 5), with the reverse transitions' variance the posterior's, so
KL(q(x_{j-1} | x_j, x) || p(x_{j-1} | x_j)) = 1/2 (SNR_{j-1} - SNR_j) ||x - x^_j||^2 (VDM, Eq. 13):

  -log p(x) <= KL(q(x_{n-1} | x) || p_T) + sum_{j >= 1} 1/2 (SNR_{j-1} / SNR_j - 1) E||eps - eps^_j||^2
               + E[-log p(x | x_0)],

the decoder N(x^_0, (sigmas_0 / alphas_0)^2) on continuous data, or for 8-bit data its mass on
the data's bin (DDPM's discretised decoder, Eq. 13: the outer bins open), so the bound is on the
discrete data's NLL with no dequantisation. Level j is at time j T / (n - 1) (the released
tables), and eps^_j = -sigmas_j score(x_j, t_j), the network's eps for the DDPM parameterisation.
The sum over j is estimated from j drawn uniformly (stratified over the draws, as t in the
continuous bound).
"""
import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats
import numpy as np

from configs.errors import ArgumentError
from samplers.per_sample_keys import per_sample_normal, per_sample_uniform
from sde_lib import batch_expand


def _sum_over_features(v):
  return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


def prior_kl(sde, x, alpha, sigma):
  """KL(N(alpha x, sigma^2 I) || p_T) per example (B,), alpha and sigma scalars. Exact for the
  isotropic Gaussian priors here: E[log p_T(m + sigma z)] = log p_T(m) + D sigma^2 h / 2 for a
  quadratic log p_T with Hessian h I, and h D sigma^2 = log p_T(m + sigma 1) + log p_T(m - sigma 1)
  - 2 log p_T(m) (1 the all-ones vector)."""
  mean, dim = alpha * x, np.prod(x.shape[1:])
  at_mean = sde.prior_logp(mean)
  curvature = sde.prior_logp(mean + sigma) + sde.prior_logp(mean - sigma) - 2.0 * at_mean
  entropy = 0.5 * dim * (np.log(2.0 * np.pi * np.e) + 2.0 * jnp.log(sigma))
  return -(at_mean + 0.5 * curvature) - entropy


def _mean_and_stderr(fn, num_draws: int, batch: int, dtype):
  """Mean and standard error over draws m = 0..num_draws-1 (even) of fn(m) (B,) -> ((B,), (B,)),
  draw m from stratum m of num_draws. The variance is that of collapsed strata (Cochran 1977,
  Sec. 5A.12): sum over pairs (2k, 2k + 1) of (f_2k - f_2k+1)^2 / M^2, unbiased for independent
  draws and conservative for stratified ones."""
  if num_draws < 2 or num_draws % 2:
    raise ArgumentError("eval.elbo_draws", f"{{arg}} must be even and >= 2; got {num_draws}.")

  def body(carry, m):
    total, squares, previous = carry
    value = fn(m)
    squares = squares + jnp.where(m % 2 == 1, jnp.square(value - previous), 0.0)
    return (total + value, squares, value), None

  zeros = jnp.zeros((batch,), dtype)
  (total, squares, _), _ = jax.lax.scan(body, (zeros, zeros, zeros), jnp.arange(num_draws))
  return total / num_draws, jnp.sqrt(squares) / num_draws


T_SAMPLINGS = ("log_snr", "uniform")


def continuous_elbo(fns, x, keys, num_draws: int = 64, eps: float = 1e-5,
                    t_sampling: str = "log_snr"):
  """The continuous-time bound (module docstring) on -log p(x) (B,) nats and its standard error
  (B,), from num_draws draws of (t, eps) per example (draw m: keys' steps 2m, 2m + 1), one model
  call each. x (B, ...): data; keys (B, key): per-sample keys; eps: t0."""
  if t_sampling not in T_SAMPLINGS:
    raise ArgumentError("t_sampling", f"{{arg}}={t_sampling!r} is not one of {list(T_SAMPLINGS)}.")
  sde, dim, batch = fns.sde, np.prod(x.shape[1:]), x.shape[0]
  vec = lambda v: jnp.full((batch,), v, x.dtype)
  log_snr = lambda t: -2.0 * jnp.log(sde.noise_level(t))
  nu_max, nu_min = log_snr(vec(eps)), log_snr(vec(sde.T))

  def diffusion_term(m):
    u = (m + per_sample_uniform(keys, 2 * m)) / num_draws  # stratified: draw m in [m, m + 1) / M
    if t_sampling == "log_snr":
      nu = nu_min + u * (nu_max - nu_min)
      t, weight = sde.time_at_noise_level(jnp.exp(-0.5 * nu)), nu_max - nu_min
    else:
      t = eps + u * (sde.T - eps)
      nu, dnu_dt = jax.jvp(log_snr, (t,), (jnp.ones_like(t),))
      weight = -dnu_dt * (sde.T - eps)
    a, s = sde.marginal_coeffs(t)
    noise = per_sample_normal(keys, 2 * m + 1, x.shape[1:])
    predicted = fns.eps(batch_expand(a, x) * x + batch_expand(s, x) * noise, t)
    error = _sum_over_features(jnp.square(noise - predicted))
    # A control variate, E[||noise||^2 - D | t] = 0: for unit-variance Gaussian data
    # eps - eps^ = r / (1 + r) noise + (a term in x), r = SNR, so subtracting
    # (r / (1 + r))^2 (||noise||^2 - D) removes the chi^2 noise that dominates at high SNR.
    control = jnp.square(jax.nn.sigmoid(nu)) * (_sum_over_features(jnp.square(noise)) - dim)
    return 0.5 * weight * (error - control)

  diffusion, stderr = _mean_and_stderr(diffusion_term, num_draws, batch, x.dtype)
  a_end, s_end = sde.marginal_coeffs(jnp.full((1,), sde.T, x.dtype))
  decoder = 0.5 * dim * (np.log(2.0 * np.pi * np.e) + 2.0 * jnp.log(sde.noise_level(vec(eps))))
  return prior_kl(sde, x, a_end[0], s_end[0]) + decoder + diffusion, stderr


def discretized_gaussian_nll(x, mean, std, half_width: float, low: float, high: float):
  """-log of N(mean, std^2)'s mass on [x - half_width, x + half_width] per example (B,), the
  bins at low and high open to -inf and +inf (DDPM's decoder); x on the grid of bin centres."""
  upper = jnp.where(x >= high - half_width, 1.0, jstats.norm.cdf((x + half_width - mean) / std))
  lower = jnp.where(x <= low + half_width, 0.0, jstats.norm.cdf((x - half_width - mean) / std))
  return -_sum_over_features(jnp.log(jnp.maximum(upper - lower, 1e-12)))


def discrete_elbo(fns, x, keys, num_draws: int = 64, num_levels: int | None = None,
                  bins: tuple | None = None):
  """The discrete chain's bound (module docstring) on -log p(x) (B,) nats and its standard error,
  over fns.sde.discrete_levels(num_levels) (default: the SDE's N), from num_draws draws of a level
  j >= 1 (and of the decoder's x_0) per example, two model calls each. bins: (half_width, low,
  high) for data on a grid of bin centres in [low, high] (8-bit images), else None (a Gaussian
  density)."""
  sde, batch = fns.sde, x.shape[0]
  n = num_levels or sde.N
  levels = sde.discrete_levels(n)
  times = jnp.linspace(0.0, sde.T, n).astype(x.dtype)
  snr = jnp.square(levels.alphas / levels.sigmas)

  def level_eps(j, noise):
    """(x_j, eps^_j) at levels j (B,) for the noise (B, ...)."""
    alpha, sigma = levels.alphas[j], levels.sigmas[j]
    x_j = batch_expand(alpha, x) * x + batch_expand(sigma, x) * noise
    return x_j, -batch_expand(sigma, x) * fns.score(x_j, times[j])

  def draw(m):
    u = (m + per_sample_uniform(keys, 3 * m)) / num_draws  # stratified as t in continuous_elbo
    j = 1 + jnp.minimum((u * (n - 1)).astype(jnp.int32), n - 2)
    noise = per_sample_normal(keys, 3 * m + 1, x.shape[1:])
    chain = 0.5 * (snr[j - 1] / snr[j] - 1.0) * _sum_over_features(
        jnp.square(noise - level_eps(j, noise)[1]))
    zero = jnp.zeros((batch,), jnp.int32)
    x_0, eps_0 = level_eps(zero, per_sample_normal(keys, 3 * m + 2, x.shape[1:]))
    mean = (x_0 - batch_expand(levels.sigmas[zero], x) * eps_0) / levels.alphas[0]
    std = levels.sigmas[0] / levels.alphas[0]
    if bins is None:
      decoder = -_sum_over_features(jstats.norm.logpdf(x, mean, std))
    else:
      decoder = discretized_gaussian_nll(x, mean, std, *bins)
    return (n - 1) * chain + decoder

  total, stderr = _mean_and_stderr(draw, num_draws, batch, x.dtype)
  return prior_kl(sde, x, levels.alphas[-1], levels.sigmas[-1]) + total, stderr
