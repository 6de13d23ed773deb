"""Datasets by name (registry.DATASETS): 2-D toy sets, a Gaussian mixture with known density, and
image sets.

Functions take a dataset name, a split and the dataset's keyword arguments (Dataset.args);
workflows/build.py reads them from a config's `data` section. Image sets are per-example sources
(images.py) and transforms (transforms.py) that the grain input pipeline (loader.py) combines;
generated points are batched statelessly (stateless.py).
"""
import dataclasses

from configs.errors import UserError
from data_sources import images, toy, transforms
from data_sources.loader import GrainBatches
from data_sources.mixture import GaussianMixture
from data_sources.registry import DATASETS, Dataset, check_split, get_dataset, require_labels
from data_sources.stateless import StatelessBatches, batch_indices, preprocess


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What the model and likelihood need to know of a dataset."""

  shape: tuple          # one example's shape
  is_image: bool        # uint8 images (dequantised, scaled to [0,1] or [-1,1])


def check_dataset_name(name: str) -> None:
  get_dataset(name)


def data_info(name: str, **args) -> DataInfo:
  """Shape and kind of dataset `name` (images: image_size x image_size x num_channels)."""
  dataset = get_dataset(name)
  return DataInfo(shape=dataset.shape(**args), is_image=dataset.kind == "images")


def image_source(name: str, split: str, **args):
  """Examples {"image": uint8 (H, W, C), "label": int32} of an image set, as stored.

  Files that --mode=prepare wrote for (name, image_size) to data_dir come first; else digits
  from scikit-learn, `image_folder` decoded file by file, or the TFDS dataset in data_dir.
  """
  dataset = get_dataset(name)
  check_split(split)
  if dataset.kind != "images":
    raise UserError(f"{name!r} is not an image dataset.")
  return dataset.source(split, **args)


def load_split(name: str, split: str, **args):
  """A split as an indexable source: source[indices] -> (B, ...) array.

  Toy sets and the mixture: num_examples float32 points drawn with a generator keyed by
  (data_seed, split). Images: uint8 NHWC, cropped and resized to image_size as released.
  """
  dataset = get_dataset(name)
  check_split(split)
  return dataset.load(split, **args)


def load_labels(name: str, split: str, **args):
  """Class labels (N,) int32 of the examples load_split gives (same order): the component of
  each mixture point, digits' digit, an image set's label feature (image folders: subfolders)."""
  dataset = get_dataset(name)
  check_split(split)
  return dataset.labels(split, **args)


def train_batches(name: str, *, labels: bool, augment: transforms.Augment, seed: int,
                  global_batch: int, process_index: int = 0, process_count: int = 1,
                  num_workers: int = 0, prefetch: int = 2, **args):
  """This host's training batches {"image": (global_batch / process_count, ...), ...} with
  get/set_state.

  Image sets: the grain pipeline over the train source with the dataset's crop and resize, then
  `augment` (flips, dequantisation); batches carry "label", checked to exist with `labels`.
  Points: stateless batches drawn with replacement (with `labels`: also "label").
  """
  dataset = get_dataset(name)
  batch = dict(seed=seed, global_batch=global_batch, process_index=process_index,
               process_count=process_count)
  if dataset.kind == "points":
    return StatelessBatches(dataset.load("train", **args), **batch,
                            labels=dataset.labels("train", **args) if labels else None)
  source = dataset.source("train", **args)
  if labels and len(source):
    require_labels(name, [source[0]["label"]])  # -1: the source has no 'label' feature
  return GrainBatches(source, [dataset.crop_resize(**args), augment], num_workers=num_workers,
                      prefetch=prefetch, **batch)


__all__ = ["DATASETS", "DataInfo", "Dataset", "GaussianMixture", "GrainBatches",
           "StatelessBatches", "batch_indices", "check_dataset_name", "data_info", "get_dataset",
           "image_source", "load_labels", "load_split", "preprocess", "train_batches",
           "transforms"]
