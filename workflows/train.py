"""--mode=train: data-parallel training with periodic and pre-emption checkpoints and resume."""
import dataclasses
import json
import logging
import pathlib
import time

import jax
import numpy as np
import tqdm

import fileio
import summaries
from configs.errors import NonFiniteLossError, UserError, config_keys
from parallel import DataParallel
from training import checkpoints
from training.interrupt import stop_requests
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
  train_input: object   # this host's batches {"image": ..., "label": ...}, with get/set_state
  init_key: jax.Array   # parameter initialisation
  base_key: jax.Array   # step s uses fold_in(base_key, s)
  with_labels: bool = False  # batches are {"image", "label"} (class-conditional models, classifiers)

  def init_state(self) -> TrainState:
    return self.init_fn(self.init_key)

  def abstract_state(self):
    """Shapes, dtypes and shardings of the state, for restoring without allocating it."""
    shapes = jax.eval_shape(self.init_fn, self.init_key)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                       sharding=self.parallel.replicated), shapes)

  def _local_batch(self):
    batch = next(self.train_input)
    return {k: batch[k] for k in ("image", "label")} if self.with_labels else batch["image"]

  def next_batch(self):
    """The next global batch of data: (B, ...), or (K, B, ...) when K steps are fused; with
    labels, {"image": that, "label": (B,) or (K, B)}."""
    t = self.config.training
    local = [self._local_batch() for _ in range(t.steps_per_call)]
    if t.steps_per_call == 1:
      return jax.tree.map(lambda v: self.parallel.global_array(v, global_batch=t.batch_size),
                          local[0])
    return jax.tree.map(lambda *v: self.parallel.global_array(
        np.stack(v), self.parallel.stacked_batch, global_batch=t.batch_size), *local)


def build_trainer(config) -> Trainer:
  build.check_config(config)
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  if not score_model.has_parameters:
    raise UserError(f"model.name={config.model.name!r} is exact and has no parameters: nothing to "
                    "train. Run --mode=sample or --mode=likelihood directly.")
  optimizer = build.build_optimizer(config)
  return make_trainer(config, build.build_loss(config, sde, score_model), optimizer,
                      build.state_initializer(config, score_model, optimizer),
                      build.batch_has_labels(config))


def make_trainer(config, loss, optimizer, initializer, with_labels: bool) -> Trainer:
  """The Trainer of `loss` (params, batch, rng) -> (scalar, per-example) with states from
  initializer (key -> TrainState), under config.training's batch size, EMA and fusing; batches
  carry labels if with_labels. Score models and classifiers (workflows.train_classifier) share it."""
  parallel = DataParallel.over_all_devices()
  with config_keys({"batch_size": "training.batch_size"}):
    parallel.check_batch_size(config.training.batch_size)
  parallel.check_same_on_all_hosts("training.batch_size", config.training.batch_size)
  step = make_train_step(loss, optimizer, config.training.ema_rate)
  batch_sharding = parallel.batch
  if config.training.steps_per_call > 1:
    step, batch_sharding = fuse_steps(step), parallel.stacked_batch
  repl = parallel.replicated
  step_fn = jax.jit(step, in_shardings=(repl, batch_sharding, repl), out_shardings=(repl, repl),
                    donate_argnums=0)
  init_fn = jax.jit(initializer, out_shardings=repl)
  # Parameters are drawn from an 'rbg' key: XLA:CPU compiles conv-net inits 2.5x faster than with
  # threefry. Step randomness stays threefry, whose values do not depend on the sharding.
  init_key = jax.random.key(config.seed, impl="rbg")
  base_key = build.stream_key(config, "train")
  train_input = build.build_train_input(config, jax.process_index(), jax.process_count(),
                                        labels=with_labels)
  return Trainer(config, parallel, init_fn, step_fn, train_input, init_key, base_key, with_labels)


def _check_finite(metrics: dict, step: int, manager) -> None:
  if not np.isfinite(metrics["loss"]):
    last = manager.latest_step()
    resume = "none yet" if last is None else f"step {last}, where a rerun resumes"
    raise NonFiniteLossError(
        f"Loss became {metrics['loss']} at step {step} (last good checkpoint: {resume}); lower "
        "--config.optim.lr, keep optim.grad_clip >= 0 or raise optim.warmup.")


def _log(workdir: pathlib.Path, writer, step: int, metrics: dict, timing: dict) -> None:
  """Prints, appends to metrics.jsonl and writes to TensorBoard the metrics averaged since the
  last log, and the timing of the window (steps/s, learning rate, data wait)."""
  record = {"step": step, **metrics, **timing}
  if jax.process_index() == 0:
    tqdm.tqdm.write(" ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.4g}"
                             for k, v in record.items()))
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
    x = draw_samples(sample_fn, {"score": state.ema_params}, trainer.parallel, count, count)[0]
    if jax.process_index() == 0 and build.data_info(config).is_image:
      writer.image("train/samples", outputs.image_grid(x, config.data.centered), step)

  return write


def _drop_rows_after(path: pathlib.Path, step: int) -> None:
  """Removes the rows of metrics.jsonl logged after `step` (a resumed run logs them again)."""
  if not path.is_file():
    return
  lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
  kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
  if len(kept) < len(lines):
    fileio.write_text_atomic(path, "".join(kept))


