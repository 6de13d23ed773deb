"""Datasets: every registry entry's contract on offline data, toy sets, digits, the TFDS path (on
tfds' offline mock data), batching, preprocessing."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import data_sources
from configs import load_config
from configs.errors import UserError
from workflows import build
from data_sources import images, registry, toy, transforms

MIXTURE = data_sources.GaussianMixture(weights=(0.2, 0.3, 0.5), means=((0.0,), (1.0,), (2.0,)),
                                       covs=(((1.0,),), ((0.5,),), ((0.1,),)))
FOLDER_CLASSES = ("a", "b")


def _offline_data(dataset, tmp_path) -> tuple[dict, int]:
  """Keyword arguments under which `dataset` reads offline data (TFDS sets: inside tfds'
  mock_data), and its number of classes: generated points, scikit-learn's digits, PNGs written
  to tmp_path."""
  folder = tmp_path / "folder"
  for i, (h, w) in enumerate([(16, 24), (24, 16), (16, 16)]):
    path = folder / FOLDER_CLASSES[i % 2] / f"{i}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 40 * i, np.uint8)).save(path)
  values = dict(num_examples=40, data_seed=3, mixture=MIXTURE, image_size=8, num_channels=3,
                data_dir=str(tmp_path / "prepared"), image_folder=str(folder))
  num_classes = {registry.Mixture: len(MIXTURE.weights), registry.Digits: 10,
                 registry.ImageFolder: len(FOLDER_CLASSES)}.get(type(dataset), 0)
  if isinstance(dataset, registry.Tfds):
    features = tfds.builder(dataset.tfds_name).info.features
    num_classes = features["label"].num_classes if "label" in features else 0
  return {name: values[name] for name in dataset.args}, num_classes


@pytest.mark.parametrize("name", sorted(data_sources.DATASETS))
def test_every_dataset_keeps_its_contract(name, tmp_path):
  """A non-empty source whose examples take the declared shape (images: after the dataset's crop
  and resize, num_channels as the data's), load()[indices] of that shape, and labels, where the
  dataset has them, one per example in [0, num_classes)."""
  dataset = data_sources.get_dataset(name)
  with tfds.testing.mock_data(num_examples=3):
    args, num_classes = _offline_data(dataset, tmp_path)
    source = dataset.source("train", **args)
    example = source[0]
    if dataset.kind == "images":
      args["num_channels"] = example["image"].shape[-1]
      example = dataset.crop_resize(**args).apply(example["image"])
    shape = dataset.shape(**args)
    assert len(source) > 0 and example.shape == shape
    assert dataset.load("train", **args)[np.array([0, 0])].shape == (2, *shape)
    if not num_classes:
      with pytest.raises(UserError, match="no class labels|no 'label' feature"):
        dataset.labels("train", **args)
      return
    labels = dataset.labels("train", **args)
  assert labels.dtype == np.int32 and labels.shape == (len(source),)
  assert labels.min() >= 0 and labels.max() < num_classes


def test_unknown_dataset_is_an_error_naming_the_valid_ones():
  with pytest.raises(UserError, match=r"Unknown dataset 'cifar11'; choose one of \[.*'cifar10'.*"
                                      r"'swiss_roll'"):
    data_sources.load_split("cifar11", "train")


@pytest.mark.parametrize("name", sorted(toy.TOY_DATASETS))
def test_toy_sets_are_deterministic_2d(name):
  a = toy.TOY_DATASETS[name](np.random.default_rng(0), 500)
  b = toy.TOY_DATASETS[name](np.random.default_rng(0), 500)
  assert a.shape == (500, 2) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert 0.2 < a.std() < 3.0


def test_checkerboard_occupies_dark_squares_only():
  x = toy.checkerboard(np.random.default_rng(0), 4000)
  parity = (np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2
  assert np.all(parity == 0) and np.all(np.abs(x) <= 2)


def test_gmm_dataset_has_the_configured_moments():
  config = load_config("configs/gmm_analytic.py:vpsde", {"data.num_train": 40000})
  x = build.load_split(config, "train")
  mixture = build.build_mixture(config.data)
  mean = np.einsum("k,kd->d", np.asarray(mixture.weights), np.asarray(mixture.means))
  np.testing.assert_allclose(x.mean(0), mean, atol=0.03)


def test_digits_splits_are_disjoint_uint8_images():
  train, test = images.load_digits("train"), images.load_digits("test")
  assert train.shape == (1438, 8, 8, 1) and test.shape == (359, 8, 8, 1)
  assert train.dtype == np.uint8 and train.max() == 255
  train_set = {im.tobytes() for im in train}
  assert sum(im.tobytes() in train_set for im in test) < 10  # a few digits repeat exactly
  assert images.load_digits("test", image_size=16).shape == (359, 16, 16, 1)


def test_batch_indices_split_across_processes_and_depend_only_on_step():
  full = data_sources.batch_indices(100, seed=3, step=7, global_batch=8)
  parts = [data_sources.batch_indices(100, 3, 7, 8, process_index=i, process_count=2)
           for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), full)
  assert not np.array_equal(full, data_sources.batch_indices(100, 3, 8, 8))
  with pytest.raises(ValueError, match="divisible"):
    data_sources.batch_indices(100, 3, 7, 9, process_count=2)


def test_preprocess_scales_and_dequantises():
  pixels = np.array([0, 255], np.uint8).reshape(1, 1, 2, 1)
  x = data_sources.preprocess(pixels, is_image=True, centered=True, uniform_dequantization=False)
  np.testing.assert_allclose(x.ravel(), [-1.0, 1.0])
  rng = np.random.default_rng(0)
  many = np.full((4000, 1, 1, 1), 10, np.uint8)
  y = data_sources.preprocess(many, is_image=True, centered=False, uniform_dequantization=True,
                              rng=rng)
  assert np.all((y >= 10 / 256) & (y < 11 / 256))
  assert abs(y.mean() - 10.5 / 256) < 1e-4


def test_tfds_images_on_mock_cifar10():
  with tfds.testing.mock_data(num_examples=12):
    split = data_sources.load_split("cifar10", "train", image_size=16)
    batch = split[np.array([3, 0, 3])]
    example = data_sources.image_source("cifar10", "train", image_size=16)[5]
  assert len(split) == 12
  assert batch.shape == (3, 16, 16, 3) and batch.dtype == np.uint8
  np.testing.assert_array_equal(batch[0], batch[2])
  assert example["image"].shape == (32, 32, 3) and 0 <= example["label"] < 10


def test_missing_tfds_dataset_says_how_to_prepare_it(tmp_path):
  """The library names its argument (data_dir), the config boundary the key that sets it."""
  with pytest.raises(FileNotFoundError, match="not prepared in data_dir=.*--mode=prepare.*digits"):
    data_sources.image_source("cifar10", "train", image_size=32, data_dir=str(tmp_path))
  config = load_config("configs/ve/ncsnpp_cifar10.py", {"data.data_dir": str(tmp_path)})
  with pytest.raises(FileNotFoundError, match=r"in data.data_dir=.* Set --config.data.data_dir="):
    build.image_source(config, "train")


def test_missing_image_folder_names_the_key_that_sets_it(tmp_path):
  config = load_config("configs/ve/ncsnpp_cifar10.py", {
      "data.dataset": "image_folder", "data.image_folder": str(tmp_path / "none"),
      "data.data_dir": str(tmp_path)})
  with pytest.raises(FileNotFoundError, match="is not a directory; set data.image_folder to a "
                     r"tree of PNG/JPEG files. Set --config.data.image_folder=\.\.\.$"):
    build.image_source(config, "train")


def test_center_crop_takes_the_middle():
  image = np.zeros((10, 6, 1), np.uint8)
  image[2:8] = 200
  np.testing.assert_array_equal(transforms.center_crop(image)[..., 0], 200)
  assert transforms.CropResize(3, crop=4).apply(image).shape == (3, 3, 1)
