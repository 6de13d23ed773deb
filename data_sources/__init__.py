"""Datasets by name: 2-D toy sets, a Gaussian mixture with known density, and image sets.

Functions take plain arguments; workflows/build.py reads them from a config's `data` section.
Image sets are per-example sources (images.py) and transforms (transforms.py) that the grain
input pipeline (loader.py) combines; generated points are batched statelessly (pipeline.py).
"""
import dataclasses

import numpy as np

from configs.errors import UserError
from data_sources import images, toy, transforms
from data_sources.loader import GrainBatches, StatelessBatches
from data_sources.mixture import GaussianMixture
from data_sources.pipeline import batch_indices, preprocess

TFDS_NAMES = {"cifar10": "cifar10", "svhn": "svhn_cropped", "celeba": "celeb_a",
              "lsun_bedroom": "lsun/bedroom", "lsun_church": "lsun/church_outdoor",
              "ffhq": "ffhq", "celebahq": "celeb_a_hq", "mnist": "mnist"}
DATASETS = tuple(sorted([*toy.TOY_DATASETS, "gmm", "digits", "image_folder", *TFDS_NAMES]))
_SPLIT_SEEDS = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What the model and likelihood need to know of a dataset."""

  shape: tuple          # one example's shape
  is_image: bool        # uint8 images (dequantised, scaled to [0,1] or [-1,1])


def check_dataset_name(name: str):
  if name not in DATASETS:
    raise UserError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")


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


def _check_split(split: str):
  if split not in _SPLIT_SEEDS:
    raise UserError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def image_source(name: str, split: str, *, image_size: int, num_channels: int = 3,
                 data_dir: str | None = None, image_folder: str = ""):
  """Examples {"image": uint8 (H, W, C), "label": int32} of an image set, as stored.

  Files that --mode=prepare wrote for (name, image_size) to data_dir come first; else digits
  from scikit-learn, `image_folder` decoded file by file, or the TFDS dataset in data_dir.
  """
  check_dataset_name(name)
  _check_split(split)
  if is_low_dimensional(name):
    raise UserError(f"{name!r} is not an image dataset.")
  if name == "digits":
    return images.ArraySource(*images.digits_arrays(split))
  prepared = images.prepared_path(data_dir, name, image_size)
  if (prepared / "dataset_info.json").is_file():
    return images.open_prepared(prepared, split)
  if name == "image_folder":
    if not image_folder:
      raise UserError("data.dataset='image_folder' reads data.image_folder; set "
                       "--config.data.image_folder=DIR (a tree of PNG/JPEG files).")
    return images.ImageFolderSource(image_folder, split, num_channels)
  return images.open_tfds(TFDS_NAMES[name], split, data_dir or None)


def load_split(name: str, split: str, *, image_size: int = 0, num_channels: int = 3,
               data_dir: str | None = None, image_folder: str = "", num_examples: int = 0,
               data_seed: int = 0, mixture: GaussianMixture | None = None):
  """A split as an indexable source: source[indices] -> (B, ...) array.

  Toy sets and the mixture: num_examples float32 points drawn with a generator keyed by
  (data_seed, split). Images: uint8 NHWC, cropped and resized to image_size as released.
  """
  check_dataset_name(name)
  _check_split(split)
  if is_low_dimensional(name):
    rng = np.random.default_rng([data_seed, _SPLIT_SEEDS[split]])
    if name == "gmm":
      return mixture.sample(rng, num_examples).astype(np.float32)
    return toy.TOY_DATASETS[name](rng, num_examples)
  if name == "digits":
    return images.load_digits(split, image_size)
  source = image_source(name, split, image_size=image_size, num_channels=num_channels,
                        data_dir=data_dir, image_folder=image_folder)
  return images.ImageArray(source, transforms.crop_resize_for(name, image_size))


def load_labels(name: str, split: str, *, num_examples: int = 0, data_seed: int = 0,
                mixture: GaussianMixture | None = None, **image_kwargs) -> np.ndarray:
  """Class labels (N,) int32 of the examples load_split gives (same order): the component of
  each mixture point, digits' digit, an image set's label feature (image folders: subfolders)."""
  check_dataset_name(name)
  _check_split(split)
  if name == "gmm":
    rng = np.random.default_rng([data_seed, _SPLIT_SEEDS[split]])
    return mixture.sample_labelled(rng, num_examples)[1]
  if is_low_dimensional(name):
    raise UserError(f"Dataset {name!r} has no class labels; use dataset 'gmm' (label: the "
                     "component), 'digits' or a labelled image set.")
  if name == "digits":
    return images.digits_arrays(split)[1]
  source = image_source(name, split, **image_kwargs)
  labels = np.array([source[i]["label"] for i in range(len(source))], np.int32)
  if len(labels) and labels.min() < 0:
    raise UserError(f"Dataset {name!r} has no 'label' feature; class-conditional models and "
                     "classifiers need a labelled dataset.")
  return labels


__all__ = ["DATASETS", "DataInfo", "GaussianMixture", "GrainBatches", "StatelessBatches",
           "TFDS_NAMES", "batch_indices", "check_dataset_name", "data_info", "image_source",
           "is_low_dimensional", "load_labels", "load_split", "preprocess", "transforms"]
