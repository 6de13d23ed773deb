"""--mode=sample: draw samples from the newest EMA checkpoint (or the analytic model) on all devices.

Sample i is drawn from fold_in(key, i), so results do not depend on batch size or device count.
"""
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from jax.experimental import multihost_utils

import data_sources
import samplers
from training.parallel import DataParallel
from workflows import build, outputs

def make_sampler(config, sde, score_model):
  """(params, indices (B,)) -> (samples (B, ...), nfe) for config.sampling, to be jitted."""
  s = config.sampling
  shape = data_sources.data_info(config.data).shape
  base_key = build.stream_key(config, "sample")
  if s.method not in ("pc", "ode"):
    raise ValueError(f"Unknown sampling.method {s.method!r}; choose 'pc' or 'ode'.")

  def sample_fn(params, indices):
    score_fn = functools.partial(score_model.score, params)
    keys = samplers.sample_keys(base_key, indices)
    if s.method == "ode":
      return samplers.ode_sample(sde, score_fn, keys, shape, rtol=s.rtol, atol=s.atol,
                                 method=s.ode_solver, eps=s.eps, denoise=s.noise_removal)
    x, nfe = samplers.pc_sample(sde, score_fn, keys, shape, s.predictor, s.corrector, s.snr,
                                s.n_steps_each, probability_flow=s.probability_flow,
                                denoise=s.noise_removal, eps=s.eps)
    return x, jnp.full(indices.shape, nfe, jnp.int32)

  return sample_fn


def draw_samples(config, params, sde, score_model, parallel: DataParallel, num_samples: int):
  """Samples 0..num_samples-1 as numpy (num_samples, ...) and their NFE (num_samples,)."""
  batch = config.sampling.batch_size
  parallel.check_batch_size(batch, "sampling.batch_size")
  sample_fn = jax.jit(make_sampler(config, sde, score_model),
                      in_shardings=(parallel.replicated, parallel.batch),
                      out_shardings=(parallel.batch, parallel.batch))
  local = batch // jax.process_count()
  chunks, nfes = [], []
  for start in tqdm.trange(0, num_samples, batch, desc="sample", disable=jax.process_index() != 0):
    first = start + jax.process_index() * local
    indices = parallel.global_array(np.arange(first, first + local, dtype=np.int32))
    x, nfe = sample_fn(params, indices)
    chunks.append(multihost_utils.process_allgather(x, tiled=True))
    nfes.append(multihost_utils.process_allgather(nfe, tiled=True))
  return np.concatenate(chunks)[:num_samples], np.concatenate(nfes)[:num_samples]


def sample(config, workdir):
  """Writes samples.npz and samples.png to workdir; returns the samples."""
  workdir = pathlib.Path(workdir)
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  start = time.perf_counter()
  x, nfe = draw_samples(config, params, sde, score_model, parallel, config.sampling.num_samples)
  seconds = time.perf_counter() - start
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    outputs.save_npz(workdir / "samples.npz", samples=x, nfe=nfe)
    info = data_sources.data_info(config.data)
    if info.is_image:
      outputs.grid_png(workdir / "samples.png", x[:64], config.data.centered)
    else:
      reference = data_sources.load_split(config.data, "test")
      outputs.scatter_png(workdir / "samples.png", x, reference)
    print(f"Wrote {len(x)} samples to {workdir / 'samples.npz'} and samples.png "
          f"({seconds:.1f} s, NFE mean {nfe.mean():.0f}, max {nfe.max()}).")
  return x
