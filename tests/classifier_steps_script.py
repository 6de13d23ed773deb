"""Runs a few classifier train steps and saves params:
`python tests/classifier_steps_script.py OUT.npz SPEC [K=V ...]` (as tests/train_steps_script.py,
in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=K)."""
import ast
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # this checkout's packages

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from configs import load_config
from workflows.train_classifier import build_classifier_trainer


def main(out_path: str, spec: str, *overrides: str, steps: int = 3):
  config = load_config(spec, {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in overrides)})
  trainer = build_classifier_trainer(config)
  state = trainer.init_state()
  for _ in range(steps):
    state, metrics = trainer.step_fn(state, trainer.next_batch(), trainer.base_key)
  trainer.train_input.close()
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
  np.savez(out_path, loss=np.asarray(metrics["loss"]), devices=jax.device_count(),
           compiles=trainer.step_fn._cache_size(),  # pylint: disable=protected-access
           **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})


if __name__ == "__main__":
  main(*sys.argv[1:])
