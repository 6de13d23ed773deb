"""DATASETS: name -> Dataset, the one place that says what each dataset is.

A Dataset gives its kind ("points" | "images"), the config-level keyword arguments its methods
take (`args`; workflows/build.py reads them from config.data), one example's shape, per split
(train | test) a source, its class labels and its examples as an array, and what --mode=prepare
does. Image sets also give their crop and resize: the released score_sde `datasets.py`; FFHQ and
CelebA-HQ follow Karras et al.'s dataset tool, whose 2x2 averages made the released TFRecords.

Adding a dataset: an entry in DATASETS below, of an existing kind (e.g. another TFDS set) or of a
new Dataset subclass.
"""
import dataclasses
from typing import Callable, ClassVar

import numpy as np

from configs.errors import ArgumentError, UserError
from data_sources import images, toy, transforms

SPLIT_SEEDS = {"train": 0, "test": 1}


def check_split(split: str) -> None:
  if split not in SPLIT_SEEDS:
    raise UserError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def require_labels(name: str, labels) -> np.ndarray:
  """labels as int32 (N,), or a UserError if they are -1 (a source without a 'label' feature)."""
  labels = np.asarray(labels, np.int32)
  if len(labels) and labels.min() < 0:
    raise UserError(f"Dataset {name!r} has no 'label' feature; class-conditional models and "
                     "classifiers need a labelled dataset.")
  return labels


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset by name. Its methods take the keyword arguments named in `args`, each reading
  those it needs."""

  name: str
  kind: ClassVar[str]              # "points": float32 (N, D); "images": uint8 (N, H, W, C)
  args: ClassVar[tuple[str, ...]]  # config-level arguments, e.g. image_size, num_examples

  def shape(self, **args) -> tuple:
    """One example's shape in model space."""
    raise NotImplementedError

  def source(self, split: str, **args):
    """Points: (N, D) float32. Images: examples {"image": uint8 (H, W, C) as stored, "label"}."""
    raise NotImplementedError

  def load(self, split: str, **args):
    """The split as an indexable array: load(...)[indices] -> (B, *shape) (images cropped and
    resized, uint8)."""
    raise NotImplementedError

  def labels(self, split: str, **args) -> np.ndarray:
    """Class labels (N,) int32 in the order of source and load."""
    raise UserError(f"Dataset {self.name!r} has no class labels; use dataset 'gmm' (label: the "
                     "component), 'digits' or a labelled image set.")

  def prepare(self, *, num_workers: int = 0, **args) -> dict:
    """Writes ready-to-read files (--mode=prepare); returns {"path": ..., ...}."""
    raise ArgumentError("dataset", f"{{arg}}={self.name!r} is generated or bundled: nothing to "
                        "prepare.")


def _split_rng(data_seed: int, split: str) -> np.random.Generator:
  return np.random.default_rng([data_seed, SPLIT_SEEDS[split]])


@dataclasses.dataclass(frozen=True)
class Points(Dataset):
  """num_examples 2-D points from sample(rng, n) -> (n, 2) float32, with a generator keyed by
  (data_seed, split); unlabelled."""

  sample: Callable[[np.random.Generator, int], np.ndarray]
  kind = "points"
  args = ("num_examples", "data_seed")

  def shape(self, **args) -> tuple:
    return (2,)

  def source(self, split: str, *, num_examples: int, data_seed: int = 0) -> np.ndarray:
    return self.sample(_split_rng(data_seed, split), num_examples)

  load = source


@dataclasses.dataclass(frozen=True)
class Mixture(Dataset):
  """num_examples points (N, D) of a GaussianMixture, labelled by their component."""

  kind = "points"
  args = ("num_examples", "data_seed", "mixture")

  def shape(self, *, mixture, **args) -> tuple:
    return (mixture.dim,)

  def _draw(self, split: str, *, mixture, num_examples: int, data_seed: int = 0):
    return mixture.sample_labelled(_split_rng(data_seed, split), num_examples)

  def source(self, split: str, **args) -> np.ndarray:
    return self._draw(split, **args)[0].astype(np.float32)

  load = source

  def labels(self, split: str, **args) -> np.ndarray:
    return self._draw(split, **args)[1]


