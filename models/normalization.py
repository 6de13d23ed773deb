"""Normalisation layers of the NCSN / NCSNv2 score networks (NHWC, statistics over H, W).

Parameter names and shapes follow the released score_sde code so that its checkpoints map
one to one: per-channel parameters are stored as (1, 1, 1, C); the conditional layer keeps
one row of (gamma, alpha, beta) per noise level in an `Embed_0/embedding` table.
Statistics are computed in float32 whatever the activations' dtype; outputs keep x's dtype.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from configs.errors import UserError

EPS = 1e-5


def _near_one(key, shape, dtype=jnp.float32):
  """N(1, 0.02^2) initialiser for multiplicative parameters."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _channel_param(module, name, init, x):
  return module.param(name, init, (1, 1, 1, x.shape[-1])).astype(x.dtype)


def instance_normalize(x):
  """Zero-mean, unit-variance per example and channel: (B, H, W, C) -> same."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
  h = (xf - mean) / jnp.sqrt(jnp.var(xf, axis=(1, 2), keepdims=True) + EPS)
  return h.astype(x.dtype)


def standardized_means(x):
  """Channel means of x (B, H, W, C), standardised across channels: (B, 1, 1, C).

  This is the term InstanceNorm++ adds back so that instance normalisation does not
  erase the relative brightness of the channels.
  """
  means = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True)
  m = jnp.mean(means, axis=-1, keepdims=True)
  v = jnp.var(means, axis=-1, keepdims=True)
  return ((means - m) / jnp.sqrt(v + EPS)).astype(x.dtype)


class InstanceNorm2d(nn.Module):
  """Instance normalisation with a per-channel scale and bias."""

  @nn.compact
  def __call__(self, x):
    h = instance_normalize(x) * _channel_param(self, "scale", nn.initializers.ones, x)
    return h + _channel_param(self, "bias", nn.initializers.zeros, x)


class VarianceNorm2d(nn.Module):
  """Divides by the per-channel standard deviation (no centring), then scales."""

  @nn.compact
  def __call__(self, x):
    std = jnp.sqrt(jnp.var(x.astype(jnp.float32), axis=(1, 2), keepdims=True) + EPS)
    return (x / std.astype(x.dtype)) * _channel_param(self, "scale", _near_one, x)


class InstanceNorm2dPlus(nn.Module):
  """InstanceNorm++ (Song & Ermon 2019): gamma * (IN(x) + alpha * mean_plus) + beta."""

  @nn.compact
  def __call__(self, x):
    h = instance_normalize(x)
    h = h + standardized_means(x) * _channel_param(self, "alpha", _near_one, x)
    h = h * _channel_param(self, "gamma", _near_one, x)
    return h + _channel_param(self, "beta", nn.initializers.zeros, x)


def _conditional_init(key, shape, dtype=jnp.float32):
  """Embedding rows (gamma, alpha, beta): the first two ~ N(1, 0.02^2), beta zero."""
  c = shape[-1] // 3
  return jnp.concatenate([_near_one(key, (shape[0], 2 * c), dtype),
                          jnp.zeros((shape[0], c), dtype)], axis=-1)


class ConditionalInstanceNorm2dPlus(nn.Module):
  """InstanceNorm++ whose gamma, alpha, beta are looked up by the noise-level index y (B,)."""

  num_classes: int

  @nn.compact
  def __call__(self, x, y):
    table = nn.Embed(self.num_classes, 3 * x.shape[-1], embedding_init=_conditional_init)
    rows = table(y).astype(x.dtype)
    gamma, alpha, beta = jnp.split(rows[:, None, None, :], 3, axis=-1)
    h = instance_normalize(x) + standardized_means(x) * alpha
    return gamma * h + beta


_NORMS = {
    "InstanceNorm": InstanceNorm2d,
    "InstanceNorm++": InstanceNorm2dPlus,
    "VarianceNorm": VarianceNorm2d,
    "GroupNorm": nn.GroupNorm,
}


def get_normalization(name: str, num_classes: int = 0, dtype=jnp.float32):
  """Factory `() -> module` for a config's `model.normalization`.

  With num_classes > 0 the noise-conditional variant (NCSN v1) is returned; only
  'InstanceNorm++' has one, as in the original code. `dtype` is GroupNorm's output dtype
  (the other layers keep their input's).
  """
  if num_classes:
    if name != "InstanceNorm++":
      raise NotImplementedError(f"No conditional version of {name!r}.")
    return functools.partial(ConditionalInstanceNorm2dPlus, num_classes=num_classes)
  if name not in _NORMS:
    raise UserError(f"Unknown normalization {name!r}; choose from {sorted(_NORMS)}.")
  if name == "GroupNorm":
    return functools.partial(nn.GroupNorm, dtype=dtype)
  return _NORMS[name]
