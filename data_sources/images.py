"""Image datasets as random-access sources of examples {"image": uint8 (H, W, C), "label": int32}.

`digits` is scikit-learn's bundled 8x8 handwritten digits (offline). TFDS sets are read with
`tfds.data_source` (ArrayRecord files, no TensorFlow needed) from `data_dir`, which must already
hold the prepared dataset: nothing is downloaded at run time. An image folder is a directory tree
of PNG/JPEG files whose top-level subfolders name the classes; `--mode=prepare` turns one into
ArrayRecord files (data_sources/prepare.py), read back by `open_prepared`.

Sources return images as stored; crops and resizes are transforms (data_sources/transforms.py).
"""
import dataclasses
import pathlib

import numpy as np
from PIL import Image

from configs.errors import MissingFileArgumentError, MissingFileError, UserError
from data_sources import transforms

DIGITS_TEST_FRACTION = 0.2
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
PREPARED_NAME, PREPARED_VERSION = "prepared_images", "1.0.0"


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """Bilinear resize of uint8 images (N, H, W, C) to (N, size, size, C)."""
  return np.stack([transforms.resize(im, size, size) for im in images])


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn digits: uint8 images (N, 8, 8, 1) and labels (N,) int32; 80/20 train/test."""
  from sklearn.datasets import load_digits as sklearn_digits  # pylint: disable=g-import-not-at-top
  if split not in ("train", "test"):
    raise UserError(f"digits has splits 'train' and 'test', not {split!r}.")
  digits = sklearn_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # 0..16 -> 0..255
  order = np.random.default_rng(0).permutation(len(images))
  n_test = int(round(DIGITS_TEST_FRACTION * len(images)))
  index = np.sort(order[n_test:] if split == "train" else order[:n_test])
  return images[index], digits.target[index].astype(np.int32)


def load_digits(split: str, image_size: int = 8) -> np.ndarray:
  """scikit-learn digits as uint8 (N, image_size, image_size, 1)."""
  return resize_images(digits_arrays(split)[0], image_size)


@dataclasses.dataclass(frozen=True, repr=False)
class ArraySource:
  """Examples from in-memory arrays: images (N, H, W, C) uint8, labels (N,)."""

  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.images)

  def __getitem__(self, index) -> dict:
    return {"image": self.images[index], "label": np.int32(self.labels[index])}

  def __repr__(self):
    return f"ArraySource({self.images.shape})"


@dataclasses.dataclass(frozen=True)
class RecordSource:
  """Examples from a tfds ArrayRecord data source (picklable: each grain worker reopens it)."""

  records: object
  image_key: str = "image"

  def __len__(self):
    return len(self.records)

  def __getitem__(self, index) -> dict:
    record = self.records[int(index)]
    return {"image": np.asarray(record[self.image_key]),  # label -1: the dataset has none
            "label": np.int32(record.get("label", -1))}


def open_tfds(name: str, split: str, data_dir: str | None) -> RecordSource:
  """A prepared TFDS dataset (ArrayRecord files in data_dir)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return RecordSource(tfds.data_source(name, split=split, data_dir=data_dir, download=False))
  except Exception as err:  # tfds raises several types for a missing dataset
    raise MissingFileArgumentError(
        "data_dir", f"TFDS dataset {name!r} ({split!r}) is not prepared in {{arg}}={data_dir!r}: "
        "prepare it with --mode=prepare where there is network access, read it from an image "
        "folder, or use 'digits'.",
        "--mode=prepare or `tfds build --file_format=array_record` writes it; nothing is "
        "downloaded at run time.") from err


def prepared_path(data_dir: str | None, dataset: str, image_size: int) -> pathlib.Path:
  """Where --mode=prepare writes `dataset` at `image_size` (a TFDS-format directory)."""
  if not data_dir:
    from tensorflow_datasets.core import constants  # pylint: disable=g-import-not-at-top
    data_dir = constants.DATA_DIR
  return (pathlib.Path(data_dir) / PREPARED_NAME / f"{dataset}_{image_size}" / PREPARED_VERSION)


def open_prepared(path: pathlib.Path, split: str) -> RecordSource:
  """A dataset written by --mode=prepare. Without a `split` split (a folder without train/ and
  test/) the train split serves, as the released code does for FFHQ and CelebA-HQ."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(path)
  return RecordSource(builder.as_data_source(split if split in builder.info.splits else "train"))


def _split_root(root: pathlib.Path, split: str) -> pathlib.Path:
  """root/train and root/test when the folder is split so, else the whole folder for both."""
  if not root.is_dir():
    raise MissingFileArgumentError("image_folder", f"Image folder {str(root)!r} is not a "
                                   "directory; set {arg} to a tree of PNG/JPEG files.")
  if not (root / "train").is_dir():
    return root
  if not (root / split).is_dir():
    raise MissingFileError(f"Image folder {str(root)!r} has train/ but no {split}/ subfolder.")
  return root / split


def list_images(root: pathlib.Path) -> tuple[list[str], list[str], np.ndarray]:
  """Sorted relative paths of the images under root, the class names (top-level subfolders;
  images directly in root are the class root.name), and each image's class index (N,)."""
  files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                 if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
  if not files:
    raise MissingFileError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}.")
  classes = [pathlib.PurePath(f).parts[0] if len(pathlib.PurePath(f).parts) > 1 else root.name
             for f in files]
  names = sorted(set(classes))
  return files, names, np.searchsorted(names, classes).astype(np.int32)


class ImageFolderSource:
  """Images decoded from files under root (split as in _split_root), as uint8 (H, W, C) with
  num_channels 1 (greyscale) or 3 (RGB), labelled by their top-level subfolder."""

  def __init__(self, root: str, split: str = "train", num_channels: int = 3):
    if num_channels not in (1, 3):
      raise UserError(f"Image folders give 1 or 3 channels, not num_channels={num_channels}.")
    self.num_channels = num_channels
    self.base = _split_root(pathlib.Path(root), split)
    self.files, self.class_names, self.labels = list_images(self.base)

  def __len__(self):
    return len(self.files)

  def __getitem__(self, index) -> dict:
    with Image.open(self.base / self.files[int(index)]) as im:
      image = np.asarray(im.convert("L" if self.num_channels == 1 else "RGB"))
    return {"image": image.reshape(*image.shape[:2], self.num_channels),
            "label": self.labels[int(index)]}

  def __repr__(self):
    return f"ImageFolderSource({str(self.base)!r}, {len(self)} images)"


@dataclasses.dataclass(frozen=True)
class ImageArray:
  """A source seen as an array of cropped, resized images: view[indices] -> uint8 (B, S, S, C)."""

  source: object
  crop_resize: transforms.CropResize

  def __len__(self):
    return len(self.source)

  def __getitem__(self, indices) -> np.ndarray:
    return np.stack([self.crop_resize.apply(self.source[int(i)]["image"])
                     for i in np.asarray(indices)])
