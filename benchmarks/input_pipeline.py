"""Input pipeline throughput (examples/s) at 0, 1, 2 grain workers, against what a train step eats.

  python benchmarks/input_pipeline.py --workers 0 1 2 --batch 128 --batches 30 --train-steps 2 \
      --wait-steps 30

Two generated datasets in a temporary directory:
  arrayrecord32 -- 32x32 RGB PNGs prepared into ArrayRecord (data_sources.prepare, the format
                   TFDS CIFAR-10 also has: PNG-encoded images), read as data.dataset=cifar10;
  jpeg_folder   -- JPEGs of 96x128 pixels read straight from an image folder (decode, shorter-side
                   crop, bicubic resize to 32x32 in the pipeline).
Each pipeline applies CIFAR-10's transforms (random flips) and yields batches of --batch; timed
over --batches batches after the first (worker start-up is reported apart). Then the CIFAR-10
NCSN++ train step (configs/ve/ncsnpp_cifar10_continuous.py, full size) is timed over
--train-steps steps at --train-batch after one compiling step (on CPU its examples/s hardly
depend on the batch; at 128 it needs 24 GB of temporaries), and the ratio pipeline / step says
how many times over the pipeline feeds the step on this machine (target: >= 3).
Last, short training runs (--wait-steps steps, logged every 10) on digits (configs/digits.py:vpsde)
and on the generated set as CIFAR-10 with a reduced NCSN++ (nf 32, ch_mult 1,2,2, one block per
resolution: a fast step is the hard case) report data_wait_frac, the share of wall time the loop
waited for batches, over the log windows after the first (which holds compilation).
"""
import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from configs import load_config  # pylint: disable=wrong-import-position
from workflows import build, prepare  # pylint: disable=wrong-import-position

CIFAR = str(ROOT / "configs/ve/ncsnpp_cifar10_continuous.py")


def smooth_images(rng, n, height, width):
  """n uint8 images (n, height, width, 3) of smooth colour blobs (compress like photos)."""
  coarse = rng.integers(0, 256, (n, height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
  return np.stack([np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC))
                   for c in coarse])


def write_folder(root: pathlib.Path, images: np.ndarray, suffix: str, **save_kwargs):
  for i, image in enumerate(images):
    path = root / f"class{i % 10}" / f"{i:05d}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **save_kwargs)


def make_datasets(tmp: pathlib.Path, n: int) -> dict:
  """Config overrides of the two datasets: {name: overrides}."""
  rng = np.random.default_rng(0)
  write_folder(tmp / "png32", smooth_images(rng, n, 32, 32), ".png")
  write_folder(tmp / "jpeg", smooth_images(rng, n, 96, 128), ".jpg", quality=90)
  ready = {"data.data_dir": str(tmp / "ready")}
  start = time.perf_counter()
  prepare(load_config(CIFAR, {**ready, "data.image_folder": str(tmp / "png32")}), tmp / "work")
  print(f"prepared {n} 32x32 PNGs into ArrayRecord in {time.perf_counter() - start:.1f} s")
  return {"arrayrecord32": ready,
          "jpeg_folder": {"data.dataset": "image_folder", "data.image_folder": str(tmp / "jpeg")}}


def pipeline_rate(overrides: dict, workers: int, batch: int, batches: int) -> tuple:
  """(examples/s after the first batch, seconds to the first batch)."""
  config = load_config(CIFAR, {**overrides, "data.num_workers": workers,
                               "training.batch_size": batch})
  source = build.build_train_input(config)
  start = time.perf_counter()
  next(source)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(batches):
    next(source)
  rate = batches * batch / (time.perf_counter() - start)
  source.close()
  return rate, first


