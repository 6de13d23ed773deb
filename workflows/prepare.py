"""--mode=prepare: write the config's dataset as ArrayRecord files in data.data_dir, once.

What is written is the dataset's Dataset.prepare (data_sources/registry.py). With data.image_folder
set, the folder's images are cropped and resized as the dataset's released preprocessing does to
data.image_size and stored as PNGs, labelled by subfolder, where training with the same config and
data_dir reads them; data.num_workers processes decode in parallel. Otherwise a TFDS set's builder
downloads and prepares it (network access needed, and TensorFlow for most image sets).
"""
import pathlib
import time

import jax

import data_sources
import fileio
from workflows import build


def prepare(config, workdir) -> dict:
  """Prepares config.data's dataset; returns what was written (also workdir/prepare.json)."""
  build.check_config(config)
  d = config.data
  dataset = data_sources.get_dataset(d.dataset)
  start = time.perf_counter()
  with build.section_keys("data"):
    record = dataset.prepare(num_workers=d.num_workers, **build.dataset_args(d))
  record = {"dataset": d.dataset, "image_size": d.image_size, **record,
            "seconds": round(time.perf_counter() - start, 1)}
  if jax.process_index() == 0:
    fileio.write_json_atomic(pathlib.Path(workdir) / "prepare.json", record)
    print(f"Prepared {d.dataset} in {record['path']} ({record['seconds']} s); train with "
          f"--config.data.data_dir={d.data_dir or '(the TFDS default)'}.")
  return record
