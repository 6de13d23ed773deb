"""Posterior sampling for noisy linear inverse problems y = A x0 + sigma_y n, n ~ N(0, I), as a
transformation of the score (as classifier guidance, conditioning.guidance):

  grad log p_t(x | y) = grad log p_t(x) + grad_x log p_t(y | x),
  p_t(y | x) ~= N(y; A D(x, t), (sigma_y^2 + c r_t^2) I),

with D(x, t) = E[x0 | x(t) = x] the Tweedie denoiser (samplers.ModelFns.denoise) and the gradient
taken through D by autodiff: one vector-Jacobian product of the score per evaluation. A A^T = c I
for every observation of conditioning.linear: c = 1 for masks, 1/3 for the gray image (the channel
mean, i.e. the unit gray axis / sqrt(3)), 1/f^2 for f x f average pooling (the block mean, not the
orthonormal block sum / f); `gram_scale` measures it. Two choices of r_t, by name:

  dps    r_t = 0: diffusion posterior sampling (Chung et al. 2023, Eq. 16 with Gaussian noise:
         weight 1 / sigma_y^2, not the paper's step-size heuristic zeta / ||y - A D||). Needs
         sigma_y > 0; over-confident where D is still far from x0, and stiff for small sigma_y
         (2-D mixture, sigma_y = 0.1: PC diverges at 200 steps; at 1000 its energy distance to
         the exact posterior is 0.11, pigdm's at 200 is 0.014). Prefer pigdm.
  pigdm  r_t^2 = s^2 / (a^2 + s^2), the variance of x0 given x(t) = a x0 + s z for x0 ~ N(0, I)
         (Song et al. 2023, "Pseudoinverse-guided diffusion models for inverse problems"): for a
         standard normal prior p_t(y | x) is exact, and so are the samples (tested, VP and VE).
         sigma_y = 0 is allowed: the weight 1 / (c r_t^2) ~ 1 / s(t)^2 is finite for t >= eps > 0
         and pulls A x to y like the exact conditional score; stiff near eps, yet the final
         denoising step lands A x on y to < 1e-3 on the 2-D mixture (not bit for bit).

Both change the score only, so every grid solver runs them (the adaptive ODE solves each sample
alone, apart from its row of y, and is refused); sampling.inverse.scale multiplies the guidance term
(1: the likelihood above). Stochastic solvers (pc, dpm_solver_sde_2m) correct the approximation
better than deterministic ones (2-D mixture, sigma_y = 0.3: energy distance 0.006 for PC at 200
steps, 0.06 for ddim / dpm_solver_2m at 50).

When it beats replacement (conditioning.replacement, repaint): noisy observations, which
replacement cannot model (it copies y into x, noise and all); and noise-free ones where unknown
coordinates depend on the known ones, where replacement's unknown part sees only a noisy copy of
y and is biased (2-D mixture, x_2 given x_1 = 0, PC 100 steps: energy distance 0.016 against
replacement's 0.035; RePaint with 5 passes, 5x the NFE: 0.0045). When it does not: the Gaussian
likelihood is an approximation wherever p(x0 | x(t)) is not Gaussian (multimodal priors: mode
weights come out off), and r_t assumes unit data variance; known pixels match y only to solver
error; D = (x + s^2 score) / a magnifies score errors by 1 / a(t), large near T for VP (an
untrained network's guidance overflows); and each evaluation adds a backward pass through the
network (2.7x the cost of a plain score evaluation for a tiny NCSN++ on 8x8 digits, CPU).
"""
import jax
import jax.numpy as jnp

from configs.errors import ArgumentError
from sde_lib import batch_expand
from sde_lib.tweedie import denoiser_from_score


def gram_scale(observation, x):
  """c with A A^T = c I on the observed entries, measured on one example of x (B, ...): the
  Rayleigh quotient <v, A A^T v> / <v, v> at v = A 1 (A^T from the VJP of the linear observe)."""
  ones = jnp.ones_like(x[:1])
  v, transpose = jax.vjp(observation.observe, ones)
  aat_v = observation.observe(transpose(v)[0])
  return jnp.sum(v * aat_v) / jnp.sum(v * v)


def dps_variance(a, s):
  """r_t^2 = 0 (DPS): (B,), (B,) -> (B,)."""
  del a
  return jnp.zeros_like(s)


def pigdm_variance(a, s):
  """r_t^2 = s^2 / (a^2 + s^2), Var[x0 | x(t)] for a unit-variance Gaussian prior: (B,) -> (B,)."""
  return jnp.square(s) / (jnp.square(a) + jnp.square(s))


def posterior_guided_score(fns, observation, y, noise_std: float, scale: float, variance_fn):
  """score(x, t) + scale grad_x log N(y; A D(x, t), (noise_std^2 + c r_t^2) I): the score of
  p_t(x | y) for observations y (B, ...) of `observation`, r_t^2 = variance_fn(a, s).

  grad_x = J_D^T A^T (y - A D) / v_t with J_D = (I + s^2 J_score) / a (Tweedie), so one VJP of the
  score gives it, and D and the score come from the same forward pass. (c is constant-folded.)
  """
  def score(x, t):
    a, s = fns.sde.marginal_coeffs(t)
    value, score_vjp = jax.vjp(lambda z: fns.score(z, t), x)
    denoised = denoiser_from_score(x, value, a, s)
    observed, observe_t = jax.vjp(observation.observe, denoised)
    var = noise_std**2 + gram_scale(observation, x) * variance_fn(a, s)
    residual = (jnp.asarray(y, x.dtype) - observed) * batch_expand(scale / var, observed)
    g = observe_t(residual)[0]  # A^T (y - A D) scale / v_t
    guide = (g + batch_expand(jnp.square(s), x) * score_vjp(g)[0]) / batch_expand(a, x)
    return value + guide

  return score


VARIANCES = {"dps": dps_variance, "pigdm": pigdm_variance}


def check_posterior_noise(name: str, observation_noise: float) -> None:
  """One-line errors: negative noise; DPS without noise (its weight 1 / sigma_y^2 is infinite)."""
  if observation_noise < 0:
    raise ArgumentError("observation_noise", f"{{arg}}={observation_noise} must be >= 0.")
  if name == "dps" and observation_noise == 0:
    raise ArgumentError("observation_noise", "DPS weighs the likelihood by 1 / sigma_y^2 and "
                        "needs {arg} > 0; use 'pigdm' (or replacement) for noise-free "
                        "observations.")
