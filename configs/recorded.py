"""The config a workdir recorded: `--config=configs/recorded.py:WORKDIR` (main.py also takes
`--config=WORKDIR`, or no --config when --workdir holds config.json)."""
import json
import pathlib

import ml_collections

from configs.errors import MissingFileError



def get_config(workdir: str):
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise MissingFileError(f"{workdir} holds no config.json; pass --config=FILE (configs/...).")
  return ml_collections.ConfigDict(json.loads(path.read_text(encoding="utf-8")))
