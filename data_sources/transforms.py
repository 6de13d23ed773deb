"""Per-example image transforms: central crop and resize (uint8), then flip and dequantise (float).

Each dataset's crop and resize (Dataset.crop_resize in data_sources/registry.py) follow the
released score_sde `datasets.py`. Transforms are grain `Map` / `RandomMap` objects, so they run in
grain's worker processes, and the random one draws from the per-example generator grain derives
from (seed, position in the stream): the same example gets the same flip and noise whatever the
number of workers or hosts.
"""
import dataclasses

import grain
import numpy as np
from PIL import Image

from configs.errors import UserError


def center_crop(image: np.ndarray, side: int | None = None) -> np.ndarray:
  """The central square of `side` pixels (default: the shorter side): (H, W, C) -> (s, s, C)."""
  h, w = image.shape[:2]
  side = min(h, w, side or min(h, w))
  top, left = (h - side) // 2, (w - side) // 2
  return image[top:top + side, left:left + side]


def _pil_resize(filter_):
  def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    out = np.asarray(pil.resize((width, height), filter_))  # antialiased when shrinking
    return out.reshape(height, width, image.shape[-1])
  return resize


def box_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Mean over f x f blocks, rounded (Karras et al.'s repeated 2x2 averages for f = 2^k)."""
  h, w, c = image.shape
  if h % height or w % width or h // height != w // width:
    raise UserError(f"Box resizing needs an integer factor; cannot take {h}x{w} to "
                     f"{height}x{width}. Use images whose side is a multiple of {height}.")
  f = h // height
  blocks = image.reshape(height, f, width, f, c).astype(np.float64)
  return np.clip(np.rint(blocks.mean(axis=(1, 3))), 0, 255).astype(np.uint8)


RESIZE_METHODS = {"bilinear": _pil_resize(Image.BILINEAR), "bicubic": _pil_resize(Image.BICUBIC),
                  "box": box_resize}


def resize(image: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
  """uint8 (H, W, C) -> (height, width, C) with RESIZE_METHODS[method]."""
  if method not in RESIZE_METHODS:
    raise UserError(f"Unknown resize method {method!r}; choose one of {list(RESIZE_METHODS)}.")
  if image.shape[:2] == (height, width):
    return image
  return RESIZE_METHODS[method](image, height, width)


@dataclasses.dataclass(frozen=True)
class CropResize(grain.transforms.Map):
  """{"image": uint8 (H, W, C), ...} -> the same with image (size, size, C).

  Central crop of `crop` pixels (None: the shorter side), then resize; with resize_first, the
  shorter side is resized to `size` first and the centre cropped after (released LSUN 128).
  """

  size: int
  crop: int | None = None
  method: str = "bilinear"
  resize_first: bool = False

  def apply(self, image: np.ndarray) -> np.ndarray:
    if self.resize_first:
      h, w = image.shape[:2]
      scale = self.size / min(h, w)
      image = resize(image, round(h * scale), round(w * scale), self.method)
      return center_crop(image, self.size)
    return resize(center_crop(image, self.crop), self.size, self.size, self.method)

  def map(self, element: dict) -> dict:
    return {**element, "image": self.apply(element["image"])}


def to_unit_interval(pixels: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
  """uint8 -> float32 in [0, 1]: (k + u) / 256 with dequantisation noise u ~ U[0, 1), else k / 255."""
  x = np.asarray(pixels, np.float32)
  return (x + noise) / 256.0 if noise is not None else x / 255.0


@dataclasses.dataclass(frozen=True)
class Augment(grain.transforms.RandomMap):
  """{"image": uint8 (S, S, C), ...} -> image float32 in model space, optionally flipped left-right
  (probability 1/2) and uniformly dequantised; [-1, 1] if centered, else [0, 1]."""

  centered: bool
  uniform_dequantization: bool
  random_flip: bool

  def random_map(self, element: dict, rng: np.random.Generator) -> dict:
    image = element["image"]
    if self.random_flip and rng.uniform() < 0.5:
      image = image[:, ::-1]
    noise = rng.uniform(size=image.shape) if self.uniform_dequantization else None
    x = to_unit_interval(image, noise)
    return {**element, "image": (2.0 * x - 1.0 if self.centered else x).astype(np.float32)}
