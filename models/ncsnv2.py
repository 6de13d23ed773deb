"""NCSNv2 (Song & Ermon 2020) and NCSN v1 (Song & Ermon 2019) RefineNet score networks.

Architecture, parameter shapes and module names follow the released score_sde (JAX) code;
registry names there: 'ncsnv2_64' (NCSNv2, for images below 96 px), 'ncsnv2_128',
'ncsnv2_256' and 'ncsn' (NCSN v1). The final division by sigma of the original
(`scale_by_sigma`) is left to the score wrapper: these networks never divide by sigma.

A backbone of residual-block pairs produces one feature map per stage; RefineBlocks then fuse
them from the coarsest up. Only dilation-1 'down' stages halve the resolution, so NCSNv2
works at 1/2 of the input size (H, W divisible by 2), NCSNv2_128 at 1/4, NCSNv2_256 at 1/8.
"""
import functools
from typing import Any, ClassVar, Optional, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from models.layers import get_act, maybe_remat
from models.normalization import get_normalization
from models.refinenet_layers import (CondRefineBlock, ConditionalResidualBlock, RefineBlock,
                                     ResidualBlock, ncsn_conv3x3)

# Backbone stages, fine to coarse: (channels as a multiple of nf, resample, dilation).
Stage = Tuple[int, Optional[str], int]
STAGES_64: Tuple[Stage, ...] = ((1, None, 1), (2, "down", 1), (2, "down", 2), (2, "down", 4))
STAGES_128: Tuple[Stage, ...] = ((1, None, 1), (2, "down", 1), (2, "down", 1),
                                 (4, "down", 2), (4, "down", 4))
STAGES_256: Tuple[Stage, ...] = ((1, None, 1), (2, "down", 1), (2, "down", 1), (2, "down", 1),
                                 (4, "down", 2), (4, "down", 4))


def _backbone(h, stages: Sequence[Stage], nf: int, block, *y):
  """Two residual blocks per stage; returns every stage's output, fine to coarse."""
  layers = []
  for mult, resample, dilation in stages:
    h = block(mult * nf, resample=resample, dilation=dilation)(h, *y)
    h = block(mult * nf, dilation=dilation)(h, *y)
    layers.append(h)
  return layers


def _refine(layers, mults: Sequence[int], nf: int, block, *y):
  """RefineBlocks from the coarsest layer up; each fuses a layer with the previous output."""
  h = None
  for i, (layer, mult) in enumerate(zip(layers[::-1], mults)):
    xs = [layer] if h is None else [layer, h]
    h = block(layer.shape[1:3], mult * nf, start=i == 0, end=i == len(layers) - 1)(xs, *y)
  return h


class NCSNv2(nn.Module):
  """NCSNv2 for 32 / 64 px images: x (B, H, W, C), labels (B,) (unused) -> (B, H, W, C).

  Unconditional: the noise level enters only through the wrapper's division by sigma.
  """
  nf: int = 128
  normalization: str = "InstanceNorm++"
  nonlinearity: str = "elu"
  interpolation: str = "bilinear"
  centered: bool = False
  dtype: Any = jnp.float32  # activations' dtype (params stay float32)
  remat: bool = False  # recompute each residual block in the backward pass

  stages: ClassVar[Tuple[Stage, ...]] = STAGES_64
  # RefineBlock output channels (multiples of nf), coarsest first.
  refine_mults: ClassVar[Tuple[int, ...]] = (2, 2, 2, 1)

  @nn.compact
  def __call__(self, x, labels, train: bool = False):
    del labels, train
    act = get_act(self.nonlinearity)
    norm = get_normalization(self.normalization, dtype=self.dtype)
    h = x.astype(self.dtype)
    h = ncsn_conv3x3(h if self.centered else 2 * h - 1.0, self.nf)
    block = functools.partial(maybe_remat(ResidualBlock, self.remat), normalization=norm,
                              act=act)
    layers = _backbone(h, self.stages, self.nf, block)
    refine = functools.partial(RefineBlock, act=act, interpolation=self.interpolation)
    h = _refine(layers, self.refine_mults, self.nf, refine)
    return ncsn_conv3x3(act(norm()(h)), x.shape[-1])


class NCSNv2_128(NCSNv2):  # pylint: disable=invalid-name
  """NCSNv2 for 96-128 px images: one more stage, 4 nf channels in the two coarsest."""
  stages: ClassVar[Tuple[Stage, ...]] = STAGES_128
  refine_mults: ClassVar[Tuple[int, ...]] = (4, 2, 2, 1, 1)


class NCSNv2_256(NCSNv2):  # pylint: disable=invalid-name
  """NCSNv2 for 129-256 px images: yet another 2 nf stage."""
  stages: ClassVar[Tuple[Stage, ...]] = STAGES_256
  refine_mults: ClassVar[Tuple[int, ...]] = (4, 2, 2, 2, 1, 1)


class NCSN(nn.Module):
  """NCSN v1 (noise-conditional RefineNet), 32 / 64 px: x (B, H, W, C), labels (B,) -> same as x.

  labels are noise-level indices in [0, num_classes) (given as floats or ints); every
  normaliser is a ConditionalInstanceNorm2dPlus with one parameter row per index.
  """
  num_classes: int
  nf: int = 128
  normalization: str = "InstanceNorm++"
  nonlinearity: str = "elu"
  interpolation: str = "bilinear"
  centered: bool = False
  dtype: Any = jnp.float32  # activations' dtype (params stay float32)
  remat: bool = False  # recompute each residual block in the backward pass

  @nn.compact
  def __call__(self, x, labels, train: bool = False):
    del train
    y = labels.astype(jnp.int32)
    act = get_act(self.nonlinearity)
    norm = get_normalization(self.normalization, self.num_classes)
    h = x.astype(self.dtype)
    h = ncsn_conv3x3(h if self.centered else 2 * h - 1.0, self.nf)
    block = functools.partial(maybe_remat(ConditionalResidualBlock, self.remat),
                              normalization=norm, act=act)
    layers = _backbone(h, STAGES_64, self.nf, block, y)
    refine = functools.partial(CondRefineBlock, normalizer=norm, act=act,
                               interpolation=self.interpolation)
    h = _refine(layers, NCSNv2.refine_mults, self.nf, refine, y)
    return ncsn_conv3x3(act(norm()(h, y)), x.shape[-1])
