"""Config files; `load_config("configs/toy.py:swiss_roll,vpsde")` loads one as main.py's --config does."""
import importlib.util
import json
import pathlib

from configs.errors import MissingFileError, UserKeyError


RECORDED = str(pathlib.Path(__file__).with_name("recorded.py"))  # a workdir's config.json

# What defines a trained model: a workdir's checkpoints fit only configs that agree on these
# (sections and keys; sampling, training length and evaluation settings may differ).
MODEL_SECTIONS = ("sde", "model")
MODEL_KEYS = ("training.continuous", "data.image_size", "data.num_channels", "data.centered",
              "data.num_classes")
NOT_MODEL_KEYS = ("model.dtype", "model.dropout")  # compute precision, training regularisation

# Keys that moved (old -> new); an old key is an error naming the new one.
MOVED_KEYS = {"training.sde": "sde.name", "model.ema_rate": "training.ema_rate",
              **{f"model.{k}": f"sde.{k}" for k in ("sigma_min", "sigma_max", "beta_min", "beta_max",
                                                    "num_scales")},
              "sampling.class_label": "sampling.guidance.class_label",
              "sampling.guidance_scale": "sampling.guidance.scale",
              "sampling.classifier_workdir": "sampling.guidance.classifier_workdir",
              "sampling.inverse_method": "sampling.inverse.method",
              "sampling.dps_scale": "sampling.inverse.scale",
              **{f"sampling.{k}": f"sampling.inverse.{k}" for k in (
                  "mask", "mask_box_size", "mask_box_top", "mask_box_left", "mask_fraction",
                  "mask_seed", "mask_path", "observed_coords", "sr_factor", "inputs_from",
                  "inputs_path", "num_inputs", "samples_per_input", "observation_noise")}}


def check_moved_keys(keys) -> None:
  """Raises KeyError for any old config key (e.g. 'model.sigma_max') among `keys`, naming its
  new place."""
  for key in keys:
    if key in MOVED_KEYS:
      raise UserKeyError(f"Config key {key!r} has moved to {MOVED_KEYS[key]!r}; use "
                         f"--config.{MOVED_KEYS[key]}=... instead.")


def check_solver_overrides(config, keys) -> None:
  """One line for an overridden sampling.X (keys: dotted) that is an option of other solvers
  than sampling.method, or of other grids than sampling.grid, naming those that take it."""
  from samplers import grids, solvers  # pylint: disable=import-outside-toplevel (configs load first)
  options = [k.split(".", 1)[1] for k in keys if k.startswith("sampling.") and k.count(".") == 1]
  solvers.check_option_keys(config.sampling.method, options)
  grids.check_grid_option_keys(config.sampling.grid, options)


def _leaves(tree, prefix: str = "") -> dict:
  """{dotted key: value} of a ConfigDict or nested dicts (a config's JSON)."""
  leaves = {}
  for key, value in tree.items():
    leaves.update(_leaves(value, f"{prefix}{key}.") if hasattr(value, "items")
                  else {prefix + key: value})
  return leaves


def flat_keys(config) -> set:
  """Dotted paths of every leaf of a ConfigDict: {'training.batch_size', ...}."""
  return set(_leaves(config))


def model_keys(config) -> dict:
  """{key: value} of the keys that define the trained model (MODEL_SECTIONS, MODEL_KEYS), as
  JSON values (tuples are lists)."""
  leaves = _leaves(json.loads(config.to_json_best_effort()))
  keys = [k for k in leaves
          if (k.split(".")[0] in MODEL_SECTIONS or k in MODEL_KEYS) and k not in NOT_MODEL_KEYS]
  order = lambda k: (MODEL_SECTIONS.index(k.split(".")[0]) if k not in MODEL_KEYS else 9,
                     not k.endswith(".name"), k)  # the SDE first, names before parameters
  return {k: leaves[k] for k in sorted(keys, key=order)}


def first_model_difference(config, recorded: dict):
  """(key, value in config, value in recorded) of the first model-defining key where config
  differs from a recorded config (its parsed config.json), or None."""
  recorded = _leaves(recorded)
  for key, value in model_keys(config).items():
    if key in recorded and recorded[key] != value:
      return key, value, recorded[key]
  return None


def load_config(spec: str, overrides: dict | None = None):
  """Config from 'path/to/file.py[:arg]' (the file's get_config(arg)) or a workdir (the config it
  recorded), locked like main.py's.

  overrides: {"training.batch_size": 64, ...}; an unknown key raises, as on the command line.
  """
  if pathlib.Path(spec).is_dir():
    spec = f"{RECORDED}:{spec}"
  path, _, arg = spec.partition(":")
  if not pathlib.Path(path).is_file():
    raise MissingFileError(f"No config file {path!r}; see the configs/ directory.")
  module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return _overridden(module.get_config(arg) if arg else module.get_config(), overrides)


def with_overrides(config, overrides: dict | None = None):
  """A locked copy of config with overrides {"training.batch_size": 64, ...}: an unknown or
  moved key, or a solver option of another method, raises as on the command line."""
  return _overridden(config.copy_and_resolve_references(), overrides)


def _overridden(config, overrides: dict | None):
  check_moved_keys(flat_keys(config))
  config.lock()
  check_moved_keys(overrides or {})
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    section = config
    for name in parents:
      section = section[name]
    section[leaf] = value
  check_solver_overrides(config, overrides or {})
  return config
