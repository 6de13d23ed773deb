"""What classifier guidance and CFG (conditioning.conditions) share: the log-probability of
given labels and the check of a guidance weight."""
import jax.numpy as jnp

from configs.errors import ArgumentError


def label_log_prob(log_probs_fn, labels):
  """log p_t(y | x) of the given labels: log_probs_fn(x, t) -> (B, K) log-probabilities and
  labels (B,) or () int (one label for all) -> a function (x (B, ...), t (B,)) -> (B,)."""

  def log_prob_y(x, t):
    log_probs = log_probs_fn(x, t)
    y = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), log_probs.shape[:1])
    return jnp.take_along_axis(log_probs, y[:, None], axis=-1)[:, 0]

  return log_prob_y


def check_guidance_weight(scale: float) -> None:
  """The CFG weight w = scale must be >= 0."""
  if scale < 0:
    raise ArgumentError("scale", f"Classifier-free guidance weight {{arg}}={scale} must be >= 0 "
                        "(0: the conditional model; larger: stronger guidance).")
