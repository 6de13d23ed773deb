"""--mode=likelihood: the held-out split's log-likelihood, in likelihood.json, by eval.likelihood:

  ode            the probability-flow ODE's exact log-density (samplers.likelihood);
  elbo           the continuous-time variational bound (samplers.bounds.continuous_elbo);
  elbo_discrete  the discrete chain's bound (samplers.bounds.discrete_elbo); for images with
                 DDPM's discretised decoder on the 8-bit data itself, no dequantisation.

For images `bits_per_dim` is the paper's (Table 2: dequantised pixels on [0, 256)) and
`continuous_nats_per_dim` the continuous density of the model-space data, without the
dequantisation offset: two different quantities (see `summarize`). The record says whether its
number is exact or an upper bound on the NLL, and which dequantisation it used."""
import pathlib

import jax
import numpy as np

import data_sources
import fileio
import models
import samplers
from configs.errors import ArgumentError
from parallel import DataParallel
from samplers import bounds, dequantization
from workflows import build
from workflows.batches import map_global_batches

ROUTES = ("ode", "elbo", "elbo_discrete")
DEQUANTIZATIONS = ("uniform", "truncated_normal")


def _check_route(config, sde):
  e = config.eval
  if e.likelihood not in ROUTES:
    raise ArgumentError("eval.likelihood", f"{{arg}}={e.likelihood!r} is not one of {list(ROUTES)}.")
  if e.dequantization not in DEQUANTIZATIONS:
    raise ArgumentError("eval.dequantization", f"{{arg}}={e.dequantization!r} is not one of "
                        f"{list(DEQUANTIZATIONS)}.")
  if e.likelihood == "elbo_discrete" and not float(sde.discrete_levels(sde.N).sigmas[0]) > 0:
    raise ArgumentError("eval.likelihood", f"sde {config.sde.name!r} has no noisy discrete chain "
                        "(its level 0 is the data): use {arg}=elbo or ode.")
  if e.dequantization == "truncated_normal" and (e.likelihood != "ode"
                                                 or not build.data_info(config).is_image):
    raise ArgumentError("eval.dequantization", "{arg}=truncated_normal dequantises 8-bit images "
                        "for eval.likelihood=ode; use {arg}=uniform here.")


def discrete_bins(config):
  """(half width, low, high) of the 8-bit pixels' bins in model space."""
  low = -1.0 if config.data.centered else 0.0
  return (1.0 - low) / 255.0 / 2.0, low, 1.0


def _ode_log_likelihood(config, sde, fns, x, keys):
  """log p (B,) and NFE of the held-out x by the PF-ODE; with truncated-normal dequantisation
  (samplers.dequantization) the bound on the probability of x's 8-bit bins."""
  e = config.eval
  start, correction, eps = x, 0.0, e.eps
  if e.dequantization == "truncated_normal":
    half_width = discrete_bins(config)[0]
    start, correction = dequantization.truncated_normal_dequantize(sde, x, keys, half_width,
                                                                   e.tn_tau)
    eps = dequantization.start_time(sde, half_width, e.tn_tau)
  logp, _, nfe = samplers.log_likelihood(fns, start, keys, trace=e.trace_estimator, rtol=e.rtol,
                                         atol=e.atol, eps=eps)
  return logp + correction, nfe


def make_log_likelihood(config, sde, score_model):
  """(params, x (B, ...), indices (B,)) -> (logp (B,), nfe (B,)), to be jitted; for the bounds
  logp is the ELBO, a lower bound on log p."""
  e = config.eval
  _check_route(config, sde)
  base_key = build.stream_key(config, "likelihood")
  bins = discrete_bins(config) if build.data_info(config).is_image else None

  def fn(params, x, indices):
    keys = samplers.sample_keys(base_key, indices)
    fns = build.model_fns(sde, score_model, params)
    if e.likelihood == "ode":
      return _ode_log_likelihood(config, sde, fns, x, keys)
    if e.likelihood == "elbo":
      bound, _ = bounds.continuous_elbo(fns, x, keys, e.elbo_draws, e.eps, e.elbo_t_sampling)
      draws = e.elbo_draws
    else:
      bound, _ = bounds.discrete_elbo(fns, x, keys, e.elbo_draws, bins=bins)
      draws = 2 * e.elbo_draws
    return -bound, np.full(x.shape[:1], draws, np.int32)

  return fn


def dequantization_of(config) -> str:
  """How the held-out data are dequantised: 'none' for points and for elbo_discrete (8-bit
  values k / 255), else eval.dequantization."""
  if not build.data_info(config).is_image or config.eval.likelihood == "elbo_discrete":
    return "none"
  return config.eval.dequantization


def held_out_data(config, repeat: int = 0) -> np.ndarray:
  """The first eval.num_samples test examples in model space; images uniformly dequantised with
  the noise of dequantisation repeat `repeat`, or the 8-bit values k / 255 (bin centres)."""
  source = build.load_split(config, "test")
  n = min(config.eval.num_samples, len(source))
  rng = np.random.default_rng([config.seed, build.RNG_STREAMS["likelihood"], repeat])
  return data_sources.preprocess(source[np.arange(n)], is_image=build.data_info(config).is_image,
                                 centered=config.data.centered,
                                 uniform_dequantization=dequantization_of(config) == "uniform",
                                 rng=rng)


