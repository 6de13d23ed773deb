"""Predictor-corrector sampling (Song et al. 2021, Sec. 4.2, Alg. 1-3)."""
import jax
import jax.numpy as jnp

from samplers.correctors import get_corrector
from samplers.noise import per_sample_normal, per_sample_prior
from samplers.predictors import get_predictor


def pc_nfe(sde, predictor: str, corrector: str, n_steps: int) -> int:
  """Score evaluations of pc_sample: N (predictor + n_steps corrector). Denoising is free."""
  return sde.N * (get_predictor(predictor).nfe + n_steps * get_corrector(corrector).nfe)


def pc_sample(sde, score_fn, keys, shape, predictor: str, corrector: str, snr: float,
              n_steps: int, probability_flow: bool = False, denoise: bool = True,
              eps: float = 1e-3):
  """Samples (B, *shape) from p_0 with N = sde.N predictor-corrector steps on linspace(T, eps, N).

  keys (B, key) are per-sample keys (samplers.noise.sample_keys): the prior sample comes from
  step 0 of each, the noise of step i from step i + 1. `shape` is one sample's shape.
  Corrector then predictor at each time, as in the released code. `denoise` returns the last
  step's noise-free mean. Jittable with everything but keys (and the params closed over in
  score_fn) static, e.g. jax.jit(lambda p, k: pc_sample(sde, partial(model.score, p), k, ...)[0]).
  Returns (samples, nfe) with nfe a Python int.
  """
  predict, correct = get_predictor(predictor), get_corrector(corrector)
  n_corrector = n_steps if correct.nfe else 0
  timesteps = jnp.linspace(sde.T, eps, sde.N)
  x = per_sample_prior(sde, keys, 0, shape)

  def body(i, carry):
    x, _ = carry
    t = jnp.full((x.shape[0],), timesteps[i])
    noise = per_sample_normal(keys, i + 1, (1 + n_corrector,) + tuple(shape))
    corrector_noise = jnp.moveaxis(noise[:, 1:], 1, 0)  # (n_corrector, B, *shape)
    x, _ = correct.update(sde, score_fn, x, t, corrector_noise, snr, n_corrector)
    return predict.update(sde, score_fn, x, t, noise[:, 0], probability_flow)

  x, x_mean = jax.lax.fori_loop(0, sde.N, body, (x, x))
  return (x_mean if denoise else x), pc_nfe(sde, predictor, corrector, n_steps)
