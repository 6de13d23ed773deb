"""--mode=import: released weights -> a workdir that train, sample and likelihood then use.

  python main.py --mode=import --config=configs/ve/ncsnpp_cifar10_continuous.py --workdir=WD \
      --config.eval.import_path=.../checkpoint_24

`eval.import_path` is either a score_sde `checkpoint_N` file (the released JAX code's; params,
EMA params, Adam state and step: training continues from it; checkpoint_import.score_sde) or a
diffusers NCSN++ folder (`google/ncsnpp-*`, a UNet2DModel or its ScoreSdeVePipeline; weights
only: step 0 and a fresh optimizer; checkpoint_import.diffusers_ncsnpp). A folder is read as
diffusers, a file as score_sde, so one mode serves both and the command stays the same.

The workdir gets what --mode=train would write (config.json and an orbax checkpoint at the
imported step), built in a hidden sibling folder and renamed into place: it is complete or
absent, never half-written. An import never writes into a workdir that holds anything.
"""
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp

import fileio
from checkpoint_import import diffusers_ncsnpp, score_sde
from checkpoint_import.trees import check_fits
from configs.errors import MissingFileError, UserError
from training import checkpoints
from training.state import TrainState, create_train_state
from workflows import build


def _flag(key: str, value) -> str:
  return f'--config.{key}="{value}"' if isinstance(value, tuple) else f"--config.{key}={value}"


def _config_value(config, key: str):
  section, leaf = key.split(".")
  value = config[section][leaf]
  return tuple(value) if isinstance(value, list) else value


def _check_config_matches(config, required: dict, source: str) -> None:
  """Raises ValueError listing every flag that makes config equal `required`."""
  wrong = {k: v for k, v in required.items() if _config_value(config, k) != v}
  if wrong:
    flags = " ".join(_flag(k, v) for k, v in wrong.items())
    has = ", ".join(f"{k}={_config_value(config, k)!r}" for k in wrong)
    raise UserError(f"{source} needs other config values; add {flags} (the config has {has}). "
                     "The google/ncsnpp-* models' configs are listed in "
                     "checkpoint_import/diffusers_ncsnpp.py.")


def _abstract_state(config):
  """(the ShapeDtypeStructs of the TrainState the config builds, its optimizer)."""
  sde = build.build_sde(config)
  optimizer = build.build_optimizer(config)
  init = build.state_initializer(config, build.build_score_model(config, sde), optimizer)
  return jax.eval_shape(init, jax.random.key(0)), optimizer


def _from_diffusers(path: pathlib.Path, config) -> TrainState:
  """Weights only: EMA params = params, a fresh optimizer, step 0."""
  numbered = sorted((f for f in path.glob("checkpoint_*") if f.name[11:].isdigit()),
                    key=lambda f: int(f.name[11:]))
  if numbered and not (path / "config.json").is_file():
    raise MissingFileError(f"{path} is a folder of score_sde checkpoints; pass one of its files, "
                            f"e.g. --config.eval.import_path={numbered[-1]}.")
  unet, weights, scheduler = diffusers_ncsnpp.read_model(path)
  diffusers_ncsnpp.check_layout(unet, str(path))
  _check_config_matches(config, diffusers_ncsnpp.required_config(unet, scheduler), str(path))
  params = diffusers_ncsnpp.convert_weights(unet, weights)
  abstract, optimizer = _abstract_state(config)
  check_fits(params, abstract.params, str(path))
  params = jax.tree.map(lambda x, s: jnp.asarray(x, s.dtype), params, abstract.params)
  return create_train_state(params, optimizer)


def _from_score_sde(path: pathlib.Path, config) -> TrainState:
  released = score_sde.read_checkpoint(path)
  return score_sde.to_train_state(released, _abstract_state(config)[0], str(path))


def _write_workdir(config, workdir: pathlib.Path, state: TrainState) -> None:
  """config.json + the orbax checkpoint, built beside workdir and renamed into place."""
  staging = workdir.with_name(f".{workdir.name}.importing")
  if staging.exists():
    shutil.rmtree(staging)  # left by an interrupted import
  try:
    fileio.write_text_atomic(staging / "config.json", config.to_json_best_effort(indent=2))
    manager = checkpoints.checkpoint_manager(staging, snapshot_freq=config.training.snapshot_freq,
                                             max_to_keep=config.training.max_to_keep)
    try:
      checkpoints.save(manager, state)
    finally:  # an async save left running would fail later, printing into whatever runs then
      try:
        manager.wait_until_finished()
      finally:
        manager.close()
    os.replace(staging, workdir)  # onto a missing or empty directory: atomic
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def import_checkpoint(config, workdir) -> TrainState:
  """Imports config.eval.import_path into a new workdir; returns the TrainState written."""
  build.check_config(config)
  path, workdir = pathlib.Path(config.eval.import_path), pathlib.Path(workdir)
  if not config.eval.import_path:
    raise UserError("--mode=import needs --config.eval.import_path=PATH (a score_sde "
                     "checkpoint_N file or a diffusers NCSN++ folder).")
  if workdir.exists() and not workdir.is_dir():
    raise UserError(f"--workdir={workdir} is a file; an import writes a new folder there: pass "
                    "the path of a new (or empty) folder.")
  if workdir.exists() and any(workdir.iterdir()):
    raise UserError(f"--workdir={workdir} is not empty; import into a new workdir (an "
                          "import never overwrites a run).")
  if not build.build_score_model(config, build.build_sde(config)).has_parameters:
    raise UserError(f"model.name={config.model.name!r} has no parameters: nothing to import.")
  state = (_from_diffusers if path.is_dir() else _from_score_sde)(path, config)
  _write_workdir(config, workdir.resolve(), state)
  if jax.process_index() == 0:
    print(f"Imported {path} (step {int(state.step)}) into {workdir}.")
  return state
