"""--mode=eval: the released evaluation loop, resumable; --mode=fid_stats: reference statistics.

For every kept checkpoint in [eval.begin_ckpt, eval.end_ckpt], eval draws eval.num_generated
samples in shards of one sampling batch, each shard written atomically to
workdir/eval/ckpt_STEP/samples_FIRST.npz and keyed by its samples' global indices (sample i always
comes from the key of i), so a killed eval resumes at the first missing shard with the same
samples and metrics. It then computes the Fréchet distance (`fd`), Inception score, KID and
precision / recall of eval.features (FID with 'inception'), and bits/dim, and appends one row per checkpoint to
workdir/eval/metrics.jsonl and to TensorBoard (workdir/tensorboard/eval); checkpoints already
in metrics.jsonl are skipped. KID is reported x 10^3 (`kid_x1e3`, `kid_x1e3_std`), as it
commonly is; `bits_per_dim` is the paper's (dequantised pixels on [0, 256): workflows.likelihood).
With eval.seeds each checkpoint is evaluated under each seed (its shards in ckpt_STEP_seedS/, the
config's own seed in ckpt_STEP/), one row per seed, then a summary row (seed_summary).

One progress bar counts the shards of every checkpoint left to evaluate (those already on disk
count as done) with its ETA. SIGINT (Ctrl-C) or SIGTERM stops it after the shard being drawn is
saved (training.interrupt: exit code 130 / 143); rerunning the command resumes at the next one.
"""
import json
import pathlib

import jax
import numpy as np
import tqdm

import configs
import evaluation
import fileio
import summaries
from parallel import DataParallel
from training import interrupt
from workflows import build
from workflows.likelihood import held_out_likelihoods, summarize
from workflows.sample import draw_samples, failed_samples, make_sample_fn


def features_in_batches(feature_fn, data, batch_size: int):
  """(features (N, F), logits (N, K) or None) of an indexable source, batch by batch."""
  parts = [feature_fn(data[np.arange(i, min(i + batch_size, len(data)))])
           for i in range(0, len(data), batch_size)]
  logits = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
  return np.concatenate([p[0] for p in parts]), logits


def reference_split_data(config):
  """The first eval.reference_examples (0: all) examples of eval.reference_split: a source."""
  source = build.load_split(config, config.eval.reference_split)
  n = config.eval.reference_examples or len(source)
  return source[np.arange(min(n, len(source)))]


def reference_features(config, workdir, parallel) -> evaluation.ReferenceFeatures:
  """The reference split's feature mean, covariance and first eval.kid_examples features (or
  None), computed once and cached in workdir/eval/ (keyed by the features, split and counts)."""
  e = config.eval
  cache = pathlib.Path(workdir) / "eval" / (
      f"reference_{e.features}_{e.reference_split}_{e.reference_examples}_{e.kid_examples}.npz")
  if cache.exists():
    with np.load(cache) as f:
      return evaluation.ReferenceFeatures(
          f["mu"], f["sigma"], f["kid_features"] if "kid_features" in f.files else None)
  data = reference_split_data(config)
  feature_fn = build.build_feature_fn(config, "uint8" if data.dtype == np.uint8 else "unit",
                                      parallel)
  features, _ = features_in_batches(feature_fn, data, e.batch_size)
  stats = evaluation.FeatureStats(features.shape[1]).update(features)
  kid = features[:e.kid_examples] if e.kid_examples else None
  if jax.process_index() == 0:
    fileio.write_npz_atomic(cache, mu=stats.mu, sigma=stats.sigma,
                            **({"kid_features": kid} if kid is not None else {}))
  return evaluation.ReferenceFeatures(stats.mu, stats.sigma, kid)


def reference(config, workdir, parallel) -> evaluation.ReferenceFeatures:
  """The real data's feature mean, covariance and KID features (None without
  eval.kid_examples). With eval.stats_path, mu and sigma come from that file and the dataset is
  read only for KID (eval.kid_examples > 0; set it to 0 when the dataset is not at hand)."""
  e = config.eval
  if not e.stats_path:
    return reference_features(config, workdir, parallel)
  ref = evaluation.load_stats(e.stats_path)
  kid = reference_features(config, workdir, parallel).kid_features if e.kid_examples else None
  return evaluation.ReferenceFeatures(ref.mu, ref.sigma, kid)


def shard_path(directory: pathlib.Path, first: int) -> pathlib.Path:
  return directory / f"samples_{first:08d}.npz"


def shard_starts(config) -> range:
  """First sample index of each shard (one sampling batch each) of eval.num_generated."""
  return range(0, config.eval.num_generated, config.sampling.batch_size)


