"""FIR up/down-sampling (StyleGAN2 `upfirdn2d`) for NHWC images, in pure JAX.

All FIR kernels here are separable: a 1-D tap sequence `k` stands for the 2-D
kernel `outer(k, k) / sum(k)**2`. Filtering is implemented with shifted slices
of a padded array (polyphase for upsampling, strided slices for downsampling)
rather than depthwise convolutions: XLA fuses the slices into one loop, which
on XLA:CPU is 10-100x faster than a depthwise `conv_general_dilated` (forward
and backward) and makes FIR resampling a negligible part of a training step.

Semantics follow `upfirdn2d` exactly: zero-insertion upsampling, zero padding,
true convolution with the (flipped) kernel, then decimation. Filtering keeps the
input's dtype (the taps are Python floats), so bfloat16 activations stay bfloat16.
"""
from typing import Any, Callable, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_DIMS = ('NHWC', 'HWIO', 'NHWC')


def setup_kernel(k: Sequence[float]) -> np.ndarray:
  """Normalises 1-D FIR taps to sum to one (so the 2-D kernel does too)."""
  k = np.asarray(k, dtype=np.float64)
  if k.ndim != 1:
    raise ValueError(f'FIR kernel must be 1-D (separable), got shape {k.shape}.')
  return k / np.sum(k)


def _shifted(x, start: int, size: int, axis: int, stride: int = 1):
  return jax.lax.slice_in_dim(x, start, start + (size - 1) * stride + 1,
                              stride=stride, axis=axis)


def _pad_axis(x, lo: int, hi: int, axis: int):
  pads = [(0, 0)] * x.ndim
  pads[axis] = (lo, hi)
  return jnp.pad(x, pads)