@dataclasses.dataclass(frozen=True)
class Images(Dataset):
  """uint8 images (image_size, image_size, num_channels): a central crop of `crop` pixels (None:
  the shorter side) resized with `method`; at sizes in resize_first_sizes the shorter side is
  resized first and the centre cropped after (released LSUN 128)."""

  _: dataclasses.KW_ONLY
  crop: int | None = None
  method: str = "bilinear"
  resize_first_sizes: tuple = ()
  kind = "images"
  args = ("image_size", "num_channels", "data_dir", "image_folder")

  def shape(self, *, image_size: int, num_channels: int, **args) -> tuple:
    return (image_size, image_size, num_channels)

  def crop_resize(self, *, image_size: int, **args) -> transforms.CropResize:
    """{"image": (H, W, C), ...} -> image (image_size, image_size, C), as released."""
    return transforms.CropResize(image_size, self.crop, self.method,
                                 image_size in self.resize_first_sizes)

  def load(self, split: str, **args) -> images.ImageArray:
    return images.ImageArray(self.source(split, **args), self.crop_resize(**args))

  def labels(self, split: str, **args) -> np.ndarray:
    source = self.source(split, **args)
    return require_labels(self.name, [source[i]["label"] for i in range(len(source))])

  def prepared(self, split: str, image_size: int, data_dir: str | None):
    """What --mode=prepare wrote for (name, image_size) to data_dir, or None."""
    path = images.prepared_path(data_dir, self.name, image_size)
    return images.open_prepared(path, split) if (path / "dataset_info.json").is_file() else None

  def prepare(self, *, num_workers: int = 0, image_size: int, num_channels: int = 3,
              data_dir: str | None = None, image_folder: str = "") -> dict:
    """image_folder cropped and resized to image_size, stored as PNGs where source finds them."""
    from data_sources import prepare  # pylint: disable=g-import-not-at-top (tfds)
    if not image_folder:
      raise ArgumentError("image_folder", f"Dataset {self.name!r} is prepared from local files; "
                          "set {arg}=DIR.")
    path = prepare.prepare_folder(image_folder, name=self.name, num_channels=num_channels,
                                  crop_resize=self.crop_resize(image_size=image_size),
                                  data_dir=data_dir or None, num_workers=num_workers)
    examples, classes = prepare.describe(path)
    return {"path": str(path), "examples": examples, "classes": classes}


@dataclasses.dataclass(frozen=True)
class Digits(Images):
  """scikit-learn's bundled 8x8 digits (offline), 80/20 train/test, bilinearly resized."""

  args = ("image_size", "num_channels")

  def source(self, split: str, **args) -> images.ArraySource:
    return images.ArraySource(*images.digits_arrays(split))

  def load(self, split: str, *, image_size: int, **args) -> np.ndarray:
    return images.load_digits(split, image_size)

  def labels(self, split: str, **args) -> np.ndarray:
    return images.digits_arrays(split)[1]

  prepare = Dataset.prepare


@dataclasses.dataclass(frozen=True)
class ImageFolder(Images):
  """A tree of PNG/JPEG files (data.image_folder), labelled by top-level subfolder; its prepared
  copy in data_dir is read first."""

  def source(self, split: str, *, image_size: int, num_channels: int = 3,
             data_dir: str | None = None, image_folder: str = ""):
    prepared = self.prepared(split, image_size, data_dir)
    if prepared is not None:
      return prepared
    if not image_folder:
      raise ArgumentError("image_folder", f"Dataset {self.name!r} reads {{arg}}; set "
                          "{arg}=DIR (a tree of PNG/JPEG files).")
    return images.ImageFolderSource(image_folder, split, num_channels)


@dataclasses.dataclass(frozen=True)
class Tfds(Images):
  """The TFDS dataset tfds_name, prepared in data_dir (nothing is downloaded at run time); a copy
  that --mode=prepare made of data.image_folder is read first."""

  tfds_name: str

  def source(self, split: str, *, image_size: int, data_dir: str | None = None, **args):
    prepared = self.prepared(split, image_size, data_dir)
    return prepared if prepared is not None else images.open_tfds(self.tfds_name, split,
                                                                  data_dir or None)

  def prepare(self, *, num_workers: int = 0, **args) -> dict:
    """With image_folder: that folder (Images.prepare); else the TFDS builder's
    download_and_prepare (network access, and TensorFlow for most image sets)."""
    if args.get("image_folder"):
      return super().prepare(num_workers=num_workers, **args)
    from data_sources import prepare  # pylint: disable=g-import-not-at-top (tfds)
    return {"path": prepare.prepare_tfds(self.tfds_name, args.get("data_dir") or None)}


DATASETS = {dataset.name: dataset for dataset in (
    *(Points(name, sample) for name, sample in toy.TOY_DATASETS.items()),
    Mixture("gmm"),
    Digits("digits"),
    ImageFolder("image_folder", method="bicubic"),  # like LSUN: shorter side, bicubic
    ImageFolder("ffhq", method="box"),  # not in TFDS; Karras et al.'s 2x2 averages (TFRecords)
    Tfds("cifar10", "cifar10"),
    Tfds("svhn", "svhn_cropped"),
    Tfds("mnist", "mnist"),
    Tfds("celeba", "celeb_a", crop=140),  # central_crop(140), resize_small (bilinear)
    Tfds("lsun_bedroom", "lsun/bedroom", method="bicubic", resize_first_sizes=(128,)),
    Tfds("lsun_church", "lsun/church_outdoor", method="bicubic", resize_first_sizes=(128,)),
    Tfds("celebahq", "celeb_a_hq", method="box"),  # like FFHQ
)}


def get_dataset(name: str) -> Dataset:
  if name not in DATASETS:
    raise UserError(f"Unknown dataset {name!r}; choose one of {sorted(DATASETS)}.")
  return DATASETS[name]
