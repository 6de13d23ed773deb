"""EDM's samplers (Karras et al. 2022, Alg. 1-2): Euler and Heun steps of the probability-flow ODE
written for the unscaled x~ = x / a(t) against its noise level sigma = s(t) / a(t),

  dx~ / dsigma = (x~ - D(x, t)) / sigma  (their Eq. 4 with s = 1),

which holds for every SDE here since x~ ~ x0 + sigma n. For the EDM SDE (sigma(t) = t, a = 1) this
is their sampler exactly; for VP / sub-VP it is EDM's advice of stepping in sigma, not t (Euler is
then deterministic DDIM). Churn at step i raises the noise level by gamma_i = min(S_churn / n,
sqrt(2) - 1) where S_tmin <= sigma_i <= S_tmax, adding fresh noise of std
sqrt(sigma^_i^2 - sigma_i^2) S_noise to x~ (Alg. 2, lines 4-6), then steps from sigma^_i; the
last step, to sigma = 0 (D(x, sigma^_{n-1})), is churned too, as in Alg. 2 and k-diffusion.
"""
import jax
import jax.numpy as jnp

from samplers.per_sample_keys import per_sample_normal
from sde_lib import batch_expand

SQRT2_MINUS_1 = 2.0**0.5 - 1.0


def _direction(fns, x_tilde, sigma):
  """(x~ - D) / sigma at noise level sigma (scalar): (B, ...) -> (B, ...)."""
  t = fns.sde.time_at_noise_level(jnp.full((x_tilde.shape[0],), sigma, x_tilde.dtype))
  a = fns.sde.marginal_coeffs(t)[0]
  return (x_tilde - fns.denoise(batch_expand(a, x_tilde) * x_tilde, t)) / sigma


def _constrain_unscaled(fns, x_tilde, t, step):
  """fns.project applied to x = a(t) x~ at the scalar time t, back in x~."""
  if fns.project is None:
    return x_tilde
  a = batch_expand(fns.sde.marginal_coeffs(jnp.full(x_tilde.shape[:1], t, x_tilde.dtype))[0], x_tilde)
  return fns.constrain(a * x_tilde, jnp.full(x_tilde.shape[:1], t, x_tilde.dtype), step) / a


def _edm_sample(fns, times, keys, shape, second_order: bool, s_churn: float, s_tmin: float,
                s_tmax: float, s_noise: float, denoise: bool):
  n = times.shape[0]
  sigmas = fns.sde.noise_level(times)
  in_range = (sigmas >= s_tmin) & (sigmas <= s_tmax)
  gammas = jnp.where(in_range, min(s_churn / n, SQRT2_MINUS_1), 0.0)

  def churn(x_tilde, i, sigma, gamma):
    """Alg. 2, lines 5-6: (x~ at sigma^ = sigma (1 + gamma), sigma^)."""
    if s_churn == 0:
      return x_tilde, sigma
    noise = per_sample_normal(keys, i + 1, shape)
    # sqrt(sigma_hat^2 - sigma^2) without cancellation (an FMA can make it negative at gamma 0)
    x_tilde = x_tilde + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * noise
    sigma = sigma * (1.0 + gamma)
    return _constrain_unscaled(fns, x_tilde, fns.sde.time_at_noise_level(sigma), 2 * n + i), sigma

  def body(x_tilde, inputs):
    i, sigma, sigma_next, t_next, gamma = inputs
    x_tilde, sigma = churn(x_tilde, i, sigma, gamma)
    d = _direction(fns, x_tilde, sigma)
    x_next = x_tilde + (sigma_next - sigma) * d
    if second_order:  # Alg. 2, lines 9-11, the Euler point projected as every update
      x_euler = _constrain_unscaled(fns, x_next, t_next, n + 1 + i)
      x_next = x_tilde + (sigma_next - sigma) * 0.5 * (d + _direction(fns, x_euler, sigma_next))
    return _constrain_unscaled(fns, x_next, t_next, i + 1), None

  x = fns.initial(keys, shape)
  x_tilde = x / batch_expand(fns.sde.marginal_coeffs(jnp.full(x.shape[:1], times[0], x.dtype))[0], x)
  x_tilde, _ = jax.lax.scan(body, x_tilde, (jnp.arange(n - 1), sigmas[:-1], sigmas[1:], times[1:],
                                            gammas[:-1]))
  last = jnp.full(x.shape[:1], times[-1], x.dtype)
  if denoise and s_churn > 0:  # the last step, sigma_{n-1} -> 0, churned as any step
    x_tilde, sigma = churn(x_tilde, n - 1, sigmas[-1], gammas[-1])
    last = fns.sde.time_at_noise_level(jnp.full(x.shape[:1], sigma, x.dtype))
  x = batch_expand(fns.sde.marginal_coeffs(last)[0], x_tilde) * x_tilde
  if denoise:  # D(x, sigma^_{n-1}): the Euler step to sigma = 0
    x = fns.denoise(x, last)
  return fns.constrain(x, None, n), (n - 1) * (2 if second_order else 1) + int(denoise)


