"""The grain input pipeline: crops and resizes against numpy references, labels from subfolders,
host shards, per-example augmentation independent of workers, exact resume, prepared folders."""
import json
import multiprocessing

import numpy as np
import pytest
from PIL import Image

import data_sources
from configs import load_config
from data_sources import images, loader, transforms
from workflows import build, prepare

RNG = np.random.default_rng(0)


def _write(path, array, **kwargs):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)


def _decode(path) -> np.ndarray:
  return np.asarray(Image.open(path).convert("RGB"))


def _crop_resize(dataset: str, size: int) -> transforms.CropResize:
  return data_sources.get_dataset(dataset).crop_resize(image_size=size)


# --- numpy references of the crop and the resizes ------------------------------------------

def _reference_crop(image, side):
  h, w = image.shape[:2]
  top, left = (h - side) // 2, (w - side) // 2
  return image[top:top + side, left:left + side]


def _triangle(x):
  return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x, a=-0.5):
  x = np.abs(x)
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = (((x - 5) * x + 8) * x - 4) * a
  return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _resample_axis(image, out_size, axis, kernel, support):
  """Antialiased resampling along one axis (the kernel widened by the shrink factor), rounded."""
  n = image.shape[axis]
  scale = n / out_size
  width = max(scale, 1.0)
  centers = (np.arange(out_size) + 0.5) * scale
  taps = np.arange(n) + 0.5
  weights = kernel((taps[None, :] - centers[:, None]) / width)
  weights *= np.abs(taps[None, :] - centers[:, None]) < support * width
  weights /= weights.sum(axis=1, keepdims=True)
  out = np.tensordot(np.moveaxis(image.astype(np.float64), axis, 0), weights.T, axes=([0], [0]))
  return np.clip(np.round(np.moveaxis(out, -1, axis)), 0, 255)


def _reference_resize(image, size, method):
  kernel, support = {"bilinear": (_triangle, 1.0), "bicubic": (_keys_cubic, 2.0)}[method]
  x = _resample_axis(image, size, 1, kernel, support)  # horizontal pass first, as PIL
  return _resample_axis(x, size, 0, kernel, support).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """PNGs of several shapes under class subfolders, one nested deeper, one in the root."""
  root = tmp_path_factory.mktemp("folder")
  shapes = {"cat/a.png": (12, 20), "cat/b.png": (20, 12), "dog/c.png": (16, 16),
            "dog/deep/d.png": (218, 178), "e.png": (9, 14)}
  for name, (h, w) in shapes.items():
    _write(root / name, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
  return root


def test_folder_labels_come_from_top_level_subfolders(folder):
  source = images.ImageFolderSource(str(folder))
  assert source.files == ["cat/a.png", "cat/b.png", "dog/c.png", "dog/deep/d.png", "e.png"]
  assert source.class_names == ["cat", "dog", folder.name]
  assert [int(source[i]["label"]) for i in range(5)] == [0, 0, 1, 1, 2]
  assert source[3]["image"].shape == (218, 178, 3)
  assert images.ImageFolderSource(str(folder), num_channels=1)[0]["image"].shape == (12, 20, 1)


def test_folder_with_split_subfolders_reads_each_split(tmp_path):
  for split, names in (("train", ["x/1.png", "y/2.png"]), ("test", ["x/3.png"])):
    for name in names:
      _write(tmp_path / split / name, np.zeros((4, 4, 3), np.uint8))
  assert images.ImageFolderSource(str(tmp_path), "train").files == ["x/1.png", "y/2.png"]
  assert images.ImageFolderSource(str(tmp_path), "test").files == ["x/3.png"]
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="No images"):
    images.ImageFolderSource(str(tmp_path / "empty"))
  with pytest.raises(FileNotFoundError, match="not a directory"):
    images.ImageFolderSource(str(tmp_path / "missing"))


def test_central_crops_equal_numpy_slices(folder):
  source = images.ImageFolderSource(str(folder))
  for i, name in enumerate(source.files):
    image = _decode(folder / name)
    side = min(image.shape[:2])
    got = _crop_resize("image_folder", side).apply(source[i]["image"])
    np.testing.assert_array_equal(got, _reference_crop(image, side), err_msg=name)


@pytest.mark.parametrize("dataset,size", [("image_folder", 8), ("image_folder", 5),
                                          ("celeba", 64), ("cifar10", 6)])
