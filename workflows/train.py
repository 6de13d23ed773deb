"""--mode=train: data-parallel training with periodic and pre-emption checkpoints and resume."""
import dataclasses
import json
import logging
import pathlib
import time

import jax
import numpy as np
import tqdm

import data_sources
import summaries
from parallel import DataParallel
from training import checkpoints
from training.state import TrainState
from training.step import fuse_steps, make_train_step
from workflows import build, outputs
from workflows.sample import draw_samples, make_sample_fn


@dataclasses.dataclass
class Trainer:
  """Everything a training run needs, built once from the config."""

  config: object
  parallel: DataParallel
  init_fn: object       # key -> TrainState, jitted with replicated outputs
  step_fn: object       # (state, batch, key) -> (state, metrics), jitted and sharded
  train_source: object  # indexable split of the training data
  init_key: jax.Array   # parameter initialisation
  base_key: jax.Array   # step s uses fold_in(base_key, s)

  def init_state(self) -> TrainState:
    return self.init_fn(self.init_key)

  def abstract_state(self):
    """Shapes, dtypes and shardings of the state, for restoring without allocating it."""
    shapes = jax.eval_shape(self.init_fn, self.init_key)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                       sharding=self.parallel.replicated), shapes)

  def batch(self, step: int) -> jax.Array:
    """Global batch for steps [step, step + K): (B, ...) or (K, B, ...) when K > 1 are fused."""
    t, d = self.config.training, self.config.data
    info = build.data_info(self.config)
    local = []
    for s in range(step, step + t.steps_per_call):
      idx = data_sources.batch_indices(len(self.train_source), self.config.seed, s, t.batch_size,
                                       jax.process_index(), jax.process_count())
      rng = np.random.default_rng([self.config.seed, s, 1])
      local.append(data_sources.preprocess(
          self.train_source[idx], is_image=info.is_image, centered=d.centered,
          uniform_dequantization=d.uniform_dequantization, random_flip=d.random_flip, rng=rng))
    if t.steps_per_call == 1:
      return self.parallel.global_array(local[0])
    return self.parallel.global_array(np.stack(local), self.parallel.stacked_batch)


def build_trainer(config) -> Trainer:
  build.check_config(config)
  if config.model.name == "gmm_analytic":
    raise ValueError("model.name='gmm_analytic' is exact and has no parameters: nothing to train. "
                     "Run --mode=sample or --mode=likelihood directly.")
  parallel = DataParallel.over_all_devices()
  parallel.check_batch_size(config.training.batch_size)
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  optimizer = build.build_optimizer(config)
  step = make_train_step(build.build_loss(config, sde, score_model), optimizer,
                         config.training.ema_rate)
  batch_sharding = parallel.batch
  if config.training.steps_per_call > 1:
    step, batch_sharding = fuse_steps(step), parallel.stacked_batch
  repl = parallel.replicated
  step_fn = jax.jit(step, in_shardings=(repl, batch_sharding, repl), out_shardings=(repl, repl),
                    donate_argnums=0)
  init_fn = jax.jit(build.state_initializer(config, score_model, optimizer), out_shardings=repl)
  # Parameters are drawn from an 'rbg' key: XLA:CPU compiles conv-net inits 2.5x faster than with
  # threefry. Step randomness stays threefry, whose values do not depend on the sharding.
  init_key = jax.random.key(config.seed, impl="rbg")
  base_key = build.stream_key(config, "train")
  return Trainer(config, parallel, init_fn, step_fn, build.load_split(config, "train"), init_key,
                 base_key)


def _check_finite(metrics: dict, step: int, manager) -> None:
  if not np.isfinite(metrics["loss"]):
    raise FloatingPointError(
        f"Loss became {metrics['loss']} at step {step}. The last good checkpoint is step "
        f"{manager.latest_step()}; lower optim.lr, keep optim.grad_clip >= 0 or raise optim.warmup, "
        "then rerun to resume from it.")


