"""--mode=sample: one sampling path for every task. The model (newest EMA checkpoint, or the
analytic one) with the conditions of config.sampling applied in order (conditioning.conditions):
the label condition of sampling.guidance.method (classifier guidance, CFG), then the observation
of an inverse task (inpaint | colorize | super_resolution: sampling.inverse.method), on
samplers.SOLVERS[sampling.method], jitted and batch-sharded over all devices.

Sample i is drawn from fold_in(key, i), so results do not depend on batch size or device count
(except with the released batch-coupled 'langevin' corrector or ode_whole_batch).
"""
import dataclasses
import pathlib
import time

import jax
import numpy as np

import samplers
from configs.errors import UserError
from parallel import DataParallel
from workflows import build, encode, guidance, inverse, outputs
from workflows.batches import map_global_batches

OBSERVATION_TASKS = ("inpaint", "colorize", "super_resolution")
TASKS = ("unconditional", *OBSERVATION_TASKS)
# Tasks of an older layout -> the guidance method that replaced them.
MOVED_TASKS = {"class_conditional": "classifier", "cfg": "cfg"}


def check_task(config) -> None:
  """Rejects unknown tasks (naming the guidance method of a moved one) and bad guidance or
  inverse-problem settings, before any work."""
  task = config.sampling.task
  if task in MOVED_TASKS:
    raise UserError(f"sampling.task={task!r} is now --config.sampling.guidance.method="
                    f"{MOVED_TASKS[task]} (with task=unconditional, or an inverse task to combine "
                    "them).")
  if task not in TASKS:
    raise UserError(f"Unknown sampling.task {task!r}; choose one of {list(TASKS)}.")
  guidance.check_guidance(config)
  if task in OBSERVATION_TASKS:
    inverse.check_inverse_config(config)
    if config.sampling.get("latents_from"):
      raise UserError(f"sampling.latents_from decodes latents without observations; set "
                      f"sampling.task=unconditional or drop latents_from (task={task!r}).")


def make_sample_fn(config, sde, score_model, parallel: DataParallel, conditions=()):
  """Jitted (params {"score": ..., ...}, indices (B,) int32, y (B, ...) or None, latents (B, ...)
  or None) -> (samples (B, ...), nfe (B,), labels (B,)): sample i from the sampling stream's key
  folded with i, with the label of i (sampling.guidance), its observation y, and from the given
  latents instead of a prior draw, batch-sharded over all devices."""
  base_key = build.stream_key(config, "sample")
  sampler = build.build_sampler(config, sde, score_model, conditions)
  g = config.sampling.guidance

  def sample_fn(params, indices, y, latents):
    labels = guidance.sample_labels(indices, g.class_label, config.data.num_classes)
    data = {"labels": labels, **({} if y is None else {"y": y}),
            **({} if latents is None else {"latents": latents})}
    return (*sampler(params, samplers.sample_keys(base_key, indices), data), labels)

  return jax.jit(sample_fn, in_shardings=(parallel.replicated,) + (parallel.batch,) * 3,
                 out_shardings=(parallel.batch,) * 3)


