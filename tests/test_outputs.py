"""Files for people: image grids with gutters (one row per class), atomic writes with the
umask's permissions, sample outputs named by task and sampler that never overwrite each other."""
import json
import os
import stat

import numpy as np
import pytest

import fileio
from configs import load_config
from workflows import outputs, sample as sample_mode

GMM = "configs/gmm_analytic.py:vpsde"


def test_image_grid_tiles_with_white_gutters():
  images = np.stack([np.full((2, 2, 1), v, np.float32) for v in (0.0, 0.5, 1.0)])  # [0, 1]
  grid = outputs.image_grid(images, centered=False)
  assert grid.shape == (5, 5, 1)  # 2 x 2 tiles of 2 x 2 pixels, one gutter pixel between
  expected = np.full((5, 5), 255, np.uint8)
  expected[:2, :2], expected[:2, 3:], expected[3:, :2] = 0, 128, 255
  np.testing.assert_array_equal(grid[..., 0], expected)
  wide = outputs.image_grid(images, centered=True, scale=2, cols=3)
  assert wide.shape == (4, 3 * 4 + 2, 1) and wide[0, 4, 0] == 255  # gutter after the first tile
  np.testing.assert_array_equal(wide[:, :4, 0], 128)  # 0 in centered [-1, 1] space is mid-gray


def test_npz_and_json_writes_leave_no_temporary_files(tmp_path):
  fileio.write_npz_atomic(tmp_path / "a.npz", x=np.arange(3))
  fileio.write_json_atomic(tmp_path / "a.json", {"k": 1})
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.npz"]
  np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(3))


def test_atomic_writes_are_readable_as_the_umask_allows_and_exclusive_writes_keep_files(tmp_path):
  """mkstemp leaves 0600: written files get 0666 & ~umask (0644 under the usual 022), as open()
  gives; overwrite=False never replaces an existing file."""
  previous = os.umask(0o022)
  try:
    fileio.write_json_atomic(tmp_path / "a.json", {"k": 1})
    fileio.write_text_atomic(tmp_path / "b.txt", "b", overwrite=False)
    os.umask(0o077)
    fileio.write_bytes_atomic(tmp_path / "c.bin", b"c")
  finally:
    os.umask(previous)
  modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
  assert modes == {"a.json": 0o644, "b.txt": 0o644, "c.bin": 0o600}, modes
  with pytest.raises(FileExistsError):
    fileio.write_text_atomic(tmp_path / "b.txt", "new", overwrite=False)
  assert (tmp_path / "b.txt").read_text() == "b" and len(list(tmp_path.iterdir())) == 3


def test_guided_grid_has_one_row_per_class():
  """Samples of class c (labels i % 10, as guidance.class_label=-1 draws them) in row c, blank
  where a class has fewer samples than the row is wide."""
  labels = np.arange(23) % 10  # classes 0-2 have 3 samples, the others 2
  images = (labels / 10.0)[:, None, None, None] * np.ones((23, 2, 2, 1), np.float32)  # [0, 1)
  tiles, cols = outputs.rows_by_class(images, labels, num_classes=10)
  grid = outputs.image_grid(tiles, centered=False, cols=cols)
  assert cols == 3 and grid.shape == (10 * 3 - 1, 3 * 3 - 1, 1)
  for c in range(10):
    row = grid[3 * c:3 * c + 2, :, 0]
    np.testing.assert_array_equal(row[:, :2], round(c / 10 * 255))
    np.testing.assert_array_equal(row[:, 6:], round(c / 10 * 255) if c < 3 else 255)