def _log(workdir: pathlib.Path, writer, step: int, metrics: dict, rate: float, lr: float) -> None:
  """Prints, appends to metrics.jsonl and writes to TensorBoard the metrics averaged since the
  last log."""
  record = {"step": step, **metrics, "steps_per_sec": rate, "learning_rate": lr}
  if jax.process_index() == 0:
    tqdm.tqdm.write(" ".join(f"{k}={v:.4g}" for k, v in record.items()))
    with open(workdir / "metrics.jsonl", "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
    for key, value in record.items():
      if key != "step":
        writer.scalar(f"train/{key}", value, step)


def _sample_grid_writer(config, trainer: Trainer):
  """(state, step, writer) -> None: a grid of 64 samples of the EMA params in TensorBoard
  (training.sample_freq; one compile of the configured sampler)."""
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  sample_fn = make_sample_fn(config, sde, score_model, trainer.parallel)
  count = min(64, config.sampling.batch_size)

  def write(state, step, writer):
    x, _ = draw_samples(sample_fn, state.ema_params, trainer.parallel, count, count)
    if jax.process_index() == 0 and build.data_info(config).is_image:
      writer.image("train/samples", outputs.image_grid(x, config.data.centered), step)

  return write


def train(config, workdir) -> TrainState:
  """Trains to config.training.n_iters, resuming from the newest checkpoint in workdir."""
  workdir = pathlib.Path(workdir)
  trainer = build_trainer(config)
  t = config.training
  if t.n_iters % t.steps_per_call or t.snapshot_freq_for_preemption % t.steps_per_call:
    raise ValueError("training.n_iters and snapshot_freq_for_preemption must be multiples of "
                     "training.steps_per_call.")
  if jax.process_index() == 0:
    checkpoints.write_text_atomic(workdir / "config.json", config.to_json_best_effort(indent=2))
  manager = checkpoints.checkpoint_manager(workdir, snapshot_freq=t.snapshot_freq,
                                           max_to_keep=t.max_to_keep)
  state = checkpoints.restore_latest(manager, trainer.abstract_state()) or trainer.init_state()
  step = int(jax.device_get(state.step))
  if step and jax.process_index() == 0:
    tqdm.tqdm.write(f"Resumed from the checkpoint of step {step} in {workdir}.")
  preemption = checkpoints.PreemptionFlag()
  writer = summaries.SummaryWriter(workdir / "tensorboard" / "train")
  lr_at = build.build_lr_schedule(config)
  write_samples = _sample_grid_writer(config, trainer) if t.sample_freq else None
  progress = tqdm.tqdm(total=t.n_iters, initial=step, disable=jax.process_index() != 0,
                       desc="train", unit="step")
  last_time, last_step, window = time.perf_counter(), step, []
  while step < t.n_iters:
    state, metrics = trainer.step_fn(state, trainer.batch(step), trainer.base_key)
    window.append(metrics)
    step += t.steps_per_call
    progress.update(t.steps_per_call)
    if step % t.log_freq == 0 or step == t.n_iters:
      metrics = jax.tree.map(lambda *v: float(np.mean(v)), *jax.device_get(window))
      _check_finite(metrics, step, manager)
      now = time.perf_counter()
      _log(workdir, writer, step, metrics, (step - last_step) / (now - last_time),
           float(lr_at(step)))
      progress.set_postfix(loss=f"{metrics['loss']:.4f}")
      last_time, last_step, window = now, step, []
    if write_samples and step % t.sample_freq == 0:
      write_samples(state, step, writer)
    stop = preemption.is_set(manager, step)
    if (step % t.snapshot_freq_for_preemption == 0 or step % t.snapshot_freq == 0
        or step == t.n_iters or stop):
      _check_finite(jax.device_get(window[-1] if window else metrics), step, manager)
      checkpoints.save(manager, state)
    if stop:
      logging.warning("Pre-empted at step %d: checkpoint saved, stopping.", step)
      break
  progress.close()
  writer.close()
  manager.wait_until_finished()
  manager.close()
  return state