def heun_sample(fns, times, keys, shape, s_churn: float = 0.0, s_tmin: float = 0.0,
                s_tmax: float = float("inf"), s_noise: float = 1.0, denoise: bool = True):
  """EDM's Heun sampler (Alg. 2; Alg. 1 when s_churn = 0) over `times` (n,): n - 1 Heun steps
  (2 NFE each) then the step to noise-free data D(x, eps) (1 NFE) if `denoise`: 2n - 1 NFE, as
  EDM counts. keys (B, key): per-sample keys (prior: step 0; step i's churn noise: i + 1)."""
  return _edm_sample(fns, times, keys, shape, True, s_churn, s_tmin, s_tmax, s_noise, denoise)


def euler_sample(fns, times, keys, shape, s_churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = float("inf"), s_noise: float = 1.0, denoise: bool = True):
  """Euler steps in sigma (with optional churn): n - 1 steps + D(x, eps); without churn this is
  deterministic DDIM."""
  return _edm_sample(fns, times, keys, shape, False, s_churn, s_tmin, s_tmax, s_noise, denoise)


def sigma_multistep_sample(fns, times, keys, shape, coefficients, denoise: bool):
  """Linear multistep steps of dx~ / dsigma = (x~ - D) / sigma over `times` (n,), T to eps:
  x~_{i+1} = x~_i + sum_k coefficients[i, k] d_{i-k} with coefficients (n - 1, K) (zero where
  step i has fewer than k + 1 slopes), one model call each, then D(x, eps) if `denoise`:
  (samples (B, *shape), n - 1 (+ 1) NFE). iPNDM and DEIS differ only in their coefficients."""
  n, order = times.shape[0], coefficients.shape[1]
  sigmas = fns.sde.noise_level(times)
  x = fns.initial(keys, shape)
  first = jnp.full(x.shape[:1], times[0], x.dtype)
  x_tilde = x / batch_expand(fns.sde.marginal_coeffs(first)[0], x)

  def body(carry, inputs):
    x_tilde, history = carry
    i, sigma, t_next, c = inputs
    slopes = (_direction(fns, x_tilde, sigma),) + history
    update = sum(c[k] * slopes[k] for k in range(order))
    x_tilde = _constrain_unscaled(fns, x_tilde + update, t_next, i + 1)
    return (x_tilde, slopes[:order - 1]), None

  history = (jnp.zeros_like(x_tilde),) * (order - 1)
  (x_tilde, _), _ = jax.lax.scan(body, (x_tilde, history), (
      jnp.arange(n - 1), sigmas[:-1], times[1:], coefficients))
  last = jnp.full(x.shape[:1], times[-1], x.dtype)
  x = batch_expand(fns.sde.marginal_coeffs(last)[0], x_tilde) * x_tilde
  if denoise:
    x = fns.denoise(x, last)
  return fns.constrain(x, None, n), n - 1 + int(denoise)