def _timing(steps: int, seconds: float, data_wait: float) -> dict:
  """Steps/s, and the mean time per step the loop waited for its batch (and its share)."""
  return {"steps_per_sec": steps / seconds, "data_wait_s": data_wait / steps,
          "data_wait_frac": data_wait / seconds}


def _restore(trainer: Trainer, manager):
  """(step, state) of the newest intact checkpoint, or (None, a fresh state); the input moved to
  that checkpoint's position and started."""
  step, state, data_state = checkpoints.restore_newest_intact(manager, trainer.abstract_state(),
                                                              with_data=True)
  if data_state is not None:
    trainer.train_input.set_state(data_state)
  trainer.train_input.start_prefetch()
  if step is None:
    return None, trainer.init_state()
  if jax.process_index() == 0:
    tqdm.tqdm.write(f"Resuming from the checkpoint of step {step} in {manager.directory}" + (
        "." if data_state else " (imported: no data position saved, data from the start)."))
  return step, state


def _prepare_workdir(trainer: Trainer, workdir: pathlib.Path, step: int | None) -> None:
  """config.json written, and metrics.jsonl cut back to the checkpoint a run resumes from."""
  if jax.process_index() == 0:
    fileio.write_text_atomic(workdir / "config.json",
                             trainer.config.to_json_best_effort(indent=2))
    _drop_rows_after(workdir / "metrics.jsonl", step or 0)


def train(config, workdir) -> TrainState:
  """Trains to config.training.n_iters, resuming from the newest checkpoint in workdir (whose
  config.json must agree with config on the model: build.check_matches_workdir)."""
  build.check_matches_workdir(config, workdir)
  return run_training(build_trainer(config), workdir)


def run_training(trainer: Trainer, workdir, sample_grids: bool = True) -> TrainState:
  """Runs `trainer` to its config's training.n_iters with checkpoints in workdir/checkpoints,
  resuming from the newest one (sample_grids: TensorBoard sample grids every sample_freq)."""
  workdir = pathlib.Path(workdir)
  config = trainer.config
  t = config.training
  if t.n_iters % t.steps_per_call or t.snapshot_freq_for_preemption % t.steps_per_call:
    raise UserError("training.n_iters and snapshot_freq_for_preemption must be multiples of "
                    "training.steps_per_call.")
  if workdir.exists() and not workdir.is_dir():
    raise UserError(f"--workdir={workdir} is a file; give a directory (new or a run's).")
  manager = checkpoints.checkpoint_manager(workdir, snapshot_freq=t.snapshot_freq,
                                           max_to_keep=t.max_to_keep)
  writer = None
  try:
    step, state = _restore(trainer, manager)
    _prepare_workdir(trainer, workdir, step)
    writer = summaries.SummaryWriter(workdir / "tensorboard" / "train")
    return _train_loop(trainer, state, manager, workdir, writer, sample_grids)
  finally:
    trainer.train_input.close()
    if writer is not None:
      writer.close()
    manager.wait_until_finished()
    manager.close()


def _train_loop(trainer: Trainer, state: TrainState, manager, workdir: pathlib.Path,
                writer, sample_grids: bool = True) -> TrainState:
  """Steps to training.n_iters with logs, sample grids and checkpoints. SIGINT / SIGTERM finish
  the step, save and raise training.interrupt.Interrupted (exit code 130 / 143)."""
  config, t = trainer.config, trainer.config.training
  step = int(jax.device_get(state.step))
  lr_at = build.build_lr_schedule(config)
  write_samples = _sample_grid_writer(config, trainer) if t.sample_freq and sample_grids else None
  progress = tqdm.tqdm(total=t.n_iters, initial=step, disable=jax.process_index() != 0,
                       desc="train", unit="step")
  last_time, last_step, window, data_wait = time.perf_counter(), step, [], 0.0
  with progress, stop_requests() as stop:
    while step < t.n_iters:
      wait_start = time.perf_counter()
      batch = trainer.next_batch()
      data_wait += time.perf_counter() - wait_start
      state, metrics = trainer.step_fn(state, batch, trainer.base_key)
      window.append(metrics)
      step += t.steps_per_call
      progress.update(t.steps_per_call)
      if step % t.log_freq == 0 or step == t.n_iters:
        metrics = jax.tree.map(lambda *v: float(np.mean(v)), *jax.device_get(window))
        _check_finite(metrics, step, manager)
        now = time.perf_counter()
        timing = _timing(step - last_step, now - last_time, data_wait)
        _log(workdir, writer, step, metrics, {**timing, "learning_rate": float(lr_at(step))})
        progress.set_postfix(loss=f"{metrics['loss']:.4f}")
        last_time, last_step, window, data_wait = now, step, [], 0.0
      if write_samples and step % t.sample_freq == 0:
        grid_start = time.perf_counter()
        write_samples(state, step, writer)
        last_time += time.perf_counter() - grid_start  # steps/s counts training steps only
      preempted = bool(stop) or manager.reached_preemption(step)
      if (step % t.snapshot_freq_for_preemption == 0 or step % t.snapshot_freq == 0
          or step == t.n_iters or preempted):
        _check_finite(jax.device_get(window[-1] if window else metrics), step, manager)
        checkpoints.save(manager, state, trainer.train_input.get_state())
      if preempted:
        manager.wait_until_finished()
        progress.close()
        stop.raise_if_set(f"at step {step}; saved")
        logging.warning("Pre-empted at step %d: checkpoint saved, stopping.", step)
        break
  return state
