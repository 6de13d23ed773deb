"""Layers of NCSN++ / DDPM++ (Song et al. 2021), flax.linen, NHWC.

Module and parameter names follow the released score_sde code.
"""
import math
from typing import Any, Callable, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from configs.errors import UserError
from models import up_fir_dn
from models.layers import (NIN, AttnBlock, conv1x1, conv3x3, default_init,
                           group_norm)

Array = Any


def _residual(x, h, skip_rescale: bool):
  return (x + h) / math.sqrt(2.) if skip_rescale else x + h


def _add_temb(h, temb, act):
  """Adds a per-channel bias computed from the (B, D) time embedding."""
  if temb is None:
    return h
  bias = nn.Dense(h.shape[-1], kernel_init=default_init(), dtype=h.dtype)(act(temb))
  return h + bias[:, None, None, :]


class Combine(nn.Module):
  """Merges a skip input x into y: 1x1 conv of x to y's channels, then sum/cat."""
  method: str = 'cat'

  @nn.compact
  def __call__(self, x, y):
    h = conv1x1(x, y.shape[-1])
    if self.method == 'cat':
      return jnp.concatenate([h, y], axis=-1)
    if self.method == 'sum':
      return h + y
    raise UserError(f'Unknown combine method {self.method!r}.')


class AttnBlockpp(AttnBlock):
  """NCSN++ self-attention: the DDPM block with `skip_rescale`/`init_scale`."""


class Upsample(nn.Module):
  """x2 upsampling (nearest or FIR), optionally fused with a 3x3 conv.

  (B, H, W, C) -> (B, 2H, 2W, out_ch or C).
  """
  out_ch: Optional[int] = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x):
    out_ch = self.out_ch or x.shape[-1]
    if not self.fir:
      h = up_fir_dn.naive_upsample_2d(x, factor=2)
      return conv3x3(h, out_ch) if self.with_conv else h
    if not self.with_conv:
      return up_fir_dn.upsample_2d(x, self.fir_kernel, factor=2)
    return up_fir_dn.Conv2d(out_ch, kernel=3, up=True,
                            resample_kernel=self.fir_kernel,
                            kernel_init=default_init())(x)


class Downsample(nn.Module):
  """x2 downsampling (average pool / strided conv, or FIR [+ conv]).

  (B, H, W, C) -> (B, H/2, W/2, out_ch or C).
  """
  out_ch: Optional[int] = None
  with_conv: bool = False
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)

  @nn.compact
  def __call__(self, x):
    out_ch = self.out_ch or x.shape[-1]
    if not self.fir:
      if self.with_conv:
        return conv3x3(x, out_ch, stride=2)
      return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='SAME')
    if not self.with_conv:
      return up_fir_dn.downsample_2d(x, self.fir_kernel, factor=2)
    return up_fir_dn.Conv2d(out_ch, kernel=3, down=True,
                            resample_kernel=self.fir_kernel,
                            kernel_init=default_init())(x)


class ResnetBlockDDPMpp(nn.Module):
  """DDPM residual block with skip rescaling, (B,H,W,C) -> (B,H,W,out_ch)."""
  act: Callable[[Array], Array] = nn.swish
  out_ch: Optional[int] = None
  conv_shortcut: bool = False
  dropout: float = 0.1
  skip_rescale: bool = False
  init_scale: float = 0.

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    out_ch = self.out_ch or x.shape[-1]
    h = conv3x3(self.act(group_norm(x)), out_ch)
    h = _add_temb(h, temb, self.act)
    h = self.act(group_norm(h))
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = conv3x3(h, out_ch, init_scale=self.init_scale)
    if x.shape[-1] != out_ch:
      x = conv3x3(x, out_ch) if self.conv_shortcut else NIN(out_ch)(x)
    return _residual(x, h, self.skip_rescale)


class ResnetBlockBigGANpp(nn.Module):
  """BigGAN-style residual block that can also resample by 2.

  (B, H, W, C) -> (B, H', W', out_ch) with H' = 2H (up), H/2 (down) or H.
  """
  act: Callable[[Array], Array] = nn.swish
  up: bool = False
  down: bool = False
  out_ch: Optional[int] = None
  dropout: float = 0.1
  fir: bool = False
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  skip_rescale: bool = True
  init_scale: float = 0.

  def _resample(self, x):
    if self.up:
      if self.fir:
        return up_fir_dn.upsample_2d(x, self.fir_kernel, factor=2)
      return up_fir_dn.naive_upsample_2d(x, factor=2)
    if self.down:
      if self.fir:
        return up_fir_dn.downsample_2d(x, self.fir_kernel, factor=2)
      return up_fir_dn.naive_downsample_2d(x, factor=2)
    return x

  @nn.compact
  def __call__(self, x, temb=None, train: bool = False):
    out_ch = self.out_ch or x.shape[-1]
    in_ch = x.shape[-1]
    h = self._resample(self.act(group_norm(x)))
    x = self._resample(x)
    h = conv3x3(h, out_ch)
    h = _add_temb(h, temb, self.act)
    h = self.act(group_norm(h))
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = conv3x3(h, out_ch, init_scale=self.init_scale)
    if in_ch != out_ch or self.up or self.down:
      x = conv1x1(x, out_ch)
    return _residual(x, h, self.skip_rescale)