def draw_samples(sample_fn, params, parallel: DataParallel, batch_size: int, num_samples: int,
                 first: int = 0, progress: bool = True, y=None, per_input: int = 1, latents=None):
  """Samples first..first+num_samples-1 (numpy, (num_samples, ...)), their NFE and labels; y
  (K, ...): the observations, sample i seeing y[i // per_input]; latents (num_samples, ...):
  sample i decoded from latents[i]. progress: a bar over batches."""
  rows = lambda array, idx: None if array is None else array[np.minimum(idx, len(array) - 1)]
  inputs = lambda idx: (idx.astype(np.int32), rows(y, idx // per_input), rows(latents, idx))
  return map_global_batches(lambda idx, obs, z: sample_fn(params, idx, obs, z), num_samples,
                            batch_size, parallel, inputs, "sample", first, progress=progress)


def failed_samples(x: np.ndarray) -> np.ndarray:
  """Samples with a non-finite entry (a failed adaptive solve, or a diverged sampler): (N,) bool."""
  return ~np.all(np.isfinite(x.reshape(len(x), -1)), axis=-1)


@dataclasses.dataclass(frozen=True)
class SamplingRun:
  """What sampling config.sampling needs, built once: the jitted sample_fn, its params, the
  number of samples, the observations y (K, ...) (None: no inverse task) with their arrays
  (observations, inputs, masks) and observation, and the latents to decode (None: prior
  draws)."""

  config: object
  sample_fn: object
  params: dict
  count: int
  y: object = None
  arrays: dict = dataclasses.field(default_factory=dict)
  observation: object = None
  latents: object = None


def prepare(config, workdir, score_params=None) -> SamplingRun:
  """Checks config and builds the SamplingRun of config.sampling for the model in workdir.
  score_params: its EMA params, replicated, if already loaded (else the newest checkpoint's)."""
  build.check_config(config)
  check_task(config)
  config = build.with_workdir_files(config, workdir)
  workdir, s = pathlib.Path(workdir), config.sampling
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  conditions, count, y, observation, arrays = [], s.num_samples, None, None, {}
  if s.task in OBSERVATION_TASKS:  # bad inverse settings fail before any checkpoint is read
    shape = build.data_info(config).shape
    observation, mask = inverse.build_observation(config, shape)
    conditions.append(inverse.observation_condition(config, observation))
    build.check_solver_fits(s.method, conditions)
    inputs = inverse.load_inputs(config, shape)
    y = inverse.observe(config, observation, inputs)
    count = len(inputs) * s.inverse.samples_per_input
    arrays = dict(observations=y, inputs=inputs, **({} if mask is None else {"masks": mask}))
  latents = None
  if s.get("latents_from"):
    latents = encode.load_latents(config, build.data_info(config).shape)
    count, arrays = len(latents), dict(arrays, latents=latents)
  if score_params is None:
    score_params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  params = {"score": score_params}
  if s.guidance.method != "none":  # labels first, then the observation
    condition, extra = guidance.label_condition(config, workdir, sde, score_model,
                                                parallel.replicated)
    conditions.insert(0, condition)
    params.update(extra)
  sample_fn = make_sample_fn(config, sde, score_model, parallel, conditions)
  return SamplingRun(config, sample_fn, params, count, y, arrays, observation, latents)


def draw(run: SamplingRun, progress: bool = True):
  """The arrays --mode=sample writes (samples (N, ...), inverse tasks (K, S, ...) with
  observations, inputs and masks; nfe, failed; labels when guided) and the seconds it took."""
  s, parallel = run.config.sampling, DataParallel.over_all_devices()
  start = time.perf_counter()
  x, nfe, labels = draw_samples(run.sample_fn, run.params, parallel, s.batch_size, run.count,
                                y=run.y, per_input=s.inverse.samples_per_input, progress=progress,
                                latents=run.latents)
  arrays = dict(run.arrays, samples=x, nfe=nfe, failed=failed_samples(x))
  if s.guidance.method != "none":
    arrays["labels"] = labels
  if run.y is not None:
    arrays["samples"] = x.reshape(len(run.y), s.inverse.samples_per_input, *x.shape[1:])
  return arrays, time.perf_counter() - start


def sample(config, workdir):
  """--mode=sample: writes the arrays of `draw` to WORKDIR/samples/NAME.npz, .png and .json
  (outputs.write_samples: never over an earlier run's) and returns them."""
  run = prepare(config, workdir)
  arrays, seconds = draw(run)
  if jax.process_index() == 0:
    draw_png = None if run.observation is None else (
        lambda png: inverse.draw_png(config, png, arrays, run.observation))
    path = outputs.write_samples(config, workdir, arrays, draw_png)
    nfe = arrays["nfe"]
    print(f"Wrote {len(nfe)} samples ({outputs.sample_output_name(config.sampling)}) to {path} "
          f"(and .png, .json) ({seconds:.1f} s, NFE mean {nfe.mean():.0f}, max {nfe.max()}, "
          f"failed {int(arrays['failed'].sum())}).")
  return arrays