def test_crop_and_resize_match_a_numpy_reference(folder, dataset, size):
  """Released preprocessing: CelebA's 140 centre crop + bilinear, LSUN-style shorter-side crop +
  bicubic (image folders), bilinear otherwise; antialiased, within one level of PIL's rounding."""
  transform = _crop_resize(dataset, size)
  image = _decode(folder / "dog/deep/d.png")  # 218 x 178, CelebA's aligned size
  side = 140 if dataset == "celeba" else 178
  expected = _reference_resize(_reference_crop(image, side), size, transform.method)
  got = transform.apply(image)
  assert got.shape == expected.shape
  assert np.abs(got.astype(int) - expected).max() <= 1


def test_box_resize_is_the_block_mean_of_karras_dataset_tool():
  image = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  got = _crop_resize("ffhq", 4).apply(image)
  expected = np.rint(image.reshape(4, 4, 4, 4, 3).mean(axis=(1, 3))).astype(np.uint8)
  np.testing.assert_array_equal(got, expected)
  with pytest.raises(ValueError, match="integer factor"):
    transforms.box_resize(image, 5, 5)


# --- the pipeline ---------------------------------------------------------------------------

N = 24


def _index_source():
  """Examples whose label is their index and whose image encodes it: (2, 3, 1) uint8."""
  pixels = (np.arange(N)[:, None, None, None] * 10 + np.arange(6).reshape(1, 2, 3, 1)) % 256
  return images.ArraySource(pixels.astype(np.uint8), np.arange(N))


def _batches(n, *, transforms_=(), **kwargs):
  kwargs = {"seed": 7, "global_batch": 8, **kwargs}
  it = loader.GrainBatches(_index_source(), list(transforms_), **kwargs)
  out = [next(it) for _ in range(n)]
  it.close()
  return out


def test_host_shards_are_disjoint_cover_each_epoch_and_form_the_global_batch():
  one_host = _batches(6)  # two epochs of 24 examples in batches of 8
  for hosts in (2, 4):
    shards = [_batches(6, process_index=h, process_count=hosts) for h in range(hosts)]
    for epoch in range(2):
      seen = [np.concatenate([b["label"] for b in s[3 * epoch:3 * epoch + 3]]) for s in shards]
      assert sum(len(s) for s in seen) == N
      assert set(np.concatenate(seen)) == set(range(N)), (hosts, epoch)
    for b in range(6):  # host h holds rows [h L, (h+1) L) of the one-host batch
      np.testing.assert_array_equal(np.concatenate([s[b]["label"] for s in shards]),
                                    one_host[b]["label"])
  first, second = (np.concatenate([b["label"] for b in one_host[e:e + 3]]) for e in (0, 3))
  assert not np.array_equal(first, second)  # each epoch its own permutation
  assert not np.array_equal(_batches(1, seed=8)[0]["label"], one_host[0]["label"])


AUGMENT = transforms.Augment(centered=False, uniform_dequantization=True, random_flip=True)


@pytest.fixture(scope="module")
def augmented_in_process():
  return _batches(4, transforms_=[AUGMENT])


def test_flips_and_dequantisation_are_per_example_and_correct(augmented_in_process):
  source, flips = _index_source(), 0
  for batch in augmented_in_process:
    for x, label in zip(batch["image"], batch["label"]):
      pixels = source[label]["image"].astype(np.float32)
      flipped = not np.all(np.floor(x * 256) == pixels)
      flips += flipped
      noise = x * 256 - (pixels[:, ::-1] if flipped else pixels)
      assert np.all((noise >= 0) & (noise < 1)) and noise.std() > 0.1
  assert 8 <= flips <= 24  # about half of 32


def _resumed(state_after: int, workers_before: int, workers_after: int, total: int = 4):
  """Batches 0..total-1 read by one iterator up to state_after, then by a new one from its
  saved (JSON) state."""
  kwargs = dict(seed=7, global_batch=8)
  it = loader.GrainBatches(_index_source(), [AUGMENT], num_workers=workers_before, **kwargs)
  batches = [next(it) for _ in range(state_after)]
  state = json.loads(json.dumps(it.get_state()))  # as the checkpoint stores it
  it.close()
  resumed = loader.GrainBatches(_index_source(), [AUGMENT], num_workers=workers_after, **kwargs)
  resumed.set_state(state)
  batches += [next(resumed) for _ in range(total - state_after)]
  resumed.close()
  assert state["next_example"] == 8 * state_after
  return batches


@pytest.mark.parametrize("workers_before,workers_after", [(0, 0), (2, 1)])
def test_resume_and_worker_counts_give_bit_identical_batches(augmented_in_process, workers_before,
                                                            workers_after):
  """Batches 2, 3 after a resume from the state saved after batch 1, read by 2 workers before and
  1 after, equal the batches of one uninterrupted in-process iterator, bit for bit."""
  for expected, got in zip(augmented_in_process, _resumed(2, workers_before, workers_after)):
    np.testing.assert_array_equal(got["image"], expected["image"])
    np.testing.assert_array_equal(got["label"], expected["label"])


