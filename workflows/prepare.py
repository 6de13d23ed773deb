"""--mode=prepare: write the config's dataset as ArrayRecord files in data.data_dir, once.

With data.image_folder set, the folder's images are cropped and resized as the dataset's released
preprocessing does (data_sources.transforms.PREPROCESSING) to data.image_size and stored as PNGs,
labelled by subfolder, where training with the same config and data_dir reads them; data.num_workers
processes decode in parallel. Otherwise the TFDS builder downloads and prepares the dataset
(network access needed, and TensorFlow for most image sets).
"""
import pathlib
import time

import jax

import data_sources
from configs.errors import UserError
from workflows import build, outputs


def _prepare_folder(d, prepare_lib) -> dict:
  crop_resize = data_sources.transforms.crop_resize_for(d.dataset, d.image_size)
  path = prepare_lib.prepare_folder(d.image_folder, name=d.dataset, crop_resize=crop_resize,
                                    num_channels=d.num_channels, data_dir=d.data_dir or None,
                                    num_workers=d.num_workers)
  examples, classes = prepare_lib.describe(path)
  return {"path": str(path), "examples": examples, "classes": classes}


def prepare(config, workdir) -> dict:
  """Prepares config.data's dataset; returns what was written (also workdir/prepare.json)."""
  build.check_config(config)
  d = config.data
  if data_sources.is_low_dimensional(d.dataset) or d.dataset == "digits":
    raise UserError(f"data.dataset={d.dataset!r} is generated or bundled: nothing to prepare.")
  from data_sources import prepare as prepare_lib  # pylint: disable=g-import-not-at-top (tfds)
  start = time.perf_counter()
  if d.get("image_folder"):
    record = _prepare_folder(d, prepare_lib)
  elif d.dataset in data_sources.TFDS_NAMES:
    tfds_name = data_sources.TFDS_NAMES[d.dataset]
    record = {"path": prepare_lib.prepare_tfds(tfds_name, d.data_dir or None)}
  else:
    raise UserError(f"data.dataset={d.dataset!r} is prepared from local files; set "
                     "--config.data.image_folder=DIR.")
  record = {"dataset": d.dataset, "image_size": d.image_size, **record,
            "seconds": round(time.perf_counter() - start, 1)}
  if jax.process_index() == 0:
    outputs.save_json(pathlib.Path(workdir) / "prepare.json", record)
    print(f"Prepared {d.dataset} in {record['path']} ({record['seconds']} s); train with "
          f"--config.data.data_dir={d.data_dir or '(the TFDS default)'}.")
  return record