def sample_shards(config, sample_fn, params, parallel, directory: pathlib.Path, step: int = 0,
                  request: interrupt.StopRequest | None = None, bar=None):
  """Samples 0..eval.num_generated-1, shard by shard (one sampling batch each): read back where
  a shard file exists, else drawn and written atomically (then `bar` advances by one). Yields
  (samples, nfe) per shard. With a set `request` (a signal came), raises Interrupted before
  drawing the next shard, all earlier ones saved."""
  batch, total = config.sampling.batch_size, config.eval.num_generated

  def stop_if_requested(saved: int):
    if request is not None:
      request.raise_if_set(f"at checkpoint {step}, after {saved} of {total} samples; saved")

  for first in shard_starts(config):
    path = shard_path(directory, first)
    if path.exists():
      with np.load(path) as f:
        yield f["samples"], f["nfe"]
      continue
    stop_if_requested(first)
    x, nfe, _ = draw_samples(sample_fn, {"score": params}, parallel, batch, min(batch, total - first), first,
                          progress=False)
    if jax.process_index() == 0:
      directory.mkdir(parents=True, exist_ok=True)
      fileio.write_npz_atomic(path, samples=x, nfe=nfe, indices=np.arange(first, first + len(x)))
    if bar is not None:
      bar.update(1)
    stop_if_requested(first + len(x))
    yield x, nfe


def sample_features(shards, feature_fn):
  """(features (N, F), logits (N, K) or None, NFEs (N,), failed count) of the shards' finite
  samples."""
  features, logits, nfes, failed = [], [], [], 0
  for x, nfe in shards:
    bad = failed_samples(x)
    failed += int(bad.sum())
    f, l = feature_fn(x[~bad])
    features.append(f)
    logits.append(l)
    nfes.append(nfe)
  logits = None if logits[0] is None else np.concatenate(logits)
  return np.concatenate(features), logits, np.concatenate(nfes), failed


def metrics_row(config, features, logits, nfes, failed: int,
                ref: evaluation.ReferenceFeatures) -> dict:
  """Every evaluation.SAMPLE_METRICS entry (Fréchet distance, Inception score, KID x 10^3,
  precision / recall) of sample_features' output against the reference, with the sample and
  failure counts and the mean NFE."""
  probs = None if logits is None else np.exp(evaluation.log_softmax(logits))
  row = {"features": config.eval.features, "num_samples": int(len(features)) + failed,
         "num_failed": failed, "mean_nfe": float(np.mean(nfes))}
  return row | evaluation.sample_metric_columns(evaluation.SampleFeatures(features, probs), ref)


def eval_seeds(config) -> list:
  """The seeds each checkpoint is evaluated under: eval.seeds, or the config's seed."""
  return [int(seed) for seed in config.eval.seeds] or [config.seed]


def seed_config(config, seed: int):
  """config with `seed` (every random stream: samples, likelihood probes)."""
  return config if seed == config.seed else configs.with_overrides(config, {"seed": seed})


def finished_rows(path: pathlib.Path) -> list:
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def seed_summary(step: int, seeds: list, rows: list, interval) -> dict:
  """The summary row of one checkpoint over its per-seed rows: mean, std (ddof 1) and min of
  every number they report, and the bootstrap interval of FD at the first seed."""
  keys = [k for k, v in rows[0].items() if isinstance(v, float)]
  summary = {"step": step, "seeds": seeds}
  for key in keys:
    values = np.array([row[key] for row in rows])
    summary |= {f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std(ddof=1)),
                f"{key}_min": float(values.min())}
  if interval is not None:
    summary["fd_bootstrap_95"] = [float(v) for v in interval]
  return summary


def seed_row(config, step: int, features, ref, params, sde, score_model, parallel) -> dict:
  """The metrics row of one checkpoint under config.seed: the sample metrics of `features`
  (sample_features' output; None without eval.enable_sampling) and bits/dim."""
  row = {"step": step, "seed": config.seed}
  if features is not None:
    row.update(metrics_row(config, *features, ref))
  if config.eval.enable_bpd:
    bpd = summarize(config, *held_out_likelihoods(config, params, sde, score_model, parallel,
                                                  leave=False), score_model)
    row.update({k: bpd[k] for k in ("bits_per_dim", "bits_per_dim_stderr", "num_repeats")})
  return row


def row_key(row: dict, default_seed: int) -> tuple:
  """(step, seed) of a metrics.jsonl row; seed None for a summary row, default_seed for rows
  written before eval.seeds existed."""
  return row["step"], row.get("seed", None if "seeds" in row else default_seed)