def num_repeats(config) -> int:
  """Dequantisation repeats (eval.bpd_num_repeats, the released eval); 1 without dequantisation."""
  return config.eval.bpd_num_repeats if dequantization_of(config) != "none" else 1


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
DISCRETE_NOTES = {
    "elbo_discrete": ("bits_per_dim is the bound on the 8-bit pixels' NLL under DDPM's "
                      "discretised decoder: no dequantisation and no offset."),
    "ode": ("bits_per_dim bounds the 8-bit pixels' NLL by truncated-normal dequantisation "
            "(i-DODE): the probability of each pixel's bin, no offset.")}
BOUND_NOTE = " It is an upper bound on the NLL (a lower bound on log p), not its exact value."
WEIGHTED_NOTE = (" Over the {repeats} dequantisations bits_per_dim_importance_weighted (logsumexp "
                 "over repeats) is the tighter bound.")


def importance_weighted(logp):
  """log (1/R sum_r exp(logp_r)) per example over R repeats (R, N) -> (N,): the importance-
  weighted bound of R dequantisations (Burda et al. 2016), tighter than their mean."""
  return np.logaddexp.reduce(logp, axis=0) - np.log(logp.shape[0])


def summarize(config, logp, nfe, data, score_model) -> dict:
  """The likelihood record over the solves that succeeded (failed, NaN, solves are counted, not
  averaged), logp (R, N) over R dequantisation repeats:

  - continuous_nats_per_dim: mean -log p(x) / dim of the model's continuous density of the data
    in model space ([-1, 1] or [0, 1] for images, after dequantisation), no offset;
  - bits_per_dim and its standard error over repeats x examples: for images the paper's number
    (Table 2), bits/dim of the discrete data on [0, 256) (samplers.bits_per_dim: + 7 bits on
    [-1, 1], + 8 on [0, 1]); for points continuous_nats_per_dim / ln 2;
  - bits_per_dim_importance_weighted (ode, R > 1): from the importance-weighted bound over
    repeats (each exp(logp_r) an unbiased estimate of the bin's probability);
  - exact_continuous_nats_per_dim (the analytic model): the exact density's, the ground truth;
  - mean_nfe, counts, the route (eval.likelihood), whether its number is exact or an upper bound,
    the dequantisation, and a `note` saying which number is which.
  Without uniform dequantisation (elbo_discrete, truncated_normal) logp is the probability of the
  8-bit data itself: discrete_nats_per_dim replaces continuous_nats_per_dim and bits_per_dim has
  no offset.
  """
  info, route = build.data_info(config), config.eval.likelihood
  dequantization_name = dequantization_of(config)
  dim = int(np.prod(info.shape))
  ok = np.isfinite(logp)
  width = 2.0 if config.data.centered else 1.0
  continuous = not info.is_image or dequantization_name == "uniform"
  to_bpd = lambda v: (samplers.bits_per_dim(v, dim, width) if info.is_image and continuous
                      else -v / (dim * np.log(2.0)))
  bpd = to_bpd(logp[ok])
  exact = route == "ode" and dequantization_name == "none"
  record = {"likelihood": route, "kind": "exact" if exact else "upper bound",
            "dequantization": dequantization_name,
            "num_examples": int(logp.shape[1]), "num_repeats": int(logp.shape[0]),
            "num_failed": int((~ok).sum()),
            f"{'continuous' if continuous else 'discrete'}_nats_per_dim":
                float(np.mean(-logp[ok]) / dim),
            "bits_per_dim": float(np.mean(bpd)),
            "bits_per_dim_stderr": float(np.std(bpd, ddof=1) / np.sqrt(bpd.size)) if bpd.size > 1
                                   else float("nan"),
            "mean_nfe": float(np.mean(nfe))}
  weighted = route == "ode" and logp.shape[0] > 1  # exp(logp_r): unbiased estimates of P(x^)
  if weighted:
    every = ok.all(axis=0)
    record["bits_per_dim_importance_weighted"] = float(np.mean(to_bpd(
        importance_weighted(logp[:, every]))))
  if isinstance(score_model, models.AnalyticGMMScore):  # ground truth for the analytic model
    truth = score_model.log_prob(data, np.full(len(data), config.eval.eps, np.float32))
    record["exact_continuous_nats_per_dim"] = float(np.mean(-np.asarray(truth)[ok[-1]]) / dim)
  note = (POINTS_NOTE if not info.is_image else IMAGE_NOTE if continuous
          else DISCRETE_NOTES[route])
  record["note"] = (note.format(space="[-1, 1]" if config.data.centered else "[0, 1]")
                    + ("" if exact else BOUND_NOTE)
                    + (WEIGHTED_NOTE.format(repeats=logp.shape[0]) if weighted else ""))
  return record
