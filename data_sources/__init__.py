"""Datasets by name: 2-D toy sets, a Gaussian mixture with known density, and image sets.

Functions take plain arguments; workflows/build.py reads them from a config's `data` section.
"""
import dataclasses

import numpy as np

from data_sources import images, toy
from data_sources.mixture import GaussianMixture
from data_sources.pipeline import batch_indices, preprocess

TFDS_NAMES = {"cifar10": "cifar10", "svhn": "svhn_cropped", "celeba": "celeb_a",
              "lsun_bedroom": "lsun/bedroom", "lsun_church": "lsun/church_outdoor",
              "ffhq": "ffhq", "celebahq": "celeb_a_hq", "mnist": "mnist"}
DATASETS = tuple(sorted([*toy.TOY_DATASETS, "gmm", "digits", *TFDS_NAMES]))
_SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What the model and likelihood need to know of a dataset."""

  shape: tuple          # one example's shape
  is_image: bool        # uint8 images (dequantised, scaled to [0,1] or [-1,1])


def check_dataset_name(name: str):
  if name not in DATASETS:
    raise ValueError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")


def is_low_dimensional(name: str) -> bool:
  """Toy sets and the mixture: float points, not images."""
  return name in toy.TOY_DATASETS or name == "gmm"


def data_info(name: str, *, image_size: int = 0, num_channels: int = 0,
              mixture: GaussianMixture | None = None) -> DataInfo:
  """Shape and kind of dataset `name` (images: image_size x image_size x num_channels)."""
  check_dataset_name(name)
  if name == "gmm":
    return DataInfo(shape=(mixture.dim,), is_image=False)
  if is_low_dimensional(name):
    return DataInfo(shape=(2,), is_image=False)
  return DataInfo(shape=(image_size, image_size, num_channels), is_image=True)


def load_split(name: str, split: str, *, image_size: int = 0, data_dir: str | None = None,
               num_examples: int = 0, data_seed: int = 0, mixture: GaussianMixture | None = None):
  """A split as an indexable source: source[indices] -> (B, ...) array.

  Toy sets and the mixture: num_examples float32 points drawn with a generator keyed by
  (data_seed, split). Images: uint8 NHWC resized to image_size, from data_dir for TFDS sets.
  """
  check_dataset_name(name)
  if split not in _SPLIT_SEEDS:
    raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")
  if is_low_dimensional(name):
    rng = np.random.default_rng([data_seed, _SPLIT_SEEDS[split]])
    if name == "gmm":
      return mixture.sample(rng, num_examples).astype(np.float32)
    return toy.TOY_DATASETS[name](rng, num_examples)
  if name == "digits":
    return images.load_digits(split, image_size)
  return images.TfdsImages(TFDS_NAMES[name], split, image_size, data_dir or None)


__all__ = ["DATASETS", "DataInfo", "GaussianMixture", "batch_indices", "check_dataset_name",
           "data_info", "is_low_dimensional", "load_split", "preprocess"]
