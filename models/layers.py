"""Shared building blocks of the DDPM / NCSN++ score networks (flax.linen, NHWC).

Module and parameter names (`Conv_0`, `GroupNorm_1`, `NIN_0/W`, ...) follow the
released score_sde code, so its checkpoints map onto these parameter trees.
"""
import functools
import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, UserError
from models import up_fir_dn

Array = Any

_ACTIVATIONS = {
    'elu': nn.elu,
    'relu': nn.relu,
    'lrelu': functools.partial(nn.leaky_relu, negative_slope=0.2),
    'swish': nn.swish,
}


def get_act(nonlinearity: str) -> Callable[[Array], Array]:
  """Activation function by its config name ('swish', 'relu', 'lrelu', 'elu')."""
  try:
    return _ACTIVATIONS[nonlinearity.lower()]
  except KeyError:
    raise UserError(f'Unknown nonlinearity {nonlinearity!r}.') from None


# Computation dtypes by config name (model.dtype); parameters are always float32.
COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def get_compute_dtype(name: str):
  """The jnp dtype of a config's model.dtype name ('float32' | 'bfloat16')."""
  try:
    return COMPUTE_DTYPES[name]
  except KeyError:
    raise ArgumentError("dtype", f"Unknown {{arg}} {name!r}; choose one of "
                        f"{sorted(COMPUTE_DTYPES)}.") from None


@functools.lru_cache(maxsize=None)
def rematted(cls, static_argnums: tuple = ()):
  """`cls` under nn.remat (its activations are recomputed in the backward pass).

  The class keeps cls's name, so auto-named parameters (`ResnetBlockDDPM_3`, ...)
  do not change. static_argnums count `self` as 0 (e.g. (3,) for `train` in
  `__call__(self, x, temb, train)`).
  """
  checkpointed = nn.remat(cls, static_argnums=static_argnums)
  return type(cls.__name__, (checkpointed,), {'__doc__': cls.__doc__})


def maybe_remat(cls, remat: bool, static_argnums: tuple = ()):
  """rematted(cls, static_argnums) if remat, else cls."""
  return rematted(cls, static_argnums) if remat else cls


def default_init(scale: float = 1.):
  """DDPM initialiser: variance scaling, fan_avg, uniform (0 means 1e-10)."""
  scale = 1e-10 if scale == 0 else scale
  return nn.initializers.variance_scaling(scale, 'fan_avg', 'uniform')


def conv3x3(x, out_ch: int, stride: int = 1, bias: bool = True,
            init_scale: float = 1.):
  """3x3 'SAME' conv with DDPM init, (B, H, W, C) -> (B, H/s, W/s, out_ch)."""
  return nn.Conv(out_ch, (3, 3), strides=(stride, stride), padding='SAME',
                 use_bias=bias, kernel_init=default_init(init_scale),
                 dtype=x.dtype)(x)


def conv1x1(x, out_ch: int, bias: bool = True, init_scale: float = 1.):
  """1x1 conv with DDPM init, (B, H, W, C) -> (B, H, W, out_ch)."""
  return nn.Conv(out_ch, (1, 1), use_bias=bias,
                 kernel_init=default_init(init_scale), dtype=x.dtype)(x)


