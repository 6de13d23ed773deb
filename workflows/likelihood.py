"""--mode=likelihood: probability-flow log-likelihood of the held-out split (nats/dim, bits/dim)."""
import functools
import pathlib

import jax
import numpy as np
import tqdm
from jax.experimental import multihost_utils

import data_sources
import models
import samplers
from training.parallel import DataParallel
from workflows import build, outputs

def make_log_likelihood(config, sde, score_model):
  """(params, x (B, ...), indices (B,)) -> (logp (B,), nfe (B,)), to be jitted."""
  e = config.eval
  base_key = build.stream_key(config, "likelihood")

  def fn(params, x, indices):
    keys = samplers.sample_keys(base_key, indices)
    logp, _, nfe = samplers.log_likelihood(sde, functools.partial(score_model.score, params), x,
                                           keys, trace=e.trace_estimator, rtol=e.rtol, atol=e.atol,
                                           eps=e.eps)
    return logp, nfe

  return fn


def held_out_data(config) -> np.ndarray:
  """The first eval.num_samples test examples in model space; images uniformly dequantised."""
  d = config.data
  source = data_sources.load_split(d, "test")
  n = min(config.eval.num_samples, len(source))
  rng = np.random.default_rng([config.seed, build.RNG_STREAMS["likelihood"]])
  return data_sources.preprocess(source[np.arange(n)], is_image=data_sources.data_info(d).is_image,
                                 centered=d.centered, uniform_dequantization=True, rng=rng)


def likelihood(config, workdir) -> dict:
  """Mean nats/dim and bits/dim of the held-out split; written to workdir/likelihood.json."""
  workdir = pathlib.Path(workdir)
  parallel = DataParallel.over_all_devices()
  batch = config.eval.batch_size
  parallel.check_batch_size(batch, "eval.batch_size")
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  fn = jax.jit(make_log_likelihood(config, sde, score_model),
               in_shardings=(parallel.replicated, parallel.batch, parallel.batch))
  data = held_out_data(config)
  local = batch // jax.process_count()
  logps, nfes = [], []
  for start in tqdm.trange(0, len(data), batch, desc="likelihood",
                           disable=jax.process_index() != 0):
    idx = np.arange(start, start + batch) % len(data)  # the last batch wraps; extras are dropped
    mine = idx[jax.process_index() * local:(jax.process_index() + 1) * local]
    logp, nfe = fn(params, parallel.global_array(data[mine]),
                   parallel.global_array(mine.astype(np.int32)))
    logps.append(multihost_utils.process_allgather(logp, tiled=True))
    nfes.append(multihost_utils.process_allgather(nfe, tiled=True))
  logp = np.concatenate(logps)[:len(data)]
  record = summarize(config, logp, np.concatenate(nfes)[:len(data)], data, score_model)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    outputs.save_json(workdir / "likelihood.json", record)
    print(" ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
  return record


def summarize(config, logp, nfe, data, score_model) -> dict:
  """Mean nats/dim, bits/dim (with the dequantisation offset for images) and NFE."""
  info = data_sources.data_info(config.data)
  dim = int(np.prod(info.shape))
  record = {"num_examples": int(len(logp)), "nats_per_dim": float(np.mean(-logp) / dim),
            "mean_nfe": float(np.mean(nfe))}
  if info.is_image:
    width = 2.0 if config.data.centered else 1.0
    record["bits_per_dim"] = float(np.mean(samplers.bits_per_dim(logp, dim, width)))
  else:
    record["bits_per_dim"] = float(np.mean(-logp) / (dim * np.log(2.0)))
  if isinstance(score_model, models.AnalyticGMMScore):  # ground truth for the analytic model
    exact = score_model.log_prob(data, np.full(len(data), config.eval.eps, np.float32))
    record["exact_nats_per_dim"] = float(np.mean(-np.asarray(exact)) / dim)
  return record
