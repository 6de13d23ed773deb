"""TensorBoard event files without TensorFlow: scalars and images.

Built on the pieces that the `tensorboard` package itself ships and that need no TensorFlow: its
`EventFileWriter` (TFRecord-framed event files, through tensorboard's own gfile stub) and its
`Event` / `Summary` protos. We write the classic summary values (`simple_value` scalars, PNG
`Summary.Image`) that TensorBoard and its `EventAccumulator` read. Alternatives considered:
`tensorboard.summary.Writer` is marked experimental and writes scalars only; tensorboardX would
be one more dependency doing the same with a copy of these protos; `torch.utils.tensorboard`
needs torch.

Multi-host runs should write from one process only (e.g. `jax.process_index() == 0`).
"""
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from fileio import png_bytes


class SummaryWriter:
  """Writes scalars and images to an event file in `logdir` (created if missing).

  Use as a context manager, or call `close()`; `flush()` makes what was written readable now.
  """

  def __init__(self, logdir, flush_secs: float = 30.0):
    self._writer = EventFileWriter(str(logdir), flush_secs=flush_secs)

  def _write(self, step: int, value: summary_pb2.Summary.Value) -> None:
    self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                           summary=summary_pb2.Summary(value=[value])))

  def scalar(self, tag: str, value: float, step: int) -> None:
    self._write(step, summary_pb2.Summary.Value(tag=tag, simple_value=float(value)))

  def image(self, tag: str, image: np.ndarray, step: int) -> None:
    """One uint8 image (H, W[, C]); for samples pass a grid, e.g. `workflows.outputs.image_grid`."""
    image = np.asarray(image)
    encoded = summary_pb2.Summary.Image(
        height=image.shape[0], width=image.shape[1],
        colorspace=image.shape[2] if image.ndim == 3 else 1, encoded_image_string=png_bytes(image))
    self._write(step, summary_pb2.Summary.Value(tag=tag, image=encoded))

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()

  def __enter__(self) -> "SummaryWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
