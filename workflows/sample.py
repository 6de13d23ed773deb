"""--mode=sample: draw samples from the newest EMA checkpoint (or the analytic model) on all devices.

Sample i is drawn from fold_in(key, i), so results do not depend on batch size or device count
(except with the released batch-coupled 'langevin' corrector or ode_whole_batch).
"""
import pathlib
import time

import jax
import numpy as np

import samplers
from configs.errors import UserError
from parallel import DataParallel
from workflows import build, guidance, inverse, outputs
from workflows.batches import map_global_batches


def make_sample_fn(config, sde, score_model, parallel: DataParallel):
  """Jitted (params, indices (B,) int32) -> (samples (B, ...), nfe (B,)): sample i from the
  sampling stream's key folded with i, batch-sharded over all devices."""
  base_key = build.stream_key(config, "sample")
  sample_fn = build.build_sampler(config, sde, score_model)
  return jax.jit(lambda p, idx: sample_fn(p, samplers.sample_keys(base_key, idx)),
                 in_shardings=(parallel.replicated, parallel.batch),
                 out_shardings=(parallel.batch, parallel.batch))


def draw_samples(sample_fn, params, parallel: DataParallel, batch_size: int, num_samples: int,
                 first: int = 0, progress: bool = True):
  """Samples first..first+num_samples-1 (numpy, (num_samples, ...)) and their NFE; progress:
  show a bar over the batches."""
  return map_global_batches(lambda idx: sample_fn(params, idx), num_samples, batch_size, parallel,
                            lambda idx: (idx.astype(np.int32),), "sample", first,
                            progress=progress)


def failed_samples(x: np.ndarray) -> np.ndarray:
  """Samples with a non-finite entry (a failed adaptive solve, or a diverged sampler): (N,) bool."""
  return ~np.all(np.isfinite(x.reshape(len(x), -1)), axis=-1)


def sample_unconditional(config, workdir):
  """Writes WORKDIR/samples/unconditional_METHOD_STEPS.npz (samples, nfe, failed), .png and
  .json (outputs.write_samples: never over an earlier run's); returns the samples."""
  build.check_config(config)
  workdir = pathlib.Path(workdir)
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  start = time.perf_counter()
  x, nfe = draw_samples(make_sample_fn(config, sde, score_model, parallel), params, parallel,
                        config.sampling.batch_size, config.sampling.num_samples)
  seconds = time.perf_counter() - start
  failed = failed_samples(x)
  if jax.process_index() == 0:
    path = outputs.write_samples(config, workdir, dict(samples=x, nfe=nfe, failed=failed))
    print(f"Wrote {len(x)} samples to {path} (and .png, .json) ({seconds:.1f} s, "
          f"{config.sampling.method}, NFE mean {nfe.mean():.0f}, max {nfe.max()}, "
          f"failed {int(failed.sum())}).")
  return x


# sampling.task -> the function that runs it (config, workdir).
TASKS = {"unconditional": sample_unconditional,
         "inpaint": inverse.sample_inverse,  # conditioning.MaskObservation (App. I.2)
         "colorize": inverse.sample_inverse,  # conditioning.GrayObservation (App. I.3)
         "super_resolution": inverse.sample_inverse,  # conditioning.AveragePoolObservation
         "class_conditional": lambda c, w: guidance.sample_conditional(c, w)[0],  # Sec. 5
         "cfg": lambda c, w: guidance.sample_conditional(c, w)[0]}  # Ho & Salimans 2022


def sample(config, workdir):
  """--mode=sample: runs sampling.task (one of TASKS)."""
  task = config.sampling.task
  if task not in TASKS:
    raise UserError(f"Unknown sampling.task {task!r}; choose one of {sorted(TASKS)}.")
  return TASKS[task](config, workdir)
