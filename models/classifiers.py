"""Noise-conditional classifiers p_t(y | x(t)) for classifier guidance (Song et al. 2021, Sec. 5,
App. I.1), and the wrapper that feeds them the noise level of an SDE.

Each network maps (x (B, ...), noise (B,), train) -> logits (B, num_classes) and embeds `noise`
(log sigma for VE, or t) with random Fourier features. Normalisation is per example (GroupNorm),
so an example's logits never depend on the rest of its batch and grad_x of the summed
log-probabilities is the per-example gradient guidance needs.

CLASSIFIERS: `wrn`, the released Wide-ResNet (score_sde models/wideresnet_noise_conditional.py:
per-image standardisation, 3 groups of 16k/32k/64k channels, the embedding added after each
block's first conv); `conv`, a small conv net for 8x8 digits; `mlp` for low-dimensional data.
"""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, UserError
from models.analytic import EXACT_CLASSIFIERS
from models.layers import GaussianFourierProjection
from sde_lib import SDE

NOISE_INPUTS = ("log_sigma", "time")
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def noise_embedding(noise, width: int, scale: float):
  """Fourier features of the noise input, then two dense layers: (B,) -> (B, width)."""
  temb = GaussianFourierProjection(embedding_size=width // 2, scale=scale)(noise)
  return nn.Dense(width)(nn.swish(nn.Dense(width)(temb)))


def _norm_act(x, relu: bool = True):
  x = nn.GroupNorm(num_groups=min(x.shape[-1] // 4, 32), epsilon=1e-5)(x)
  return jax.nn.relu(x) if relu else x


def _pad_add(block_x, orig_x):
  """Residual sum with average-pooled, zero-padded shortcut where shapes differ."""
  if block_x.shape != orig_x.shape:
    stride = orig_x.shape[-2] // block_x.shape[-2]
    orig_x = nn.avg_pool(orig_x, (stride, stride), (stride, stride))
    orig_x = jnp.pad(orig_x, [(0, 0)] * 3 + [(0, block_x.shape[-1] - orig_x.shape[-1])])
  return block_x + orig_x


class WideResNetBlock(nn.Module):
  channels: int
  stride: int = 1
  activate_before_residual: bool = False

  @nn.compact
  def __call__(self, x, temb):
    orig = x = _norm_act(x) if self.activate_before_residual else x
    h = x if self.activate_before_residual else _norm_act(x)
    h = nn.Conv(self.channels, (3, 3), self.stride, padding="SAME", use_bias=False,
                kernel_init=_conv_init)(h)
    h = h + nn.Dense(self.channels)(nn.swish(temb))[:, None, None, :]
    h = nn.Conv(self.channels, (3, 3), padding="SAME", use_bias=False,
                kernel_init=_conv_init)(_norm_act(h))
    return _pad_add(h, orig)


class WideResNet(nn.Module):
  """Noise-conditional WRN-(6 blocks_per_group + 4)-channel_multiplier; released: 4 and 10."""

  num_classes: int = 10
  blocks_per_group: int = 4
  channel_multiplier: int = 10
  fourier_scale: float = 16.0

  @nn.compact
  def __call__(self, x, noise, train: bool = False):
    del train
    n = np.prod(x.shape[1:])
    axes = tuple(range(1, x.ndim))
    x = (x - jnp.mean(x, axes, keepdims=True)) / jnp.maximum(jnp.std(x, axes, keepdims=True),
                                                              1.0 / np.sqrt(n))
    temb = noise_embedding(noise, 512, self.fourier_scale)
    h = nn.Conv(16, (3, 3), padding="SAME", use_bias=False, kernel_init=_conv_init)(x)
    for group, (width, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
      for i in range(self.blocks_per_group):
        h = WideResNetBlock(width * self.channel_multiplier, stride if i == 0 else 1,
                            activate_before_residual=group == 0 and i == 0)(h, temb)
    h = jnp.mean(_norm_act(h), axis=(1, 2))
    return nn.Dense(self.num_classes)(h)


class ConvClassifier(nn.Module):
  """Small noise-conditional conv net for small images (8x8 digits): two resolutions of
  residual blocks of nf and 2 nf channels, global average pooling."""

  num_classes: int = 10
  nf: int = 32
  fourier_scale: float = 16.0

  @nn.compact
  def __call__(self, x, noise, train: bool = False):
    del train
    temb = noise_embedding(noise, 4 * self.nf, self.fourier_scale)
    h = nn.Conv(self.nf, (3, 3), padding="SAME")(x)
    for width, stride in ((self.nf, 1), (2 * self.nf, 2)):
      skip = nn.Conv(width, (1, 1), stride)(h)
      h = nn.Conv(width, (3, 3), stride, padding="SAME")(nn.swish(_norm_act(h, relu=False)))
      h = h + nn.Dense(width)(nn.swish(temb))[:, None, None, :]
      h = skip + nn.Conv(width, (3, 3), padding="SAME")(nn.swish(_norm_act(h, relu=False)))
    return nn.Dense(self.num_classes)(nn.swish(jnp.mean(h, axis=(1, 2))))


class MLPClassifier(nn.Module):
  """Noise-conditional MLP for low-dimensional data: residual blocks with the embedding added."""

  num_classes: int = 2
  nf: int = 128
  num_layers: int = 3
  fourier_scale: float = 16.0

  @nn.compact
  def __call__(self, x, noise, train: bool = False):
    del train
    temb = noise_embedding(noise, self.nf, self.fourier_scale)
    h = nn.Dense(self.nf)(x.reshape(x.shape[0], -1))
    for _ in range(self.num_layers):
      h = h + nn.Dense(self.nf)(nn.swish(h + temb))
    return nn.Dense(self.num_classes)(nn.swish(h))


CLASSIFIERS = {"wrn": WideResNet, "conv": ConvClassifier, "mlp": MLPClassifier}


def get_classifier_class(name: str):
  if name not in CLASSIFIERS:
    raise ArgumentError("name", f"Unknown classifier {{arg}} {name!r}; choose one of "
                        f"{sorted([*CLASSIFIERS, *EXACT_CLASSIFIERS])}.")
  return CLASSIFIERS[name]


@dataclasses.dataclass(frozen=True)
class NoiseConditionalClassifier:
  """log p_t(y | x) of `network` fed noise_input(t): 'log_sigma' (log of the noise level
  s(t) / a(t); VE) or 'time' (t)."""

  sde: SDE
  network: nn.Module
  noise_input: str = "time"
  has_parameters = True

  def __post_init__(self):
    if self.noise_input not in NOISE_INPUTS:
      raise UserError(f"Unknown classifier noise input {self.noise_input!r}; choose one of "
                       f"{NOISE_INPUTS}.")

  def _noise(self, t):
    if self.noise_input == "time":
      return t
    a, s = self.sde.marginal_coeffs(t)
    return jnp.log(s / a)

  def init(self, rng, example_x):
    t = jnp.full((example_x.shape[0],), 0.5, example_x.dtype)
    return self.network.init({"params": rng}, example_x, self._noise(t))["params"]

  def log_probs(self, params, x, t, *, train=False, rng=None):
    """log p_t(y | x) for every y: (B, ...), (B,) -> (B, num_classes)."""
    del rng
    logits = self.network.apply({"params": params}, x, self._noise(t), train=train)
    return jax.nn.log_softmax(logits, axis=-1)
