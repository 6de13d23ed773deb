"""PNG encoding of uint8 images (Pillow), and PNG files written atomically."""
import io
import pathlib

import numpy as np
from PIL import Image

from fileio.atomic import write_bytes_atomic


def png_bytes(image: np.ndarray) -> bytes:
  """uint8 image (H, W) or (H, W, C in {1, 3, 4}) -> PNG bytes."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
      image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
    raise ValueError(f"expected a uint8 image (H, W[, 1|3|4]), got {image.dtype} {image.shape}.")
  buf = io.BytesIO()
  Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(
      buf, format="PNG")
  return buf.getvalue()


def write_png(path, image: np.ndarray) -> pathlib.Path:
  """png_bytes(image) to `path`, atomically."""
  return write_bytes_atomic(path, png_bytes(image))
