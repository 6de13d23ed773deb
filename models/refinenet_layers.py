"""RefineNet building blocks of NCSN (v1, noise-conditional) and NCSNv2 (NHWC).

Blocks create their submodules in the same order, and of the same classes, as the released
score_sde code, so the automatically assigned names (`Conv_0`, `RCUBlock_1`, ...) and hence
parameter trees match its checkpoints. A conditional block takes the noise-level index
y (B,) int as a second argument and passes it to every (conditional) normaliser.
"""
import functools
import math
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from configs.errors import UserError


def _torch_bias_init(fan_in: int):
  """PyTorch's default Conv2d bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def ncsn_conv(x, features: int, kernel_size: int, bias: bool = True, dilation: int = 1):
  """Stride-1 'SAME' conv with PyTorch's default init, as in NCSN/NCSNv2.

  Kernel ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)); bias alike.
  Must be called inside a compact module: the conv is named `Conv_<k>` in that module.
  """
  fan_in = kernel_size * kernel_size * x.shape[-1]
  return nn.Conv(features, (kernel_size, kernel_size), padding="SAME", use_bias=bias,
                 kernel_dilation=dilation,
                 kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                 bias_init=_torch_bias_init(fan_in), dtype=x.dtype)(x)


ncsn_conv1x1 = functools.partial(ncsn_conv, kernel_size=1)
ncsn_conv3x3 = functools.partial(ncsn_conv, kernel_size=3)


def mean_pool2x2(x):
  """Average over non-overlapping 2x2 windows: (B, H, W, C) -> (B, H/2, W/2, C)."""
  b, h, w, c = x.shape
  return jnp.mean(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class ConvMeanPool(nn.Module):
  """Conv (flax default init, as in score_sde) followed by 2x2 mean pooling."""
  output_dim: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    return mean_pool2x2(nn.Conv(self.output_dim, (k, k), padding="SAME", dtype=x.dtype)(x))


def _norm(normalization, h, y):
  """Applies a fresh normaliser, conditional on y when y is given."""
  return normalization()(h) if y is None else normalization()(h, y)


def _residual(x, y, output_dim, normalization, resample, act, dilation):
  """Shared body of (Conditional)ResidualBlock; y is None for the unconditional one."""
  h = act(_norm(normalization, x, y))
  if resample == "down":
    h = ncsn_conv3x3(h, x.shape[-1], dilation=dilation)
    h = act(_norm(normalization, h, y))
    if dilation > 1:  # "down" with dilation keeps the resolution, as in the original.
      h = ncsn_conv3x3(h, output_dim, dilation=dilation)
      return h + ncsn_conv3x3(x, output_dim, dilation=dilation)
    h = ConvMeanPool(output_dim)(h)
    return h + ConvMeanPool(output_dim, kernel_size=1)(x)
  if resample is not None:
    raise UserError(f"Unknown resample {resample!r}.")
  shortcut = x
  if output_dim != x.shape[-1]:
    conv = ncsn_conv3x3 if dilation > 1 else ncsn_conv1x1
    shortcut = conv(x, output_dim, dilation=dilation)
  h = ncsn_conv3x3(h, output_dim, dilation=dilation)
  h = act(_norm(normalization, h, y))
  return ncsn_conv3x3(h, output_dim, dilation=dilation) + shortcut


class ResidualBlock(nn.Module):
  """Pre-activation ResNet block of the NCSNv2 backbone: (B, H, W, Cin) -> (B, H', W', output_dim).

  resample='down' halves H, W when dilation == 1; a dilated 'down' block keeps them.
  """
  output_dim: int
  normalization: Callable[[], nn.Module]
  resample: Optional[str] = None
  act: Callable = nn.elu
  dilation: int = 1

  @nn.compact
  def __call__(self, x):
    return _residual(x, None, self.output_dim, self.normalization, self.resample, self.act,
                     self.dilation)


class ConditionalResidualBlock(nn.Module):
  """ResidualBlock with noise-conditional normalisers (NCSN v1); call as block(x, y)."""
  output_dim: int
  normalization: Callable[[], nn.Module]
  resample: Optional[str] = None
  act: Callable = nn.elu
  dilation: int = 1

  @nn.compact
  def __call__(self, x, y):
    return _residual(x, y, self.output_dim, self.normalization, self.resample, self.act,
                     self.dilation)


def _rcu(x, y, features, n_blocks, n_stages, act, normalization):
  for _ in range(n_blocks):
    residual = x
    for _ in range(n_stages):
      if normalization is not None:
        x = normalization()(x, y)
      x = ncsn_conv3x3(act(x), features, bias=False)
    x = x + residual
  return x


class RCUBlock(nn.Module):
  """Residual conv unit: n_blocks x (x + (act -> conv3x3, no bias) x n_stages)."""
  features: int
  n_blocks: int
  n_stages: int
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x):
    return _rcu(x, None, self.features, self.n_blocks, self.n_stages, self.act, None)


class CondRCUBlock(nn.Module):
  """RCUBlock with a conditional normaliser before each activation (NCSN v1)."""
  features: int
  n_blocks: int
  n_stages: int
  normalizer: Callable[[], nn.Module]
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x, y):
    return _rcu(x, y, self.features, self.n_blocks, self.n_stages, self.act, self.normalizer)


def _crp(x, y, features, n_stages, act, normalization):
  x = act(x)
  path = x
  for _ in range(n_stages):
    if normalization is None:
      path = nn.max_pool(path, (5, 5), strides=(1, 1), padding="SAME")
    else:
      path = normalization()(path, y)
      path = nn.avg_pool(path, (5, 5), strides=(1, 1), padding="SAME", count_include_pad=True)
    path = ncsn_conv3x3(path, features, bias=False)
    x = x + path
  return x


class CRPBlock(nn.Module):
  """Chained residual pooling: act, then n_stages x (5x5 max pool -> conv3x3), each added."""
  features: int
  n_stages: int
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x):
    return _crp(x, None, self.features, self.n_stages, self.act, None)


class CondCRPBlock(nn.Module):
  """NCSN v1 CRP: conditional norm -> 5x5 average pool (zero padding counted) -> conv3x3."""
  features: int
  n_stages: int
  normalizer: Callable[[], nn.Module]
  act: Callable = nn.relu

  @nn.compact
  def __call__(self, x, y):
    return _crp(x, y, self.features, self.n_stages, self.act, self.normalizer)


def resize(x, shape: Sequence[int], interpolation: str):
  """Resizes (B, H, W, C) to (B, *shape, C) with 'bilinear' or 'nearest_neighbor'."""
  methods = {"bilinear": "bilinear", "nearest_neighbor": "nearest"}
  if interpolation not in methods:
    raise UserError(f"Unknown interpolation {interpolation!r}; choose from {sorted(methods)}.")
  return jax.image.resize(x, (x.shape[0], *shape, x.shape[-1]), methods[interpolation])


def _msf(xs, y, shape, features, interpolation, normalization):
  total = 0.0
  for x in xs:
    if normalization is not None:
      x = normalization()(x, y)
    total = total + resize(ncsn_conv3x3(x, features), shape, interpolation)
  return total


class MSFBlock(nn.Module):
  """Multi-resolution fusion: sum of conv3x3 of each input, resized to `shape` (H, W)."""
  shape: Sequence[int]
  features: int
  interpolation: str = "bilinear"

  @nn.compact
  def __call__(self, xs):
    return _msf(xs, None, self.shape, self.features, self.interpolation, None)


class CondMSFBlock(nn.Module):
  """MSFBlock with a conditional normaliser on each input (NCSN v1)."""
  shape: Sequence[int]
  features: int
  normalizer: Callable[[], nn.Module]
  interpolation: str = "bilinear"

  @nn.compact
  def __call__(self, xs, y):
    return _msf(xs, y, self.shape, self.features, self.interpolation, self.normalizer)


class RefineBlock(nn.Module):
  """RefineNet block: RCU per input -> MSF (unless `start`) -> CRP -> output RCU(s).

  xs: list of (B, H_i, W_i, C_i); returns (B, *output_shape, features). `start` takes a
  single input and skips fusion; `end` uses three output RCU blocks instead of one.
  """
  output_shape: Sequence[int]
  features: int
  act: Callable = nn.relu
  interpolation: str = "bilinear"
  start: bool = False
  end: bool = False

  @nn.compact
  def __call__(self, xs):
    hs = [RCUBlock(x.shape[-1], 2, 2, self.act)(x) for x in xs]
    h = hs[0] if self.start else MSFBlock(self.output_shape, self.features,
                                          self.interpolation)(hs)
    h = CRPBlock(self.features, 2, self.act)(h)
    return RCUBlock(self.features, 3 if self.end else 1, 2, self.act)(h)


class CondRefineBlock(nn.Module):
  """Noise-conditional RefineBlock (NCSN v1); call as block(xs, y)."""
  output_shape: Sequence[int]
  features: int
  normalizer: Callable[[], nn.Module]
  act: Callable = nn.relu
  interpolation: str = "bilinear"
  start: bool = False
  end: bool = False

  @nn.compact
  def __call__(self, xs, y):
    norm = self.normalizer
    hs = [CondRCUBlock(x.shape[-1], 2, 2, norm, self.act)(x, y) for x in xs]
    h = hs[0] if self.start else CondMSFBlock(self.output_shape, self.features, norm,
                                              self.interpolation)(hs, y)
    h = CondCRPBlock(self.features, 2, norm, self.act)(h, y)
    return CondRCUBlock(self.features, 3 if self.end else 1, 2, norm, self.act)(h, y)
