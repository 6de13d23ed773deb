"""Config files; `load_config("configs/toy.py:swiss_roll,vpsde")` loads one as main.py's --config does."""
import importlib.util
import pathlib

# Keys that moved (old -> new); an old key is an error naming the new one.
MOVED_KEYS = {"training.sde": "sde.name", "model.ema_rate": "training.ema_rate",
              **{f"model.{k}": f"sde.{k}" for k in ("sigma_min", "sigma_max", "beta_min", "beta_max",
                                                    "num_scales")}}


def check_moved_keys(keys) -> None:
  """Raises KeyError for any old config key (e.g. 'model.sigma_max') among `keys`, naming its
  new place."""
  for key in keys:
    if key in MOVED_KEYS:
      raise KeyError(f"Config key {key!r} has moved to {MOVED_KEYS[key]!r}; use "
                     f"--config.{MOVED_KEYS[key]}=... instead.")


def flat_keys(config, prefix: str = "") -> set:
  """Dotted paths of every leaf of a ConfigDict: {'training.batch_size', ...}."""
  keys = set()
  for key, value in config.items():
    keys |= flat_keys(value, f"{prefix}{key}.") if hasattr(value, "items") else {prefix + key}
  return keys


def load_config(spec: str, overrides: dict | None = None):
  """Config from 'path/to/file.py[:arg]' (the file's get_config(arg)), locked like main.py's.

  overrides: {"training.batch_size": 64, ...}; an unknown key raises, as on the command line.
  """
  path, _, arg = spec.partition(":")
  if not pathlib.Path(path).is_file():
    raise FileNotFoundError(f"No config file {path!r}; see the configs/ directory.")
  module_spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  check_moved_keys(flat_keys(config))
  config.lock()
  check_moved_keys(overrides or {})
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    section = config
    for name in parents:
      section = section[name]
    section[leaf] = value
  return config
