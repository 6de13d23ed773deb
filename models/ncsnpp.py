"""NCSN++ / DDPM++ U-Net (Song et al., ICLR 2021), flax.linen, NHWC.

Same architecture, parameter shapes and module names as the released score_sde
`NCSNpp`, with one difference: this network never divides its output by sigma
(`scale_by_sigma` is applied by the score wrapper), so it needs no sigma table.
The field names are the keys of the original configs' `model` section.
"""
import math
from typing import Any, Tuple

import flax.linen as nn
import jax.numpy as jnp

from configs.errors import UserError
from models import layerspp
from models.layers import (GaussianFourierProjection, conv3x3, default_init,
                           get_act, get_timestep_embedding, group_norm,
                           maybe_remat)
from models.label_embedding import add_class_embedding

_CHOICES = {
    'resblock_type': ('ddpm', 'biggan'),
    'progressive': ('none', 'output_skip', 'residual'),
    'progressive_input': ('none', 'input_skip', 'residual'),
    'progressive_combine': ('sum', 'cat'),
    'embedding_type': ('fourier', 'positional'),
}


class NCSNpp(nn.Module):
  """NCSN++ (VE, 'fourier') / DDPM++ (VP, 'positional') score network.

  __call__(x (B, H, W, C), labels (B,), train, class_labels (B,) int or None)
  -> (B, H, W, C). For 'fourier'
  embeddings `labels` are noise scales sigma (the network embeds log sigma);
  for 'positional' they are timesteps such as 999 * t. Defaults are those of
  configs/ve/cifar10_ncsnpp_continuous.py.
  """
  nf: int = 128
  ch_mult: Tuple[int, ...] = (1, 2, 2, 2)
  num_res_blocks: int = 4
  attn_resolutions: Tuple[int, ...] = (16,)
  dropout: float = 0.1
  resamp_with_conv: bool = True
  conditional: bool = True
  fir: bool = True
  fir_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  skip_rescale: bool = True
  resblock_type: str = 'biggan'
  progressive: str = 'none'
  progressive_input: str = 'residual'
  progressive_combine: str = 'sum'
  embedding_type: str = 'fourier'
  fourier_scale: float = 16.
  init_scale: float = 0.
  nonlinearity: str = 'swish'
  centered: bool = False
  label_classes: int = 0  # > 0: class-conditional (labels 0..n-1, n: null)
  dtype: Any = jnp.float32  # activations' dtype (params stay float32)
  remat: bool = False  # recompute each residual block in the backward pass

  def _check_options(self):
    for key, allowed in _CHOICES.items():
      if getattr(self, key) not in allowed:
        raise UserError(f'{key}={getattr(self, key)!r}; expected one of '
                         f'{allowed}.')

  def _time_embedding(self, labels, act):
    """(B,) labels -> (B, 4 nf) embedding, or None if not conditional."""
    if self.embedding_type == 'fourier':
      temb = GaussianFourierProjection(embedding_size=self.nf,
                                       scale=self.fourier_scale)(
                                           jnp.log(labels))
    else:
      temb = get_timestep_embedding(labels, self.nf)
    if not self.conditional:
      return None
    temb = nn.Dense(self.nf * 4, kernel_init=default_init())(temb)
    return nn.Dense(self.nf * 4, kernel_init=default_init())(act(temb))

  def _resblock(self, act, **kwargs):
    if self.resblock_type == 'ddpm':
      return maybe_remat(layerspp.ResnetBlockDDPMpp, self.remat, (3,))(
          act=act, dropout=self.dropout, init_scale=self.init_scale,
          skip_rescale=self.skip_rescale, **kwargs)
    return maybe_remat(layerspp.ResnetBlockBigGANpp, self.remat, (3,))(
        act=act, dropout=self.dropout, fir=self.fir, fir_kernel=self.fir_kernel,
        init_scale=self.init_scale, skip_rescale=self.skip_rescale, **kwargs)

  def _attn(self):
    return layerspp.AttnBlockpp(init_scale=self.init_scale,
                                skip_rescale=self.skip_rescale)

  def _residual(self, x, h):
    return (x + h) / math.sqrt(2.) if self.skip_rescale else x + h

  def _input_pyramid(self, pyramid, h):
    """Downsamples the input pyramid and merges it into h: (new h, pyramid)."""
    resample = dict(fir=self.fir, fir_kernel=self.fir_kernel)
    if self.progressive_input == 'input_skip':
      pyramid = layerspp.Downsample(with_conv=False, **resample)(pyramid)
      h = layerspp.Combine(method=self.progressive_combine)(pyramid, h)
      return h, pyramid
    pyramid = layerspp.Downsample(out_ch=h.shape[-1], with_conv=True,
                                  **resample)(pyramid)
    pyramid = self._residual(pyramid, h)
    return pyramid, pyramid

  def _output_pyramid(self, h, pyramid, out_ch, act):
    """Updates the output pyramid from h: (new h, pyramid); pyramid None first."""
    resample = dict(fir=self.fir, fir_kernel=self.fir_kernel)
    if self.progressive == 'output_skip':
      if pyramid is not None:
        pyramid = layerspp.Upsample(with_conv=False, **resample)(pyramid)
      out = conv3x3(act(group_norm(h)), out_ch, init_scale=self.init_scale)
      return h, out if pyramid is None else pyramid + out
    if pyramid is None:
      return h, conv3x3(act(group_norm(h)), h.shape[-1])
    pyramid = layerspp.Upsample(out_ch=h.shape[-1], with_conv=True,
                                **resample)(pyramid)
    pyramid = self._residual(pyramid, h)
    return pyramid, pyramid

  @nn.compact
  def __call__(self, x, labels, train: bool = False, class_labels=None):
    self._check_options()
    act = get_act(self.nonlinearity)
    temb = add_class_embedding(self._time_embedding(labels, act), class_labels,
                               self.label_classes)
    x = x.astype(self.dtype)  # temb stays float32; each block casts its projection
    if not self.centered:
      x = 2 * x - 1.
    out_ch = x.shape[-1]
    ddpm_blocks = self.resblock_type == 'ddpm'
    resample = dict(with_conv=self.resamp_with_conv, fir=self.fir,
                    fir_kernel=self.fir_kernel)

    # Downsampling path; `hs` keeps every skip connection.
    input_pyramid = x if self.progressive_input != 'none' else None
    hs = [conv3x3(x, self.nf)]
    for i_level, mult in enumerate(self.ch_mult):
      for _ in range(self.num_res_blocks):
        h = self._resblock(act, out_ch=self.nf * mult)(hs[-1], temb, train)
        if h.shape[1] in self.attn_resolutions:
          h = self._attn()(h)
        hs.append(h)
      if i_level != len(self.ch_mult) - 1:
        if ddpm_blocks:
          h = layerspp.Downsample(**resample)(hs[-1])
        else:
          h = self._resblock(act, down=True)(hs[-1], temb, train)
        if input_pyramid is not None:
          h, input_pyramid = self._input_pyramid(input_pyramid, h)
        hs.append(h)

    h = self._resblock(act)(hs[-1], temb, train)
    h = self._attn()(h)
    h = self._resblock(act)(h, temb, train)

    # Upsampling path.
    pyramid = None
    for i_level in reversed(range(len(self.ch_mult))):
      for _ in range(self.num_res_blocks + 1):
        h = self._resblock(act, out_ch=self.nf * self.ch_mult[i_level])(
            jnp.concatenate([h, hs.pop()], axis=-1), temb, train)
      if h.shape[1] in self.attn_resolutions:
        h = self._attn()(h)
      if self.progressive != 'none':
        h, pyramid = self._output_pyramid(h, pyramid, out_ch, act)
      if i_level != 0:
        if ddpm_blocks:
          h = layerspp.Upsample(**resample)(h)
        else:
          h = self._resblock(act, up=True)(h, temb, train)
    assert not hs

    if self.progressive == 'output_skip':
      return pyramid
    return conv3x3(act(group_norm(h)), out_ch, init_scale=self.init_scale)