def train_step_rate(data_dir: str, batch: int, steps: int) -> float:
  """Examples/s one full-size CIFAR-10 NCSN++ train step consumes, after a compiling step."""
  import jax  # pylint: disable=g-import-not-at-top
  from workflows.train import build_trainer  # pylint: disable=g-import-not-at-top
  trainer = build_trainer(load_config(CIFAR, {"data.data_dir": data_dir,
                                              "training.batch_size": batch}))
  state = trainer.init_state()
  batches = [trainer.next_batch() for _ in range(steps + 1)]
  trainer.train_input.close()
  state, metrics = trainer.step_fn(state, batches[0], trainer.base_key)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for b in batches[1:]:
    state, metrics = trainer.step_fn(state, b, trainer.base_key)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / steps
  print(f"NCSN++ CIFAR-10 train step, batch {batch}: {seconds:.2f} s/step")
  return batch / seconds


WAIT_RUNS = {
    "digits": (str(ROOT / "configs/digits.py") + ":vpsde", {}),
    "mock_cifar10": (CIFAR, {"model.nf": 32, "model.ch_mult": (1, 2, 2), "model.num_res_blocks": 1,
                             "model.attn_resolutions": (16,)}),
}


def data_wait(name: str, data_dir: str, steps: int, workers: int, workdir: pathlib.Path) -> dict:
  """Mean data_wait_frac and steps/s over the log windows after the first of a short run."""
  import json  # pylint: disable=g-import-not-at-top
  from workflows.train import train  # pylint: disable=g-import-not-at-top
  spec, overrides = WAIT_RUNS[name]
  config = load_config(spec, {
      **overrides, "data.data_dir": data_dir, "data.num_workers": workers,
      "training.batch_size": 128, "training.n_iters": steps, "training.log_freq": 10,
      "training.snapshot_freq": steps, "training.snapshot_freq_for_preemption": steps})
  train(config, workdir / name)
  records = [json.loads(l) for l in (workdir / name / "metrics.jsonl").open()][1:]
  return {k: float(np.mean([r[k] for r in records]))
          for k in ("data_wait_frac", "data_wait_s", "steps_per_sec")}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--examples", type=int, default=2048, help="images per generated set")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--batches", type=int, default=30, help="timed batches per pipeline")
  parser.add_argument("--train-batch", type=int, default=16,
                      help="the step at 128 needs 24 GB of temporaries (XLA's memory analysis)")
  parser.add_argument("--train-steps", type=int, default=2, help="0: skip the train step")
  parser.add_argument("--wait-steps", type=int, default=30, help="0: skip the data_wait runs")
  parser.add_argument("--wait-workers", type=int, nargs="+", default=[0, 2])
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    datasets = make_datasets(pathlib.Path(tmp), args.examples)
    data_dir = datasets["arrayrecord32"]["data.data_dir"]
    rows = [(name, w, *pipeline_rate(o, w, args.batch, args.batches))
            for name, o in datasets.items() for w in args.workers]
    step = (train_step_rate(data_dir, args.train_batch, args.train_steps)
            if args.train_steps else float("nan"))
    waits = [(name, w, data_wait(name, data_dir, args.wait_steps, w, pathlib.Path(tmp) / f"w{w}"))
             for name in (WAIT_RUNS if args.wait_steps else ()) for w in args.wait_workers]
  print(f"\n| dataset | workers | examples/s | first batch (s) | x train step ({step:.1f} ex/s) |")
  print("| --- | ---: | ---: | ---: | ---: |")
  for name, workers, rate, first in rows:
    print(f"| {name} | {workers} | {rate:.0f} | {first:.1f} | {rate / step:.0f} |")
  print("\n| run (batch 128) | workers | steps/s | data_wait_s | data_wait_frac |")
  print("| --- | ---: | ---: | ---: | ---: |")
  for name, workers, w in waits:
    print(f"| {name} | {workers} | {w['steps_per_sec']:.2f} | {w['data_wait_s']:.4f} | "
          f"{w['data_wait_frac']:.2%} |")


if __name__ == "__main__":
  main()
