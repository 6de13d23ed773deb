"""Datasets: toy sets, digits, the TFDS path (on tfds' offline mock data), batching, preprocessing."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_sources
from configs import load_config
from workflows import build
from data_sources import images, toy, transforms


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
  with pytest.raises(FileNotFoundError, match="not prepared.*--mode=prepare.*digits"):
    data_sources.image_source("cifar10", "train", image_size=32, data_dir=str(tmp_path))


def test_center_crop_takes_the_middle():
  image = np.zeros((10, 6, 1), np.uint8)
  image[2:8] = 200
  np.testing.assert_array_equal(transforms.center_crop(image)[..., 0], 200)
  assert transforms.CropResize(3, crop=4).apply(image).shape == (3, 3, 1)
