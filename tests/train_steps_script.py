"""Runs a few train steps and saves params and samples (with LIKELIHOOD=1 also held-out
per-example log-likelihoods): `python tests/train_steps_script.py OUT.npz SPEC [K=V ...]`.

Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=K to compare device
counts (JAX reads the flag once, at start-up). K=V: config overrides, values parsed as Python.
With MULTIPROCESS=ADDRESS,NUM_PROCESSES,PROCESS_ID set, it first joins a jax.distributed cluster
(CPU collectives over gloo), so several local processes act as several hosts.
"""
import ast
import os
import sys

import jax
import numpy as np

import configs
from configs import load_config
from workflows import build
from workflows.likelihood import held_out_likelihoods
from workflows.sample import draw_samples, make_sample_fn
from workflows.train import build_trainer


def join_cluster(spec: str):
  address, num_processes, process_id = spec.split(",")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(address, int(num_processes), int(process_id))


def main(out_path: str, spec: str, *overrides: str, steps: int = 3):
  if os.environ.get("MULTIPROCESS"):
    join_cluster(os.environ["MULTIPROCESS"])
  config = load_config(spec, {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in overrides)})
  trainer = build_trainer(config)
  state = trainer.init_state()
  sde = build.build_sde(config)
  # With LIKELIHOOD=1: per-example likelihoods of 16 held-out examples, 8 per jitted batch (1 per
  # device on 8), under the initial params (equal bit for bit on any device count, unlike the
  # trained ones, whose float differences the adaptive solve would amplify to its tolerance);
  # before training, which donates the state's buffers.
  outputs = {}
  if os.environ.get("LIKELIHOOD") == "1":
    held_out = configs.with_overrides(config, {"eval.num_samples": 16, "eval.batch_size": 8,
                                               "eval.rtol": 1e-6, "eval.atol": 1e-6})
    outputs["logp"] = held_out_likelihoods(held_out, state.ema_params, sde,
                                           build.build_score_model(config, sde), trainer.parallel,
                                           leave=False)[0]
  for _ in range(steps):
    state, metrics = trainer.step_fn(state, trainer.next_batch(), trainer.base_key)
  trainer.train_input.close()
  sample_fn = make_sample_fn(config, sde, build.build_score_model(config, sde), trainer.parallel)
  samples = draw_samples(sample_fn, {"score": state.ema_params}, trainer.parallel,
                         config.sampling.batch_size, config.sampling.num_samples)[0]
  leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
  if jax.process_index() != 0:
    return
  np.savez(out_path, loss=np.asarray(metrics["loss"]), devices=jax.device_count(), samples=samples,
           **outputs,
           compiles=trainer.step_fn._cache_size(),  # pylint: disable=protected-access
           **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})


if __name__ == "__main__":
  main(*sys.argv[1:])
