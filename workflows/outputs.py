"""Files a run writes for people: arrays (.npz), scatter plots and image grids (.png), JSON."""
import io
import json
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from evaluation.cache import write_bytes_atomic, write_text_atomic


def save_npz(path, **arrays) -> None:
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  write_bytes_atomic(path, buf.getvalue())


def save_json(path, record: dict) -> None:
  write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def scatter_png(path, points: np.ndarray, reference: np.ndarray | None = None, title: str = ""):
  """2-D scatter of points (N, 2), beside reference data when given."""
  panels = [("samples", points)] + ([("data", reference)] if reference is not None else [])
  fig = Figure(figsize=(4 * len(panels), 4))  # no pyplot: no global backend state
  FigureCanvasAgg(fig)
  axes = fig.subplots(1, len(panels), squeeze=False)
  lim = np.percentile(np.abs(np.concatenate([p for _, p in panels])), 99.5) * 1.1
  for ax, (name, pts) in zip(axes[0], panels):
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=f"{name} {title}".strip())
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
  write_bytes_atomic(path, buf.getvalue())


def image_grid(images: np.ndarray, centered: bool, scale: int = 1, cols: int | None = None,
               gutter: int = 1) -> np.ndarray:
  """(N, H, W, C) model-space images -> one uint8 grid, tiles nearest-upscaled by `scale` and
  separated by `gutter` white pixels: (rows (H s + g) - g, cols (W s + g) - g, C). `cols`
  defaults to a square layout."""
  pixels = (images + 1.0) / 2.0 if centered else images
  pixels = np.clip(np.round(pixels * 255.0), 0, 255).astype(np.uint8)
  pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
  n, h, w, c = pixels.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  grid = np.full((rows * (h + gutter) - gutter, cols * (w + gutter) - gutter, c), 255, np.uint8)
  for i, im in enumerate(pixels):
    top, left = (i // cols) * (h + gutter), (i % cols) * (w + gutter)
    grid[top:top + h, left:left + w] = im
  return grid


def grid_png(path, images: np.ndarray, centered: bool) -> None:
  grid = image_grid(images, centered, scale=max(1, 128 // images.shape[1]))
  buf = io.BytesIO()
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(buf, format="PNG")
  write_bytes_atomic(path, buf.getvalue())
