"""Datasets by name: 2-D toy sets, a Gaussian mixture with known density, and image sets."""
import dataclasses

import numpy as np

from data_sources import images, toy
from data_sources.pipeline import batch_indices, preprocess
from models.gmm import GaussianMixture

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


def mixture_from_config(data_config) -> GaussianMixture:
  return GaussianMixture(weights=tuple(data_config.gmm_weights), means=tuple(
      map(tuple, data_config.gmm_means)), covs=tuple(tuple(map(tuple, c)) for c in data_config.gmm_covs))


def check_dataset_name(name: str):
  if name not in DATASETS:
    raise ValueError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")


def data_info(data_config) -> DataInfo:
  check_dataset_name(data_config.dataset)
  if data_config.dataset in toy.TOY_DATASETS or data_config.dataset == "gmm":
    return DataInfo(shape=(2,) if data_config.dataset != "gmm" else (
        len(data_config.gmm_means[0]),), is_image=False)
  return DataInfo(shape=(data_config.image_size, data_config.image_size,
                         data_config.num_channels), is_image=True)


def load_split(data_config, split: str):
  """A split as an indexable source: source[indices] -> (B, ...) array.

  Toy sets: float32 points (num_train / num_test of them, fixed seeds). Images: uint8 NHWC.
  """
  name = data_config.dataset
  check_dataset_name(name)
  if split not in _SPLIT_SEEDS:
    raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")
  if name in toy.TOY_DATASETS or name == "gmm":
    n = data_config.num_train if split == "train" else data_config.num_test
    rng = np.random.default_rng([data_config.data_seed, _SPLIT_SEEDS[split]])
    if name == "gmm":
      return mixture_from_config(data_config).sample(rng, n).astype(np.float32)
    return toy.TOY_DATASETS[name](rng, n)
  if name == "digits":
    return images.load_digits(split, data_config.image_size)
  return images.TfdsImages(TFDS_NAMES[name], split, data_config.image_size,
                           data_config.data_dir or None)


__all__ = ["DATASETS", "DataInfo", "batch_indices", "data_info", "load_split", "mixture_from_config",
           "preprocess"]
