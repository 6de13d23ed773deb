"""Config files; `load_config("configs/toy.py:swiss_roll,vpsde")` loads one as main.py's --config does."""
import importlib.util
import pathlib


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
  config.lock()
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    section = config
    for name in parents:
      section = section[name]
    section[leaf] = value
  return config
