"""Parameter counts of the networks that config files build, without allocating them.

Each network is traced with `jax.eval_shape` on one zero image, so even the 1024x1024 NCSN++
costs no memory. Prints a markdown table (config, model, params).
Usage: python scripts/count_params.py [CONFIG[:ARG] ...]    (default: every config under configs/)
"""
import math
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position

import models  # pylint: disable=wrong-import-position
from configs import load_config  # pylint: disable=wrong-import-position
from workflows import build  # pylint: disable=wrong-import-position


def config_files(root: pathlib.Path = ROOT) -> list:
  """Every config file under root/configs (those defining get_config) but recorded.py (a
  workdir's config.json), sorted."""
  files = sorted((root / "configs").rglob("*.py"))
  return [f for f in files if f.name not in ("__init__.py", "recorded.py")
          and "def get_config(" in f.read_text()]


def count_params(config) -> int:
  """Number of parameters of config's network (0 for the parameter-free analytic score)."""
  if config.model.name in models.EXACT_SCORES:
    return 0
  network = build.build_network(config.model, centered=config.data.centered)
  x = build.example_batch(config)
  key = jax.random.key(0)
  variables = jax.eval_shape(network.init, {"params": key, "dropout": key}, x, jnp.ones((1,)))
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))


def main(specs):
  specs = specs or [str(f.relative_to(ROOT)) for f in config_files()]
  print("| config | model | params |\n|---|---|---:|")
  for spec in specs:
    path, sep, arg = spec.partition(":")
    path = path if pathlib.Path(path).is_file() else str(ROOT / path)  # relative to the repo
    config = load_config(path + sep + arg)
    print(f"| {spec} | {config.model.name} | {count_params(config):,} |", flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
