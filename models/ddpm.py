"""DDPM U-Net (Ho et al. 2020) as released in score_sde, flax.linen, NHWC.

Differences from Ho et al.'s paper description, kept from the released code:
one attention block per upsampling level (after its residual blocks), and a
GroupNorm everywhere, with 32 groups as released wherever the channels allow it
(layers.NUM_GROUPS['ddpm']: gcd(C, 32), so that tiny test networks run too).
The output is not divided by sigma.
"""
from typing import Any, Tuple

import flax.linen as nn
import jax.numpy as jnp

from models.layers import (AttnBlock, Downsample, ResnetBlockDDPM, Upsample,
                           conv3x3, default_init, get_act,
                           get_timestep_embedding, group_norm, maybe_remat)
from models.label_embedding import add_class_embedding


class DDPM(nn.Module):
  """DDPM network: __call__(x (B,H,W,C), labels (B,), train) -> (B,H,W,C).

  `labels` are timesteps (e.g. discrete indices or 999 * t), embedded with
  sinusoidal features. Defaults are those of configs/vp/ddpm/cifar10.py,
  except `centered` (the data setting of the default configs).
  """
  nf: int = 128
  ch_mult: Tuple[int, ...] = (1, 2, 2, 2)
  num_res_blocks: int = 2
  attn_resolutions: Tuple[int, ...] = (16,)
  dropout: float = 0.1
  resamp_with_conv: bool = True
  conditional: bool = True
  centered: bool = False
  nonlinearity: str = 'swish'
  label_classes: int = 0  # > 0: class-conditional (labels 0..n-1, n: null)
  dtype: Any = jnp.float32  # activations' dtype (params stay float32)
  remat: bool = False  # recompute each residual block in the backward pass

  @nn.compact
  def __call__(self, x, labels, train: bool = False, class_labels=None):
    act = get_act(self.nonlinearity)
    resblock = maybe_remat(ResnetBlockDDPM, self.remat, (3,))
    block = lambda **kw: resblock(act=act, dropout=self.dropout, groups='ddpm',
                                  **kw)
    temb = None
    if self.conditional:
      temb = get_timestep_embedding(labels, self.nf)
      temb = nn.Dense(self.nf * 4, kernel_init=default_init())(temb)
      temb = nn.Dense(self.nf * 4, kernel_init=default_init())(act(temb))
    temb = add_class_embedding(temb, class_labels, self.label_classes)
    h = x.astype(self.dtype)  # temb stays float32; each block casts its projection
    h = h if self.centered else 2 * h - 1.

    hs = [conv3x3(h, self.nf)]
    for i_level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = block(out_ch=self.nf * mult)(hs[-1], temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = AttnBlock(groups='ddpm')(h)
        hs.append(h)
      if i_level != len(self.ch_mult) - 1:
        hs.append(Downsample(with_conv=self.resamp_with_conv)(hs[-1]))

    h = block()(hs[-1], temb, train)
    h = AttnBlock(groups='ddpm')(h)
    h = block()(h, temb, train)

    for i_level in reversed(range(len(self.ch_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = block(out_ch=self.nf * self.ch_mult[i_level])(
            jnp.concatenate([h, hs.pop()], axis=-1), temb, train)
      if h.shape[1] in self.attn_resolutions:
        h = AttnBlock(groups='ddpm')(h)
      if i_level != 0:
        h = Upsample(with_conv=self.resamp_with_conv)(h)
    assert not hs

    h = act(group_norm(h, 'ddpm'))
    return conv3x3(h, x.shape[-1], init_scale=0.)