def test_state_of_other_data_and_bad_settings_are_clear_errors(monkeypatch):
  it = loader.GrainBatches(_index_source(), [], seed=7, global_batch=8)
  with pytest.raises(ValueError, match="other data"):
    it.set_state({"next_example": 8, "num_examples": N + 1, "seed": 7})
  with pytest.raises(ValueError, match="divisible by 3 processes"):
    loader.GrainBatches(_index_source(), [], seed=7, global_batch=8, process_count=3)
  with pytest.raises(ValueError, match="num_workers=-1"):
    loader.GrainBatches(_index_source(), [], seed=7, global_batch=8, num_workers=-1)
  monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["fork"])
  with pytest.raises(ValueError, match="cannot start; set num_workers=0"):
    loader.GrainBatches(_index_source(), [], seed=7, global_batch=8, num_workers=2)
  with pytest.raises(ValueError, match=r"set data.num_workers=0\. Set --config.data.num_workers"):
    with build.section_keys("data"):  # the config boundary names the config key
      loader.GrainBatches(_index_source(), [], seed=7, global_batch=8, num_workers=2)


# --- prepare --------------------------------------------------------------------------------

def test_prepared_folder_reads_back_through_the_pipeline(tmp_path):
  """JPEGs -> --mode=prepare -> ArrayRecord (PNG) -> the training input: the same pixels as
  cropping and resizing the decoded JPEGs, the subfolder labels, every example once an epoch.
  One worker process both to encode and to read (the tfds source travels to it)."""
  raw = tmp_path / "raw"
  for i in range(6):
    _write(raw / ("ab"[i % 2]) / f"{i}.jpg", RNG.integers(0, 256, (10 + i, 13, 3), np.uint8),
           quality=90)
  config = load_config("configs/digits.py:vpsde", {
      "data.dataset": "image_folder", "data.image_folder": str(raw), "data.image_size": 8,
      "data.num_channels": 3, "data.data_dir": str(tmp_path / "ready"), "data.random_flip": False,
      "data.centered": False, "training.batch_size": 3, "data.num_workers": 1})
  record = prepare(config, tmp_path / "work")
  assert record["examples"] == {"train": 6} and record["classes"] == ["a", "b"]
  assert json.loads((tmp_path / "work" / "prepare.json").read_text()) == record
  reference = images.ImageFolderSource(str(raw))
  crop_resize = _crop_resize("image_folder", 8)
  expected = {reference.files[i]: (crop_resize.apply(reference[i]["image"]), reference[i]["label"])
              for i in range(6)}
  config.data.image_folder = str(tmp_path / "elsewhere")  # the prepared copy is read, not raw/
  prepared = build.image_source(config, "train")
  assert isinstance(prepared, images.RecordSource) and len(prepared) == 6
  batches = build.build_train_input(config)
  got = [next(batches) for _ in range(2)]
  pixels = np.round(np.concatenate([b["image"] for b in got]) * 255).astype(np.uint8)
  labels = np.concatenate([b["label"] for b in got])
  matched = sorted(next(k for k, (im, lab) in expected.items()
                        if np.array_equal(im, p) and lab == l) for p, l in zip(pixels, labels))
  batches.close()
  assert matched == sorted(expected)
  assert prepare(config, tmp_path / "work")["path"] == record["path"]  # kept, not rewritten


def test_prepare_runs_the_tfds_builder_in_array_record_format(tmp_path, monkeypatch):
  calls = []

  class FakeBuilder:
    data_dir = str(tmp_path / "cifar10" / "3.0.2")

    def __init__(self, name, **kwargs):
      calls.append((name, kwargs))

    def download_and_prepare(self):
      calls.append("download_and_prepare")

  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(tfds, "builder", FakeBuilder)
  config = load_config("configs/ve/ncsnpp_cifar10_continuous.py",
                       {"data.data_dir": str(tmp_path)})
  assert prepare(config, tmp_path / "work")["path"] == FakeBuilder.data_dir
  assert calls == [("cifar10", {"data_dir": str(tmp_path), "file_format": "array_record"}),
                   "download_and_prepare"]
  with pytest.raises(ValueError, match="nothing to prepare"):
    prepare(load_config("configs/toy.py:swiss_roll,vpsde"), tmp_path / "toy")
