"""Class-conditional score transforms: classifier guidance (Song et al. 2021, Sec. 5 and
App. I.1; Dhariwal & Nichol 2021) and classifier-free guidance (Ho & Salimans 2022).

Each takes and returns score functions score(x (B, ...), t (B,)) -> (B, ...), the type every
solver queries through samplers.ModelFns (fns.with_score(guided)), so every predictor, corrector
and solver samples every condition.
"""
import jax
import jax.numpy as jnp

from configs.errors import UserError


def label_log_prob(log_probs_fn, labels):
  """log p_t(y | x) of the given labels: log_probs_fn(x, t) -> (B, K) log-probabilities and
  labels (B,) or () int (one label for all) -> a function (x (B, ...), t (B,)) -> (B,)."""

  def log_prob_y(x, t):
    log_probs = log_probs_fn(x, t)
    y = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), log_probs.shape[:1])
    return jnp.take_along_axis(log_probs, y[:, None], axis=-1)[:, 0]

  return log_prob_y


def classifier_guided_score(score, log_prob_y_fn, scale: float):
  """score(x, t) + scale * grad_x log p_t(y | x) (scale 1: the paper's conditional score).

  log_prob_y_fn(x (B, ...), t (B,)) -> (B,): each entry depends on its own example only, so the
  gradient of the sum is the per-example gradient.
  """
  grad = jax.grad(lambda x, t: jnp.sum(log_prob_y_fn(x, t)))
  return lambda x, t: score(x, t) + scale * grad(x, t)


def check_guidance_weight(w: float) -> None:
  if w < 0:
    raise UserError(f"Classifier-free guidance weight w={w} must be >= 0 (0: the conditional "
                     "model; larger: stronger guidance); set --config.sampling.guidance_scale.")


def cfg_score(cond_score, uncond_score, w: float):
  """(1 + w) s(x, t | y) - w s(x, t): Ho & Salimans 2022, Eq. 6 written for scores
  (eps = -sigma s, so the same mix of eps is the same mix of scores). w = 0: the conditional."""
  check_guidance_weight(w)
  return lambda x, t: (1.0 + w) * cond_score(x, t) - w * uncond_score(x, t)
