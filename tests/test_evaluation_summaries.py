"""TensorBoard summaries without TensorFlow: what we write, tensorboard's own reader reads back."""
import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from summaries import SummaryWriter, png_bytes


def read_events(logdir) -> EventAccumulator:
  accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
  accumulator.Reload()
  return accumulator


def test_scalars_come_back_from_tensorboards_reader(tmp_path):
  values = {0: 31.5, 10: 12.25, 20: 7.125}  # exactly representable in float32
  with SummaryWriter(tmp_path) as writer:
    for step, value in values.items():
      writer.scalar("eval/fid", value, step)
      writer.scalar("eval/inception_score", value / 4, step)
  events = read_events(tmp_path)
  assert sorted(events.Tags()["scalars"]) == ["eval/fid", "eval/inception_score"]
  assert [(e.step, e.value) for e in events.Scalars("eval/fid")] == list(values.items())
  quarters = [e.value for e in events.Scalars("eval/inception_score")]
  assert quarters == [v / 4 for v in values.values()]


@pytest.mark.parametrize("channels", [1, 3])
def test_image_grids_come_back_pixel_for_pixel(tmp_path, channels):
  grid = np.random.default_rng(channels).integers(0, 256, (16, 24, channels), dtype=np.uint8)
  with SummaryWriter(tmp_path) as writer:
    writer.image("samples", grid, step=5)
  (event,) = read_events(tmp_path).Images("samples")
  assert (event.step, event.height, event.width) == (5, 16, 24)
  decoded = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
  np.testing.assert_array_equal(decoded.reshape(grid.shape), grid)


def test_non_uint8_images_are_rejected():
  with pytest.raises(ValueError, match="uint8"):
    png_bytes(np.zeros((4, 4, 3), np.float32))


def test_writing_imports_no_tensorflow(tmp_path):
  code = (f"from summaries import SummaryWriter; w = SummaryWriter({str(tmp_path)!r}); "
          "w.scalar('a', 1.0, 0); w.close(); import sys; assert 'tensorflow' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=pathlib.Path(__file__).parent.parent)
