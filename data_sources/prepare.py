"""Ready-to-read ArrayRecord files: TFDS builds, and image folders cropped and resized once.

`prepare_tfds` runs a TFDS builder's download_and_prepare (needs network access, and TensorFlow
for most image sets). `prepare_folder` writes an image folder as a TFDS-format dataset
(ArrayRecord of lossless PNGs at the training resolution, class labels from subfolders, no
TensorFlow needed) to images.prepared_path(data_dir, name, size), where the training input finds it.
"""
import contextlib
import dataclasses
import functools
import io
import multiprocessing
import pathlib
import tempfile

import tensorflow_datasets as tfds

from configs.errors import UserError
from data_sources import images, transforms
from fileio import png_bytes


def prepare_tfds(tfds_name: str, data_dir: str | None) -> str:
  """tfds `download_and_prepare` in ArrayRecord format (manually downloaded files, e.g. CelebA-HQ's,
  go in data_dir/downloads/manual); returns the dataset's directory."""
  builder = tfds.builder(tfds_name, data_dir=data_dir or None, file_format="array_record")
  builder.download_and_prepare()
  return str(builder.data_dir)


@dataclasses.dataclass(frozen=True)
class _EncodeExample:
  """Index -> (key, PNG of the cropped, resized image, label); run in a process pool."""

  source: images.ImageFolderSource
  crop_resize: transforms.CropResize

  def __call__(self, index: int):
    example = self.source[index]
    png = png_bytes(self.crop_resize.apply(example["image"]))
    return self.source.files[index], png, int(example["label"])


class PreparedImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Cropped, resized images of a folder, one split per images.ImageFolderSource."""

  VERSION = tfds.core.Version(images.PREPARED_VERSION)
  code_path = None  # no checksums file to find (tfds' lookup needs the importlib_resources backport)

  def __init__(self, *, sources: dict, crop_resize: transforms.CropResize, num_workers: int,
               **kwargs):
    self._sources, self._crop_resize, self._workers = sources, crop_resize, num_workers
    super().__init__(**kwargs)

  def _info(self):
    first = next(iter(self._sources.values()))
    size = self._crop_resize.size
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(size, size, first.num_channels),
                                     encoding_format="png"),
        "label": tfds.features.ClassLabel(names=first.class_names)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(source) for split, source in self._sources.items()}

  def _generate_examples(self, source):
    with _ordered_map(_EncodeExample(source, self._crop_resize), self._workers) as encoded:
      for key, png, label in encoded(range(len(source))):
        yield key, {"image": io.BytesIO(png), "label": label}


_worker_encode = None  # the encoder of a pool worker process (set once by its initializer)


def _set_worker_encode(encode):
  global _worker_encode  # pylint: disable=global-statement
  _worker_encode = encode


def _encode_in_worker(index: int):
  return _worker_encode(index)


@contextlib.contextmanager
def _ordered_map(encode, num_workers: int):
  """map(encode, indices) over num_workers spawned processes, in order (0: in this process).
  The encoder (which holds the file list) reaches each worker once, not with every task."""
  if not num_workers:
    yield functools.partial(map, encode)
    return
  context = multiprocessing.get_context("spawn")
  with context.Pool(num_workers, initializer=_set_worker_encode, initargs=(encode,)) as pool:
    yield functools.partial(pool.imap, _encode_in_worker, chunksize=64)


def prepare_folder(root: str, *, name: str, crop_resize: transforms.CropResize,
                   num_channels: int, data_dir: str | None, num_workers: int = 0) -> pathlib.Path:
  """Writes the images under root (splits train/ and test/ if present) cropped and resized to
  images.prepared_path(data_dir, name, crop_resize.size); an existing one is kept as it is."""
  path = images.prepared_path(data_dir, name, crop_resize.size)
  if (path / "dataset_info.json").is_file():
    return path
  splits = ("train", "test") if (pathlib.Path(root) / "train").is_dir() else ("train",)
  sources = {s: images.ImageFolderSource(root, s, num_channels) for s in splits}
  if len({tuple(s.class_names) for s in sources.values()}) > 1:
    raise UserError(f"The splits of {root!r} have different class subfolders; give every split "
                     "the same classes.")
  builder = PreparedImages(sources=sources, crop_resize=crop_resize, num_workers=num_workers,
                           data_dir=str(path.parents[2]), file_format="array_record",
                           config=tfds.core.BuilderConfig(name=path.parent.name))
  with tempfile.TemporaryDirectory() as downloads:
    builder.download_and_prepare(download_dir=downloads)
  return path


def describe(path: pathlib.Path) -> tuple[dict, list]:
  """Examples per split and class names of a prepared dataset."""
  info = tfds.builder_from_directory(path).info
  return ({s: int(v.num_examples) for s, v in info.splits.items()},
          list(info.features["label"].names))
