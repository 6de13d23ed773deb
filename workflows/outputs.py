"""Files a run writes for people: arrays (.npz), scatter plots and image grids (.png), JSON.

--mode=sample writes WORKDIR/samples/NAME.npz, NAME.png and NAME.json (the resolved
config.sampling), NAME from `sample_output_name`: the task and the sampler, e.g.
`unconditional_dpm_solver_2m_10`, `unconditional_ode_dopri5`, `inpaint_replacement_pc_1000`,
`unconditional_cfg_all_scale1_pc_1000`, `inpaint_classifier_class3_scale1_replacement_pc_100`.
Nothing is overwritten: a name already used gets the suffix _2, _3, ...
"""
import io
import json
import math
import pathlib

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fileio import write_bytes_atomic, write_npz_atomic, write_png, write_text_atomic
from workflows import build


SAMPLES_DIR = "samples"  # under the workdir
OUTPUT_SUFFIXES = (".npz", ".png", ".json")


def _number(value: float) -> str:
  return f"{value:g}"


def sample_output_name(sampling) -> str:
  """The name of config.sampling's outputs: <task>[_<guidance>][_<inverse>]_<method>_<steps>, with
  guidance = the guidance method, class (class{label}, or all) and scale, inverse = the inverse
  method (inpaint / colorize / super_resolution), `decoded` or `interpolated{K}` from given
  latents, and steps = the ODE solver for `ode`."""
  s, parts = sampling, [sampling.task]
  g = s.guidance
  if g.method != "none":
    parts += [g.method, "all" if g.class_label < 0 else f"class{g.class_label}",
              f"scale{_number(g.scale)}"]
  if s.task != "unconditional":
    parts.append(s.inverse.method)
  if s.latents_from:
    parts.append(f"interpolated{s.interpolate}" if s.interpolate else "decoded")
  parts += [s.method, s.ode_solver if s.method == "ode" else str(s.num_steps)]
  return "_".join(parts)


def output_file(stem: pathlib.Path, suffix: str) -> pathlib.Path:
  """stem + suffix (names may hold dots, e.g. scale1.5: never Path.with_suffix)."""
  return stem.parent / (stem.name + suffix)


def _stems(directory: pathlib.Path, name: str):
  yield directory / name
  for k in range(2, 1_000_000):
    yield directory / f"{name}_{k}"


def claim_stem(directory: pathlib.Path, name: str, settings: dict) -> pathlib.Path:
  """directory/NAME, or NAME_2, NAME_3, ... if that is taken: the first stem with none of .npz /
  .png / .json written. Claims it by writing NAME.json (`settings`) exclusively, so that runs in
  parallel never share a stem."""
  text = json.dumps(settings, indent=2, sort_keys=True) + "\n"
  for stem in _stems(directory, name):
    if any(output_file(stem, suffix).exists() for suffix in OUTPUT_SUFFIXES):
      continue
    try:
      write_text_atomic(output_file(stem, ".json"), text, overwrite=False)
    except FileExistsError:
      continue
    return stem
  raise FileExistsError(f"{directory}: no free name for {name}")


def sample_output_stem(workdir, sampling) -> pathlib.Path:
  """WORKDIR/samples/NAME (sample_output_name), claimed with the resolved sampling settings."""
  return claim_stem(pathlib.Path(workdir) / SAMPLES_DIR, sample_output_name(sampling),
                    sampling.to_dict())


def latest_sample_output(workdir, sampling) -> pathlib.Path | None:
  """The .npz of the newest run of these sampling settings' name (None if there is none)."""
  latest = None
  for stem in _stems(pathlib.Path(workdir) / SAMPLES_DIR, sample_output_name(sampling)):
    if not output_file(stem, ".json").exists():
      return latest
    if output_file(stem, ".npz").exists():
      latest = output_file(stem, ".npz")
  return latest


def write_samples(config, workdir, arrays: dict, draw_png=None) -> pathlib.Path:
  """The writer of every sampling task: claims sample_output_stem(workdir, config.sampling) (its
  .json), writes `arrays` to its .npz and the figure to its .png: draw_png(path), by default
  `samples_figure`. Returns the .npz path."""
  stem = sample_output_stem(workdir, config.sampling)
  write_npz_atomic(output_file(stem, ".npz"), **arrays)
  png = output_file(stem, ".png")
  if draw_png is None:
    samples_figure(config, png, arrays)
  else:
    draw_png(png)
  return output_file(stem, ".npz")


def samples_figure(config, path, arrays: dict) -> None:
  """Samples (arrays["samples"], without arrays["failed"]) beside the test data (points), or an
  image grid: one row per class when arrays holds labels of every class (class_label -1)."""
  x, failed = arrays["samples"], arrays["failed"]
  if not build.data_info(config).is_image:
    scatter_png(path, x[~failed], build.load_split(config, "test"))
  elif "labels" in arrays and config.sampling.guidance.class_label < 0:
    tiles, cols = rows_by_class(x, arrays["labels"], config.data.num_classes)
    grid_png(path, tiles, config.data.centered, cols=cols, tile=64)
  else:
    grid_png(path, x[:64], config.data.centered)


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


def rows_by_class(images: np.ndarray, labels: np.ndarray, num_classes: int,
                  per_class: int = 10) -> tuple[np.ndarray, int]:
  """Tiles for an image_grid with one row per class: (num_classes * cols, H, W, C) with row c
  holding the first samples of class c (blank, i.e. white, where a class has fewer), and cols."""
  cols = max(1, min(per_class, max(int(np.sum(labels == c)) for c in range(num_classes))))
  blank = np.ones(images.shape[1:], images.dtype)  # white in [0, 1] and in [-1, 1]
  tiles = []
  for c in range(num_classes):
    row = list(images[labels == c][:cols])
    tiles += row + [blank] * (cols - len(row))
  return np.stack(tiles), cols


def grid_png(path, images: np.ndarray, centered: bool, cols: int | None = None,
             tile: int = 128) -> None:
  """image_grid of model-space images, tiles upscaled to about `tile` pixels, to a PNG."""
  write_png(path, image_grid(images, centered, scale=max(1, tile // images.shape[1]), cols=cols))