# Number of GroupNorm groups for C channels, by the released network that uses the rule.
NUM_GROUPS = {
    'ncsnpp': lambda c: min(c // 4, 32),  # layerspp (NCSN++, DDPM++)
    # DDPM: the released code's 32 wherever that runs (C a multiple of 32), else gcd(C, 32)
    # groups, so that tiny test networks run too.
    'ddpm': lambda c: math.gcd(c, 32),
}


def group_norm(x, rule: str = 'ncsnpp'):
  """GroupNorm with NUM_GROUPS[rule](C) groups, as in the released code.

  Statistics and normalisation run in float32 (flax's default); the output has x's dtype.
  """
  return nn.GroupNorm(num_groups=NUM_GROUPS[rule](x.shape[-1]), dtype=x.dtype)(x)


def get_timestep_embedding(timesteps, embedding_dim: int,
                           max_positions: int = 10000):
  """Sinusoidal embedding of (B,) timesteps -> (B, embedding_dim): [sin, cos]."""
  assert timesteps.ndim == 1
  half_dim = embedding_dim // 2
  freq = math.log(max_positions) / (half_dim - 1)
  freq = jnp.exp(jnp.arange(half_dim, dtype=jnp.float32) * -freq)
  emb = timesteps.astype(jnp.float32)[:, None] * freq[None, :]
  emb = jnp.concatenate([jnp.sin(emb), jnp.cos(emb)], axis=1)
  if embedding_dim % 2 == 1:
    emb = jnp.pad(emb, [(0, 0), (0, 1)])
  return emb


class GaussianFourierProjection(nn.Module):
  """Random Fourier features [sin(2 pi W x), cos(2 pi W x)]: (B,) -> (B, 2E).

  `W ~ N(0, scale^2)` is a (non-trained) parameter: gradients are stopped.
  """
  embedding_size: int = 256
  scale: float = 1.

  @nn.compact
  def __call__(self, x):
    w = self.param('W', nn.initializers.normal(stddev=self.scale),
                   (self.embedding_size,))
    proj = x[:, None] * jax.lax.stop_gradient(w)[None, :] * (2 * np.pi)
    return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], axis=-1)


class NIN(nn.Module):
  """Per-pixel linear layer ("network in network"): (..., C) -> (..., units)."""
  num_units: int
  init_scale: float = 0.1

  @nn.compact
  def __call__(self, x):
    w = self.param('W', default_init(self.init_scale),
                   (x.shape[-1], self.num_units))
    b = self.param('b', nn.initializers.zeros, (self.num_units,))
    w, b = w.astype(x.dtype), b.astype(x.dtype)  # No-ops in float32.
    return jnp.tensordot(x, w, axes=1) + b.reshape((1,) * (x.ndim - 1) + (-1,))


class AttnBlock(nn.Module):
  """DDPM spatial self-attention over all H*W positions, (B, H, W, C) -> same.

  With `skip_rescale` the residual sum is divided by sqrt(2) (NCSN++).
  """
  skip_rescale: bool = False
  init_scale: float = 0.
  groups: str = 'ncsnpp'  # NUM_GROUPS rule

  @nn.compact
  def __call__(self, x):
    b, height, width, c = x.shape
    h = group_norm(x, self.groups)
    q, k, v = (NIN(c)(h).reshape(b, height * width, c) for _ in range(3))
    logits = jnp.einsum('bic,bjc->bij', q, k) * (c ** -0.5)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(x.dtype)
    h = jnp.einsum('bij,bjc->bic', weights, v)
    h = NIN(c, init_scale=self.init_scale)(h.reshape(b, height, width, c))
    return (x + h) / math.sqrt(2.) if self.skip_rescale else x + h


class Upsample(nn.Module):
  """DDPM nearest-neighbour x2 upsampling (+ 3x3 conv), (B,H,W,C)->(B,2H,2W,C)."""
  with_conv: bool = False

  @nn.compact
  def __call__(self, x):
    h = up_fir_dn.naive_upsample_2d(x, factor=2)
    return conv3x3(h, x.shape[-1]) if self.with_conv else h


class Downsample(nn.Module):
  """DDPM x2 downsampling: strided 3x3 conv or 2x2 average pooling."""
  with_conv: bool = False

  @nn.compact
  def __call__(self, x):
    if self.with_conv:
      return conv3x3(x, x.shape[-1], stride=2)
    return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='SAME')


class ResnetBlockDDPM(nn.Module):
  """DDPM residual block with time-embedding bias, (B,H,W,C)->(B,H,W,out_ch)."""
  act: Callable[[Array], Array] = nn.swish
  out_ch: Optional[int] = None
  conv_shortcut: bool = False
  dropout: float = 0.1
  groups: str = 'ncsnpp'  # NUM_GROUPS rule

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    out_ch = self.out_ch or x.shape[-1]
    h = conv3x3(self.act(group_norm(x, self.groups)), out_ch)
    if temb is not None:
      h = h + nn.Dense(out_ch, kernel_init=default_init(), dtype=h.dtype)(
          self.act(temb))[:, None, None, :]
    h = self.act(group_norm(h, self.groups))
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = conv3x3(h, out_ch, init_scale=0.)
    if x.shape[-1] != out_ch:
      x = conv3x3(x, out_ch) if self.conv_shortcut else NIN(out_ch)(x)
    return x + h
