"""Masks of the inpainting task: bool arrays of one example's shape, True where observed.

Images (H, W, C): `box` hides a square (the paper's App. I.2 hides the centre), `half` hides the
right half, `random` hides each pixel with probability 1 - fraction, `file` reads a PNG or .npz.
Low-dimensional points (D,): `coords` observes the listed coordinates; `random` and `file` work
there too. An image mask is (H, W, 1): every channel of a pixel is observed or none.
"""
import pathlib

import numpy as np
from PIL import Image

from configs.errors import ArgumentError


def box_mask(shape: tuple, size: int, top: int = -1, left: int = -1) -> np.ndarray:
  """Observed everywhere but a size x size square at (top, left) (-1: centred): (H, W, 1)."""
  h, w = shape[:2]
  top = (h - size) // 2 if top < 0 else top
  left = (w - size) // 2 if left < 0 else left
  if size < 1 or top + size > h or left + size > w:
    raise ArgumentError("box_size", f"{{arg}}={size} at (top={top}, left={left}) does not fit "
                        f"{h}x{w} images; choose 1 <= size and top/left with the box inside.")
  mask = np.ones((h, w, 1), bool)
  mask[top:top + size, left:left + size] = False
  return mask


def half_mask(shape: tuple) -> np.ndarray:
  """The left half observed, the right half hidden: (H, W, 1)."""
  mask = np.ones((*shape[:2], 1), bool)
  mask[:, shape[1] // 2:] = False
  return mask


def random_mask(shape: tuple, fraction: float, seed: int) -> np.ndarray:
  """Each pixel (image: (H, W, 1)) or coordinate ((D,)) observed with probability `fraction`."""
  if not 0.0 <= fraction <= 1.0:
    raise ArgumentError("fraction", f"{{arg}}={fraction} must lie in [0, 1].")
  mask_shape = (*shape[:2], 1) if len(shape) == 3 else tuple(shape)
  return np.random.default_rng(seed).uniform(size=mask_shape) < fraction


def coords_mask(shape: tuple, observed_coords) -> np.ndarray:
  """Points (D,): True at the observed coordinates."""
  coords = list(observed_coords)
  if not coords or any(not 0 <= c < shape[0] for c in coords) or len(set(coords)) != len(coords):
    raise ArgumentError("observed_coords", f"{{arg}}={tuple(coords)} must be distinct coordinates "
                        f"in [0, {shape[0]}) of the {shape[0]}-D data.")
  mask = np.zeros(shape, bool)
  mask[coords] = True
  return mask


def file_mask(path: str, shape: tuple) -> np.ndarray:
  """A mask from a PNG (nonzero = observed; (H, W) or (H, W, C)) or an .npz holding one array
  (its first array, or the one named 'mask'); an (H, W) mask applies to every channel."""
  if not str(path):  # pathlib.Path("") is "."
    raise ArgumentError("path", "A 'file' mask needs {arg}=PNG_OR_NPZ.")
  path = pathlib.Path(path)
  if not path.is_file():
    raise ArgumentError("path", f"{{arg}}={str(path)!r} is not a file; give a PNG or .npz mask.")
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as arrays:
      mask = np.asarray(arrays["mask"] if "mask" in arrays else arrays[arrays.files[0]]) != 0
  else:
    mask = np.asarray(Image.open(path)) != 0
  if len(shape) == 3 and mask.ndim == 2:
    mask = mask[..., None]
  return mask


MASKS = ("box", "half", "random", "file", "coords")
IMAGE_MASKS, POINT_MASKS = ("box", "half", "random", "file"), ("coords", "random", "file")


def make_mask(name: str, shape: tuple, *, box_size: int = 0, box_top: int = -1,
              box_left: int = -1, fraction: float = 0.5, seed: int = 0, path: str = "",
              observed_coords=(0,)) -> np.ndarray:
  """The mask `name` for examples of `shape` ((H, W, C) images or (D,) points), bool."""
  valid = IMAGE_MASKS if len(shape) == 3 else POINT_MASKS
  if name not in valid:
    kind = "images" if len(shape) == 3 else "low-dimensional data"
    raise ArgumentError("name", f"Unknown {{arg}} {name!r} for {kind}; choose one of {list(valid)}.")
  if name == "box":
    return box_mask(shape, box_size or shape[0] // 2, box_top, box_left)
  if name == "half":
    return half_mask(shape)
  if name == "random":
    return random_mask(shape, fraction, seed)
  if name == "coords":
    return coords_mask(shape, observed_coords)
  return file_mask(path, shape)
