"""Files for people: image grids with gutters, atomic writes."""
import numpy as np

from workflows import outputs


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
  outputs.save_npz(tmp_path / "a.npz", x=np.arange(3))
  outputs.save_json(tmp_path / "a.json", {"k": 1})
  assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.npz"]
  np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(3))