def test_output_names_say_the_task_and_sampler():
  config = load_config(GMM)
  name = lambda **sampling: outputs.sample_output_name(
      load_config(GMM, {f"sampling.{k}": v for k, v in sampling.items()}).sampling)
  assert name(method="dpm_solver_2m", num_steps=10) == "unconditional_dpm_solver_2m_10"
  assert name(method="ode") == f"unconditional_ode_{config.sampling.ode_solver}"
  assert name(task="inpaint", method="pc", num_steps=1000) == "inpaint_replacement_pc_1000"
  assert name(task="inpaint", **{"inverse.method": "replacement"}, method="repaint",
              num_steps=50) == "inpaint_replacement_repaint_50"
  assert name(task="super_resolution", **{"inverse.method": "pigdm"}, method="ddim",
              num_steps=20) == "super_resolution_pigdm_ddim_20"
  assert name(**{"guidance.method": "classifier"}, method="pc", num_steps=1000) == (
      "unconditional_classifier_all_scale1_pc_1000")
  assert name(**{"guidance.method": "classifier"}, method="heun", num_steps=18) == (
      "unconditional_classifier_all_scale1_heun_18")
  assert name(**{"guidance.method": "cfg", "guidance.class_label": 3, "guidance.scale": 2.0},
              method="dpm_solver_sde_2m", num_steps=20) == (
      "unconditional_cfg_class3_scale2_dpm_solver_sde_2m_20")
  assert name(**{"guidance.method": "cfg", "guidance.class_label": 1, "guidance.scale": 2.5},
              method="ddim", num_steps=20) == "unconditional_cfg_class1_scale2.5_ddim_20"
  assert name(task="inpaint", **{"guidance.method": "cfg"}, method="dpm_solver_sde_2m",
              num_steps=20) == "inpaint_cfg_all_scale1_replacement_dpm_solver_sde_2m_20"
  assert name(**{"guidance.method": "none", "guidance.class_label": 3}, method="ddim",
              num_steps=20) == "unconditional_ddim_20"  # no guidance: its settings unnamed


def test_sample_tasks_in_sequence_keep_every_output(tmp_path, capsys):
  """Two unconditional runs and an inpainting in one workdir: three sets of .npz / .png / .json,
  the second run suffixed _2, each path printed; the .json holds the sampling settings."""
  small = {"sampling.method": "pc", "sampling.num_steps": 5, "sampling.num_samples": 8,
           "sampling.batch_size": 8, "sampling.inverse.num_inputs": 2,
           "sampling.inverse.samples_per_input": 4}
  first = sample_mode(load_config(GMM, small), tmp_path)
  second = sample_mode(load_config(GMM, small), tmp_path)
  inpaint = load_config(GMM, {**small, "sampling.task": "inpaint"})
  inpainted = sample_mode(inpaint, tmp_path)
  out = tmp_path / "samples"
  stems = ["unconditional_pc_5", "unconditional_pc_5_2", "inpaint_replacement_pc_5"]
  assert sorted(p.name for p in out.iterdir()) == sorted(
      stem + suffix for stem in stems for suffix in (".json", ".npz", ".png"))
  printed = capsys.readouterr().out
  assert all(str(out / f"{stem}.npz") in printed for stem in stems), printed
  for stem, arrays in zip(stems, (first, second, inpainted)):  # what sample returns is written
    with np.load(out / f"{stem}.npz") as written:
      assert sorted(written.files) == sorted(arrays), (stem, written.files, sorted(arrays))
      for key in written.files:
        np.testing.assert_array_equal(written[key], arrays[key])
  assert sorted(first) == ["failed", "nfe", "samples"] and first["samples"].shape == (8, 2)
  assert sorted(inpainted) == ["failed", "inputs", "masks", "nfe", "observations", "samples"]
  assert inpainted["samples"].shape == (2, 4, 2)
  assert json.loads((out / "inpaint_replacement_pc_5.json").read_text()) == json.loads(
      json.dumps(inpaint.sampling.to_dict()))
  assert outputs.latest_sample_output(tmp_path, inpaint.sampling) == (
      out / "inpaint_replacement_pc_5.npz")
  assert outputs.latest_sample_output(tmp_path, load_config(GMM, small).sampling) == (
      out / "unconditional_pc_5_2.npz")