def upfirdn1d(x, taps, axis: int, up: int = 1, down: int = 1,
              pad: Tuple[int, int] = (0, 0)):
  """Upsample by zero insertion, pad, convolve with `taps`, decimate; one axis.

  Output length is `(n * up + pad[0] + pad[1] - len(taps)) // down + 1`.
  Only one of `up`, `down` may exceed 1.
  """
  taps = np.asarray(taps, dtype=np.float64)
  n, num_taps = x.shape[axis], len(taps)
  pad0, pad1 = pad
  assert min(pad0, pad1) >= 0 and min(up, down) == 1
  length = (n * up + pad0 + pad1 - num_taps) // down + 1
  flipped = taps[::-1]
  if up == 1:
    xp = _pad_axis(x, pad0, pad1, axis)
    return sum(float(w) * _shifted(xp, j, length, axis, down)
               for j, w in enumerate(flipped))
  # Polyphase: output t = up * i + r reads x[i + (r + j - pad0) // up] for the
  # taps j with (r + j - pad0) % up == 0.
  assert length % up == 0, 'polyphase upsampling needs length % up == 0'
  count = length // up
  terms = [[(float(flipped[j]), (r + j - pad0) // up)
            for j in range(num_taps) if (r + j - pad0) % up == 0]
           for r in range(up)]
  offsets = [o for phase in terms for _, o in phase]
  lo = max(0, -min(offsets))
  hi = max(0, count - n + max(offsets))
  xp = _pad_axis(x, lo, hi, axis)
  phases = [sum(w * _shifted(xp, lo + o, count, axis) for w, o in phase)
            if phase else jnp.zeros_like(_shifted(xp, 0, count, axis))
            for phase in terms]
  y = jnp.stack(phases, axis=axis + 1)
  shape = list(x.shape)
  shape[axis] = length
  return y.reshape(shape)


def upfirdn2d(x, taps, up: int = 1, down: int = 1,
              pad: Tuple[int, int] = (0, 0)):
  """Separable `upfirdn2d` on the H and W axes of an NHWC tensor."""
  x = upfirdn1d(x, taps, axis=1, up=up, down=down, pad=pad)
  return upfirdn1d(x, taps, axis=2, up=up, down=down, pad=pad)


def upsample_2d(x, k: Sequence[float] = (1, 3, 3, 1), factor: int = 2,
                gain: float = 1.):
  """FIR upsampling, (B, H, W, C) -> (B, factor*H, factor*W, C)."""
  taps = setup_kernel(k) * factor * np.sqrt(gain)
  p = len(taps) - factor
  return upfirdn2d(x, taps, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x, k: Sequence[float] = (1, 3, 3, 1), factor: int = 2,
                  gain: float = 1.):
  """FIR downsampling, (B, H, W, C) -> (B, H//factor, W//factor, C)."""
  taps = setup_kernel(k) * np.sqrt(gain)
  p = len(taps) - factor
  return upfirdn2d(x, taps, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv_2d(x, w, k: Sequence[float] = (1, 3, 3, 1), factor: int = 2,
                     gain: float = 1.):
  """Fused upsample + conv: transposed conv with `w` (HWIO), then FIR filter.

  (B, H, W, Cin) -> (B, factor*H, factor*W, Cout). The transposed conv is an
  lhs-dilated conv with full padding (same as StyleGAN2's conv2d_transpose).
  """
  ksize = w.shape[0]
  x = jax.lax.conv_general_dilated(
      x, w, window_strides=(1, 1), padding=[(ksize - 1, ksize - 1)] * 2,
      lhs_dilation=(factor, factor), dimension_numbers=_DIMS)
  taps = setup_kernel(k) * factor * np.sqrt(gain)
  p = (len(taps) - factor) - (ksize - 1)
  return upfirdn2d(x, taps, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample_2d(x, w, k: Sequence[float] = (1, 3, 3, 1),
                       factor: int = 2, gain: float = 1.):
  """Fused FIR filter + strided conv with `w` (HWIO).

  (B, H, W, Cin) -> (B, H//factor, W//factor, Cout).
  """
  ksize = w.shape[0]
  taps = setup_kernel(k) * np.sqrt(gain)
  p = (len(taps) - factor) + (ksize - 1)
  x = upfirdn2d(x, taps, pad=((p + 1) // 2, p // 2))
  return jax.lax.conv_general_dilated(
      x, w, window_strides=(factor, factor), padding='VALID',
      dimension_numbers=_DIMS)


def naive_upsample_2d(x, factor: int = 2):
  """Nearest-neighbour upsampling, (B, H, W, C) -> (B, fH, fW, C)."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, factor, w, factor, c))
  return x.reshape(b, h * factor, w * factor, c)


def naive_downsample_2d(x, factor: int = 2):
  """Average pooling, (B, H, W, C) -> (B, H//f, W//f, C)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // factor, factor, w // factor, factor, c)
  return jnp.mean(x, axis=(2, 4))


class Conv2d(nn.Module):
  """Conv layer with optional fused FIR up/down-sampling (StyleGAN2).

  Params: `weight` (kernel, kernel, Cin, fmaps) and `bias` (fmaps,).
  """
  fmaps: int
  kernel: int
  up: bool = False
  down: bool = False
  resample_kernel: Tuple[int, ...] = (1, 3, 3, 1)
  use_bias: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.variance_scaling(
      1., 'fan_avg', 'uniform')

  @nn.compact
  def __call__(self, x):
    assert not (self.up and self.down) and self.kernel % 2 == 1
    w = self.param('weight', self.kernel_init,
                   (self.kernel, self.kernel, x.shape[-1], self.fmaps))
    w = w.astype(x.dtype)  # Computation in x's dtype; a no-op in float32.
    if self.up:
      x = upsample_conv_2d(x, w, k=self.resample_kernel)
    elif self.down:
      x = conv_downsample_2d(x, w, k=self.resample_kernel)
    else:
      x = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                       dimension_numbers=_DIMS)
    if self.use_bias:
      b = self.param('bias', nn.initializers.zeros, (self.fmaps,))
      x = x + b.astype(x.dtype).reshape(1, 1, 1, -1)
    return x