def evaluate(config, workdir) -> list:
  """Evaluates every checkpoint of the sweep under every seed (eval_seeds); returns the rows
  written: one per checkpoint and seed, and with several seeds a summary row per checkpoint
  (seed_summary; per-seed rows then go to metrics.jsonl only, the summary to TensorBoard)."""
  build.check_config(config)
  config = build.with_workdir_files(config, workdir)
  workdir = pathlib.Path(workdir)
  parallel = DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  e, seeds = config.eval, eval_seeds(config)
  metrics_path, logdir = workdir / "eval" / "metrics.jsonl", workdir / "tensorboard" / "eval"
  previous = finished_rows(metrics_path)  # checked against the workdir's config before any work:
  finished = {row_key(row, config.seed) for row in previous}
  wanted = lambda step: [(step, seed) for seed in seeds] + ([] if len(seeds) == 1 else [(step, None)])
  steps = [s for s in build.checkpoint_steps(config, workdir) if set(wanted(s)) - finished]
  sample_fns = ({seed: make_sample_fn(seed_config(config, seed), sde, score_model, parallel)
                 for seed in seeds} if e.enable_sampling else {})
  feature_fn = (build.build_feature_fn(config, build.model_input_range(config), parallel)
                if e.enable_sampling else None)
  ref = reference(config, workdir, parallel) if e.enable_sampling else None
  ckpt_dir = lambda step, seed: workdir / "eval" / (
      f"ckpt_{step}" if seed == config.seed else f"ckpt_{step}_seed{seed}")
  units = [(s, seed) for s in steps for seed in seeds if (s, seed) not in finished]
  if e.enable_sampling:  # the bar counts shards; those on disk are done
    total = len(units) * len(shard_starts(config))
    done = sum(shard_path(ckpt_dir(s, seed), first).exists()
               for s, seed in units for first in shard_starts(config))
  else:  # ... or checkpoint-seed pairs
    total, done = len(units), 0
  rows = []

  def write(row, tensorboard: bool):
    if jax.process_index() == 0:
      append_row(metrics_path, logdir, row, tensorboard)
    rows.append(row)

  def evaluate_checkpoint(step, request, bar):
    params = build.load_score_params(config, workdir, score_model, parallel.replicated, step)
    summary_due = len(seeds) > 1 and (step, None) not in finished
    interval = None
    for seed in seeds:
      need_row = (step, seed) not in finished
      need_interval = seed == seeds[0] and summary_due and e.enable_sampling and e.bootstrap > 0
      if not (need_row or need_interval):
        continue
      features = (sample_features(sample_shards(config, sample_fns[seed], params, parallel,
                                                ckpt_dir(step, seed), step, request, bar),
                                  feature_fn) if e.enable_sampling else None)
      if need_interval:
        interval = evaluation.frechet_bootstrap_interval(features[0], ref, e.bootstrap)
      if need_row:
        write(seed_row(seed_config(config, seed), step, features, ref, params, sde, score_model,
                       parallel), len(seeds) == 1)
        if not e.enable_sampling:
          bar.update(1)
    if summary_due:
      per_seed = {row_key(r, config.seed)[1]: r for r in previous + rows
                  if row_key(r, config.seed) in set(wanted(step)) - {(step, None)}}
      write(seed_summary(step, seeds, [per_seed[seed] for seed in seeds], interval), True)

  with interrupt.stop_requests() as request, tqdm.tqdm(
      total=total, initial=done, desc="eval", unit="shard" if e.enable_sampling else "ckpt",
      disable=jax.process_index() != 0) as bar:
    for step in steps:
      request.raise_if_set(f"before checkpoint {step}, {len(rows)} row(s) evaluated; saved")
      bar.set_description(f"eval ckpt {step}")
      evaluate_checkpoint(step, request, bar)
  return rows


def append_row(path: pathlib.Path, logdir: pathlib.Path, row: dict, tensorboard: bool) -> None:
  """One JSON line in eval/metrics.jsonl (appended in one write) and, if `tensorboard`, its
  scalars in TensorBoard (one row per step there: the summary row when there are seeds)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a", encoding="utf-8") as f:
    f.write(json.dumps(row) + "\n")
  if not tensorboard:
    return
  with summaries.SummaryWriter(logdir) as writer:
    for key, value in row.items():
      if isinstance(value, float):
        writer.scalar(f"eval/{key}", value, row["step"])
  tqdm.tqdm.write(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in row.items()))  # above the progress bar, not glued to it


def fid_stats(config, workdir) -> pathlib.Path:
  """Writes mu, sigma of eval.features over eval.reference_split (pytorch-fid's npz format, with
  num_images and the resize rule) to eval.stats_path, or workdir/fid_stats_DATASET_SPLIT.npz."""
  build.check_config(config)
  parallel = DataParallel.over_all_devices()
  data = reference_split_data(config)
  features, _ = features_in_batches(build.build_feature_fn(config, "uint8", parallel), data,
                                    config.eval.batch_size)
  stats = evaluation.FeatureStats(features.shape[1]).update(features)
  path = pathlib.Path(config.eval.stats_path or pathlib.Path(workdir) / (
      f"fid_stats_{config.data.dataset}_{config.eval.reference_split}.npz"))
  resize = evaluation.RESIZE_RULE if config.eval.features == "inception" else "none"
  if jax.process_index() == 0:
    evaluation.save_stats(path, stats.mu, stats.sigma, len(features), resize)
    print(f"Wrote {path}: mu {stats.mu.shape}, sigma {stats.sigma.shape} of {len(features)} "
          f"{config.data.dataset} {config.eval.reference_split} images ({config.eval.features}).")
  return path
