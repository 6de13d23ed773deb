"""Image datasets as random-access sources of uint8 arrays (N, H, W, C).

`digits` is scikit-learn's bundled 8x8 handwritten digits (offline). Everything else is read with
`tfds.data_source` (ArrayRecord files, no TensorFlow needed) from `data_dir`, which must already
hold the prepared dataset: nothing is downloaded at run time.
"""
import dataclasses

import numpy as np
from PIL import Image

DIGITS_TEST_FRACTION = 0.2
CROP_SIZES = {"celeb_a": 140}  # TFDS name -> central crop before resizing (released pipeline)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of uint8 images (N, H, W, C) to (N, size, size, C)."""
  if images.shape[1] == size and images.shape[2] == size:
    return images
  out = [np.asarray(Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).resize(
      (size, size), Image.BILINEAR)) for im in images]
  return np.stack(out).reshape(len(images), size, size, images.shape[-1])


def load_digits(split: str, image_size: int = 8) -> np.ndarray:
  """scikit-learn digits as uint8 (N, image_size, image_size, 1); 80/20 train/test split."""
  from sklearn.datasets import load_digits as sklearn_digits  # pylint: disable=g-import-not-at-top
  images = sklearn_digits().images  # (1797, 8, 8) with values 0..16
  images = np.round(images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  order = np.random.default_rng(0).permutation(len(images))
  n_test = int(round(DIGITS_TEST_FRACTION * len(images)))
  if split not in ("train", "test"):
    raise ValueError(f"digits has splits 'train' and 'test', not {split!r}.")
  index = order[n_test:] if split == "train" else order[:n_test]
  return resize_images(images[np.sort(index)], image_size)


def center_crop_resize(image: np.ndarray, size: int, crop: int | None = None) -> np.ndarray:
  """Central square crop (side `crop`, default the shorter side), then bilinear resize:
  (H, W, C) uint8 -> (size, size, C)."""
  h, w = image.shape[:2]
  side = min(h, w, crop or min(h, w))
  top, left = (h - side) // 2, (w - side) // 2
  return resize_images(image[None, top:top + side, left:left + side], size)[0]


@dataclasses.dataclass
class TfdsImages:
  """Random access to a prepared TFDS image dataset: source[indices] -> uint8 (B, S, S, C)."""

  name: str
  split: str
  image_size: int
  data_dir: str | None = None
  image_key: str = "image"

  def __post_init__(self):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self._source = tfds.data_source(self.name, split=self.split, data_dir=self.data_dir,
                                      download=False)
    except Exception as err:  # tfds raises several types for a missing dataset
      raise FileNotFoundError(
          f"TFDS dataset {self.name!r} (split {self.split!r}) is not prepared in data_dir="
          f"{self.data_dir!r}. Prepare it on a machine with network access (tfds build "
          f"{self.name} --file_format=array_record) and copy it there, or pick an offline "
          "dataset such as 'digits'.") from err

  def __len__(self):
    return len(self._source)

  def __getitem__(self, indices) -> np.ndarray:
    records = [self._source[int(i)] for i in np.asarray(indices)]
    crop = CROP_SIZES.get(self.name)
    return np.stack([center_crop_resize(np.asarray(r[self.image_key]), self.image_size, crop)
                     for r in records])
