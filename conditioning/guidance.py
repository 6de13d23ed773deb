"""What classifier guidance and CFG (conditioning.conditions) share: the log-probability of
given labels and the check of a guidance weight."""
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


def check_guidance_weight(w: float) -> None:
  if w < 0:
    raise UserError(f"Classifier-free guidance weight w={w} must be >= 0 (0: the conditional "
                     "model; larger: stronger guidance); set --config.sampling.guidance.scale.")
