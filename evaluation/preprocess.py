"""Image conversions shared by the feature networks: explicit input ranges and pytorch-fid's resize.

Nothing here guesses the range of its input: the caller names it (`INPUT_RANGES`), and a dtype
that contradicts the name is an error.
"""
from typing import Callable

import jax.numpy as jnp
import numpy as np

INPUT_RANGES: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "uint8": lambda x: x.astype(jnp.float32) / 255.0,  # integers 0..255
    "unit": lambda x: x.astype(jnp.float32),  # floats in [0, 1]
    "symmetric": lambda x: (x.astype(jnp.float32) + 1.0) / 2.0,  # floats in [-1, 1]
}


def check_input_range(input_range: str, dtype=None) -> None:
  """Raises unless `input_range` is a known name and `dtype`, if given, fits it (uint8 <->
  'uint8')."""
  if input_range not in INPUT_RANGES:
    raise ValueError(f"input_range={input_range!r}; expected one of {sorted(INPUT_RANGES)}.")
  if dtype is not None and (np.dtype(dtype) == np.uint8) != (input_range == "uint8"):
    raise ValueError(f"input_range={input_range!r} does not fit images of dtype {np.dtype(dtype)}: "
                     "use 'uint8' exactly for uint8 images, 'unit' or 'symmetric' for floats.")


def to_unit_interval(images: jnp.ndarray, input_range: str) -> jnp.ndarray:
  """Images in `input_range` -> float32 in [0, 1], clipped (as writing an image file would)."""
  check_input_range(input_range, images.dtype)
  return jnp.clip(INPUT_RANGES[input_range](images), 0.0, 1.0)


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """(out_size, in_size) float32 weights of torch's bilinear resize along one axis.

  The rule of `F.interpolate(mode='bilinear', align_corners=False)` without antialiasing (what
  pytorch-fid calls), for up- and downsampling alike: output pixel i samples the input at
  src = (i + 0.5) * in/out - 0.5, clamped below at 0, between floor(src) and the next pixel
  (clamped at the last one). Rounded as torch's CPU kernel rounds, so the weights are torch's
  bit for bit: the scale in/out in float32, src from one fused multiply-add (the float64
  product of float32 numbers with i + 0.5 is exact), fractions in float32.
  """
  scale = np.float32(in_size) / np.float32(out_size)
  src = np.maximum(np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5, 0).astype(np.float32)
  lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  frac = src - lower.astype(np.float32)
  weights = np.zeros((out_size, in_size), np.float32)
  np.add.at(weights, (np.arange(out_size), lower), np.float32(1) - frac)
  np.add.at(weights, (np.arange(out_size), upper), frac)
  return weights


def resize_bilinear(images: jnp.ndarray, size: int) -> jnp.ndarray:
  """(B, H, W, C) float -> (B, size, size, C) with torch's bilinear rule (`bilinear_matrix`)."""
  _, h, w, _ = images.shape
  if (h, w) == (size, size):
    return images  # torch's rule is the identity here
  rows = jnp.einsum("oh,bhwc->bowc", bilinear_matrix(h, size), images)
  return jnp.einsum("pw,bowc->bopc", bilinear_matrix(w, size), rows)
