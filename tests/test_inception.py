"""FID Inception: our flax network vs pytorch-fid's, same random weights; resize; weight files."""
import os
import pathlib
import subprocess
import sys

import flax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import torch_reference
from evaluation import cache, inception, inception_weights, preprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import convert_inception_weights  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="module")
def torch_nets():
  return torch_reference.random_pytorch_fid_inception(seed=0)


@pytest.fixture(scope="module")
def state_dict(torch_nets):
  return torch_reference.state_dict_numpy(torch_nets[0])


@pytest.fixture(scope="module")
def inception_fn(state_dict):
  return inception.make_inception_fn(inception_weights.torch_to_flax_variables(state_dict), "unit")


def assert_close_relative(ours, reference, rtol=1e-4, name=""):
  scale = np.abs(reference).max()
  assert scale > 0.1, f"{name}: degenerate reference"
  np.testing.assert_allclose(ours, reference, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("size", [32, 299])
def test_features_and_logits_match_pytorch_fid(torch_nets, inception_fn, size):
  images = np.random.default_rng(size).random((2, size, size, 3), dtype=np.float32)
  ours = inception_fn(images)
  for name, got, expected in zip(inception.InceptionOutputs._fields, ours,
                                 torch_reference.torch_outputs(*torch_nets, images)):
    assert got.shape == expected.shape
    assert_close_relative(got, expected, name=name)
  assert not np.allclose(ours.pool[0], ours.pool[1], rtol=0.05)  # the images are told apart


def test_conversion_maps_every_tensor_onto_its_variable(state_dict):
  variables = inception_weights.torch_to_flax_variables(state_dict)
  flat = flax.traverse_util.flatten_dict(variables)
  counters = [k for k in state_dict if k.endswith("num_batches_tracked")]
  assert len(flat) == len(state_dict) - len(counters) == 472
  bn = ("Mixed_7c", "branch3x3dbl_3b", "bn")
  torch_bn = "Mixed_7c.branch3x3dbl_3b.bn."
  for ours, theirs in (("mean", "running_mean"), ("var", "running_var")):
    assert np.array_equal(flat[("batch_stats",) + bn + (ours,)], state_dict[torch_bn + theirs])
  assert not np.allclose(state_dict[torch_bn + "running_var"], 1.0)  # non-default statistics
  kernel = flat[("params", "Mixed_6b", "branch7x7_2", "conv", "kernel")]
  torch_kernel = state_dict["Mixed_6b.branch7x7_2.conv.weight"]  # (O, I, 1, 7)
  assert kernel.shape == (1, 7, 128, 128) and kernel[0, 3, 5, 9] == torch_kernel[9, 5, 0, 3]


def test_conversion_rejects_extra_missing_and_misshapen_tensors(state_dict):
  with pytest.raises(KeyError, match="no flax counterpart"):
    inception_weights.torch_to_flax_variables({**state_dict, "AuxLogits.fc.scale": np.zeros(3)})
  with pytest.raises(ValueError, match="unexpected"):
    inception_weights.torch_to_flax_variables({**state_dict, "AuxLogits.fc.weight": np.zeros(3)})
  missing = {k: v for k, v in state_dict.items() if k != "Mixed_5b.branch_pool.bn.running_var"}
  with pytest.raises(ValueError, match="missing"):
    inception_weights.torch_to_flax_variables(missing)
  with pytest.raises(ValueError, match="shape"):
    inception_weights.torch_to_flax_variables({**state_dict, "fc.bias": np.zeros(1000)})


@pytest.mark.parametrize("in_size,out_size", [(8, 299), (32, 299), (299, 299), (400, 299),
                                              (5, 7), (16, 8), (13, 3)])
def test_resize_is_torch_bilinear_without_antialiasing(in_size, out_size):
  width = in_size + 1 if in_size == 5 else in_size  # one non-square case
  images = np.random.default_rng(in_size).random((2, in_size, width, 3), dtype=np.float32)
  expected = F.interpolate(torch_reference.nhwc_to_torch(images), size=(out_size, out_size),
                           mode="bilinear", align_corners=False).numpy().transpose(0, 2, 3, 1)
  got = np.asarray(preprocess.resize_bilinear(images, out_size))
  np.testing.assert_allclose(got, expected, atol=5e-7)


def test_bilinear_rows_are_interpolation_weights():
  weights = preprocess.bilinear_matrix(4, 8)  # 2x upsampling: 1/4, 3/4 mixes, clamped edges
  np.testing.assert_allclose(weights.sum(axis=1), 1.0)
  np.testing.assert_allclose(weights[0], [1, 0, 0, 0])
  np.testing.assert_allclose(weights[1], [0.75, 0.25, 0, 0])
  np.testing.assert_allclose(weights[2], [0.25, 0.75, 0, 0])
  np.testing.assert_allclose(weights[7], [0, 0, 0, 1])


def test_input_ranges_are_explicit_and_agree():
  uint8 = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
  unit = uint8.astype(np.float32) / 255.0
  reference = np.asarray(inception.inception_input(unit, "unit"))
  for images, input_range in ((uint8, "uint8"), (2.0 * unit - 1.0, "symmetric")):
    np.testing.assert_allclose(inception.inception_input(images, input_range), reference, atol=1e-6)
  assert reference.shape == (2, 299, 299, 3) and reference.min() >= -1 and reference.max() <= 1
  with pytest.raises(ValueError, match="does not fit"):
    inception.inception_input(uint8, "unit")
  with pytest.raises(ValueError, match="does not fit"):
    inception.inception_input(unit, "uint8")
  with pytest.raises(ValueError, match="expected one of"):
    inception.inception_input(unit, "zero_one")
  with pytest.raises(ValueError, match="expected one of"):
    inception.make_inception_fn({}, "zero_one")  # before anything is placed or compiled


def test_grey_images_are_repeated_to_rgb():
  grey = np.random.default_rng(1).random((1, 8, 8, 1), dtype=np.float32)
  np.testing.assert_array_equal(inception.inception_input(grey, "unit"),
                                inception.inception_input(np.repeat(grey, 3, axis=-1), "unit"))


def test_missing_weights_say_what_to_download_and_where(tmp_path, monkeypatch):
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
  monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
  with pytest.raises(FileNotFoundError) as err:
    inception_weights.load_inception_variables()
  assert inception_weights.WEIGHTS_URL in str(err.value)
  assert str(tmp_path / "cache" / inception_weights.PTH_NAME) in str(err.value)


def test_pth_and_converted_safetensors_give_the_same_variables(tmp_path, monkeypatch, torch_nets,
                                                               state_dict):
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
  pth = tmp_path / inception_weights.PTH_NAME
  torch.save(torch_nets[0].state_dict(), pth)
  convert_inception_weights.main([])  # finds the .pth in the cache, writes the safetensors beside
  converted = tmp_path / inception_weights.SAFETENSORS_NAME
  assert inception_weights.find_weights() == converted  # preferred over the .pth
  from_pth, from_st = (
      flax.traverse_util.flatten_dict(inception_weights.load_inception_variables(p))
      for p in (pth, converted))
  assert from_pth.keys() == from_st.keys()
  assert all(np.array_equal(from_pth[k], from_st[k]) for k in from_pth)
  # Reading the safetensors file imports no torch.
  code = ("import sys; from evaluation import inception_weights as w; "
          f"w.load_inception_variables({str(converted)!r}); assert 'torch' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                 env=dict(os.environ, JAX_PLATFORMS="cpu"))


@pytest.mark.parametrize("in_size,out_size", [(512, 299), (32, 299), (7, 5)])
def test_bilinear_weights_are_torchs_bit_for_bit(in_size, out_size):
  basis = np.eye(in_size, dtype=np.float32)[:, None, :, None].repeat(2, axis=3)  # (I, 1, I, 2)
  torch_weights = F.interpolate(torch.from_numpy(basis), size=(out_size, 2), mode="bilinear",
                                align_corners=False).numpy()[:, 0, :, 0].T  # (O, I)
  np.testing.assert_array_equal(preprocess.bilinear_matrix(in_size, out_size), torch_weights)
