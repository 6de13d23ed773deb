"""--mode=likelihood: probability-flow log-likelihood of the held-out split, in likelihood.json.

For images its `bits_per_dim` is the paper's (Table 2: dequantised pixels on [0, 256)) and
`continuous_nats_per_dim` the continuous density of the model-space data, without the
dequantisation offset: two different quantities (see `summarize`)."""
import pathlib

import jax
import numpy as np

import data_sources
import fileio
import models
import samplers
from parallel import DataParallel
from workflows import build
from workflows.batches import map_global_batches


def make_log_likelihood(config, sde, score_model):
  """(params, x (B, ...), indices (B,)) -> (logp (B,), nfe (B,)), to be jitted."""
  e = config.eval
  base_key = build.stream_key(config, "likelihood")

  def fn(params, x, indices):
    keys = samplers.sample_keys(base_key, indices)
    logp, _, nfe = samplers.log_likelihood(build.model_fns(sde, score_model, params), x, keys,
                                           trace=e.trace_estimator, rtol=e.rtol, atol=e.atol,
                                           eps=e.eps)
    return logp, nfe

  return fn


def held_out_data(config, repeat: int = 0) -> np.ndarray:
  """The first eval.num_samples test examples in model space; images uniformly dequantised with
  the noise of dequantisation repeat `repeat`."""
  source = build.load_split(config, "test")
  n = min(config.eval.num_samples, len(source))
  rng = np.random.default_rng([config.seed, build.RNG_STREAMS["likelihood"], repeat])
  return data_sources.preprocess(source[np.arange(n)], is_image=build.data_info(config).is_image,
                                 centered=config.data.centered, uniform_dequantization=True, rng=rng)


def num_repeats(config) -> int:
  """Dequantisation repeats (eval.bpd_num_repeats, the released eval); 1 for non-image data."""
  return config.eval.bpd_num_repeats if build.data_info(config).is_image else 1


def held_out_likelihoods(config, params, sde, score_model, parallel: DataParallel,
                         leave: bool = True):
  """log p (R, N) and NFE (R, N) of the held-out examples over R dequantisation repeats, and the
  last repeat's data (N, ...). Repeat r's Hutchinson probes come from indices r N .. r N + N - 1.
  leave=False: the progress bars vanish when done (nested under --mode=eval's)."""
  fn = jax.jit(make_log_likelihood(config, sde, score_model),
               in_shardings=(parallel.replicated, parallel.batch, parallel.batch))
  logps, nfes = [], []
  for repeat in range(num_repeats(config)):
    data = held_out_data(config, repeat)
    n = len(data)
    inputs = lambda idx, data=data: (data[idx % n], idx.astype(np.int32))
    logp, nfe = map_global_batches(lambda x, idx: fn(params, x, idx), n, config.eval.batch_size,
                                   parallel, inputs, f"likelihood {repeat + 1}", first=repeat * n,
                                   leave=leave, batch_key="eval.batch_size")
    logps.append(logp)
    nfes.append(nfe)
  return np.stack(logps), np.stack(nfes), data


def likelihood(config, workdir) -> dict:
  """The held-out split's `summarize` record (continuous nats/dim, bits/dim, ...); written to
  workdir/likelihood.json."""
  build.check_config(config)
  workdir = pathlib.Path(workdir)
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = build.load_score_params(config, workdir, score_model, parallel.replicated)
  logp, nfe, data = held_out_likelihoods(config, params, sde, score_model, parallel)
  record = summarize(config, logp, nfe, data, score_model)
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    fileio.write_json_atomic(workdir / "likelihood.json", record)
    print(" ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in record.items() if k != "note"))
    print(record["note"])
  return record


IMAGE_NOTE = ("bits_per_dim is the paper's number (Table 2): the discrete pixels, uniformly "
              "dequantised, on [0, 256). continuous_nats_per_dim is the continuous density of the "
              "model-space data on {space}, without that offset: another quantity, not "
              "bits_per_dim in nats.")
POINTS_NOTE = ("Continuous data: bits_per_dim is continuous_nats_per_dim / ln 2 (the density of "
               "the data as given, no dequantisation).")


def summarize(config, logp, nfe, data, score_model) -> dict:
  """The likelihood record over the solves that succeeded (failed, NaN, solves are counted, not
  averaged), logp (R, N) over R dequantisation repeats:

  - continuous_nats_per_dim: mean -log p(x) / dim of the model's continuous density of the data
    in model space ([-1, 1] or [0, 1] for images, after dequantisation), no offset;
  - bits_per_dim and its standard error over repeats x examples: for images the paper's number
    (Table 2), bits/dim of the discrete data on [0, 256) (samplers.bits_per_dim: + 7 bits on
    [-1, 1], + 8 on [0, 1]); for points continuous_nats_per_dim / ln 2;
  - exact_continuous_nats_per_dim (the analytic model): the exact density's, the ground truth;
  - mean_nfe, counts, and a `note` saying which number is which.
  """
  info = build.data_info(config)
  dim = int(np.prod(info.shape))
  ok = np.isfinite(logp)
  width = 2.0 if config.data.centered else 1.0
  bpd = (samplers.bits_per_dim(logp[ok], dim, width) if info.is_image
         else -logp[ok] / (dim * np.log(2.0)))
  record = {"num_examples": int(logp.shape[1]), "num_repeats": int(logp.shape[0]),
            "num_failed": int((~ok).sum()),
            "continuous_nats_per_dim": float(np.mean(-logp[ok]) / dim),
            "bits_per_dim": float(np.mean(bpd)),
            "bits_per_dim_stderr": float(np.std(bpd, ddof=1) / np.sqrt(bpd.size)) if bpd.size > 1
                                   else float("nan"),
            "mean_nfe": float(np.mean(nfe))}
  if isinstance(score_model, models.AnalyticGMMScore):  # ground truth for the analytic model
    exact = score_model.log_prob(data, np.full(len(data), config.eval.eps, np.float32))
    record["exact_continuous_nats_per_dim"] = float(np.mean(-np.asarray(exact)[ok[-1]]) / dim)
  record["note"] = (IMAGE_NOTE.format(space="[-1, 1]" if config.data.centered else "[0, 1]")
                    if info.is_image else POINTS_NOTE)
  return record
