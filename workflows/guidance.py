"""Class-conditional sampling from a config: classifier guidance (sampling.task=class_conditional)
and classifier-free guidance (sampling.task=cfg), on every solver (conditioning.guidance).

The classifier of `config.classifier` lives in its own workdir (sampling.classifier_workdir, by
default WORKDIR/classifier) with classifier.json recording the data and SDE it was trained for.
Sample i gets label sampling.class_label, or i % data.num_classes when that is -1.
"""
import dataclasses
import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import models
import samplers
from conditioning import guidance
from configs.errors import MissingFileError, UserError
from models import classifiers
from parallel import DataParallel
from training import checkpoints
from workflows import build, outputs
from workflows.batches import map_global_batches

INFO_FILE = "classifier.json"


def check_task(config) -> None:
  """Rejects class labels out of range and negative guidance weights."""
  s, k = config.sampling, config.data.num_classes
  if not -1 <= s.class_label < k:
    raise UserError(f"sampling.class_label={s.class_label} is out of range: the data has "
                     f"{k} classes (0..{k - 1}); -1 samples every class in turn.")
  if s.task == "cfg":
    guidance.check_guidance_weight(s.guidance_scale)
    if not config.model.class_conditional:
      raise UserError("sampling.task='cfg' needs a class-conditional score model: train it with "
                       "--config.model.class_conditional=True (and training.label_dropout > 0).")
  elif s.guidance_scale < 0:
    raise UserError(f"sampling.guidance_scale={s.guidance_scale} must be >= 0 (1: the paper's "
                     "conditional score, 0: unconditional).")


# --- classifiers ---------------------------------------------------------------------------

def classifier_dir(config, workdir) -> pathlib.Path:
  return pathlib.Path(config.sampling.classifier_workdir or pathlib.Path(workdir) / "classifier")


def noise_input(config) -> str:
  name = config.classifier.noise_input
  if name == "auto":
    return "log_sigma" if config.sde.name in ("vesde", "edm") else "time"
  return name


def build_classifier(config, sde):
  """models.CLASSIFIERS[classifier.name] as a NoiseConditionalClassifier, or the exact
  AnalyticGMMClassifier for `gmm_analytic`."""
  c = config.classifier
  if c.name == models.ANALYTIC:
    if config.data.dataset != "gmm":
      raise UserError("classifier.name='gmm_analytic' is the exact classifier of "
                       f"data.dataset='gmm'; got data.dataset={config.data.dataset!r}.")
    return models.AnalyticGMMClassifier(sde, build.build_mixture(config.data))
  cls = classifiers.get_classifier_class(c.name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "num_classes"}
  network = cls(num_classes=config.data.num_classes, **{k: c[k] for k in fields & set(c.keys())})
  return classifiers.NoiseConditionalClassifier(sde, network, noise_input(config))


def training_config(config):
  """config with training.* and optim.* set from the classifier section (steps, batch, lr)."""
  config = config.copy_and_resolve_references()
  c = config.classifier
  config.training.n_iters, config.training.batch_size = c.n_iters, c.batch_size
  config.optim.lr, config.optim.warmup = c.lr, c.warmup
  return config


def trained_for(config) -> dict:
  """What a classifier depends on: guidance with another dataset or SDE is an error."""
  return {"dataset": config.data.dataset, "num_classes": config.data.num_classes,
          "image_size": config.data.get("image_size", 0), "sde": config.sde.to_dict(),
          "classifier": config.classifier.name}


def check_trained_for(config, directory: pathlib.Path) -> None:
  info_path = directory / INFO_FILE
  if not info_path.is_file():
    raise MissingFileError(
        f"No classifier in {directory}: train one with --mode=train_classifier, or set "
        "--config.sampling.classifier_workdir=DIR.")
  saved, wanted = json.loads(info_path.read_text()), trained_for(config)
  diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
  if diff:
    raise UserError(f"The classifier in {directory} was trained for other data or another SDE "
                     f"(saved, this config): {diff}. Train a classifier for this config "
                     "(--mode=train_classifier) or use its own config.")


def load_classifier_params(config, workdir, classifier, sharding):
  """EMA params of the newest classifier checkpoint ({} for the analytic classifier)."""
  if config.classifier.name == models.ANALYTIC:
    return {}
  directory = classifier_dir(config, workdir)
  check_trained_for(config, directory)
  cconfig = training_config(config)
  optimizer = build.build_optimizer(cconfig)
  init = build.state_initializer(cconfig, classifier, optimizer)
  manager = checkpoints.require_checkpoint(directory)
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                          jax.eval_shape(init, jax.random.key(0)))
  try:
    return checkpoints.restore_latest(manager, abstract).ema_params
  finally:
    manager.close()


# --- conditional sampling ------------------------------------------------------------------

def sample_labels(indices, class_label: int, num_classes: int):
  """Label of each sample index (B,): class_label, or index % num_classes for -1."""
  if class_label >= 0:
    return jnp.full(indices.shape, class_label, jnp.int32)
  return (indices % num_classes).astype(jnp.int32)


def conditional_score_fn(config, score_model, classifier):
  """(params {"score", "classifier"}, labels (B,) or ()) -> score(x, t) of config.sampling.task."""
  s = config.sampling
  if s.task == "cfg":
    null = config.data.num_classes

    def cfg(params, labels):
      score = functools.partial(score_model.score, params["score"])
      cond = lambda x, t: score(x, t, labels=jnp.broadcast_to(labels, x.shape[:1]))
      uncond = lambda x, t: score(x, t, labels=jnp.full(x.shape[:1], null, jnp.int32))
      return guidance.cfg_score(cond, uncond, s.guidance_scale)

    return cfg

  def guided(params, labels):
    log_probs = functools.partial(classifier.log_probs, params["classifier"])
    return guidance.classifier_guided_score(functools.partial(score_model.score, params["score"]),
                                            guidance.label_log_prob(log_probs, labels),
                                            s.guidance_scale)

  return guided


def make_conditional_sample_fn(config, sde, score_of, parallel: DataParallel):
  """Jitted (params, indices (B,)) -> (samples, nfe (B,), labels (B,)) with score_of(params,
  labels) as the model. The per-sample adaptive ODE is vmapped over samples with their labels."""
  s = config.sampling
  solver, options = samplers.get_solver(s.method), build.solver_options(config, sde)
  times = (samplers.make_grid(sde, s.grid, s.num_steps, s.eps, s.grid_rho)
           if solver.uses_grid else None)
  shape, base_key = build.data_info(config).shape, build.stream_key(config, "sample")

  def run(params, keys, labels):
    x, nfe = solver.sample(samplers.ModelFns(sde, score_of(params, labels)), times, keys, shape,
                           **options)
    return x, jnp.broadcast_to(jnp.asarray(nfe, jnp.int32), (keys.shape[0],))

  def sample_fn(params, indices):
    keys = samplers.sample_keys(base_key, indices)
    labels = sample_labels(indices, s.class_label, config.data.num_classes)
    if s.method == "ode" and not s.ode_whole_batch:
      x, nfe = jax.vmap(lambda k, y: run(params, k[None], y[None]))(keys, labels)
      return x[:, 0], nfe[:, 0], labels
    return (*run(params, keys, labels), labels)

  return jax.jit(sample_fn, in_shardings=(parallel.replicated, parallel.batch),
                 out_shardings=(parallel.batch,) * 3)


def sample_conditional(config, workdir):
  """--mode=sample for class_conditional / cfg: writes (outputs.write_samples) the .npz (samples,
  labels, nfe, failed), .png (one row per class for class_label -1) and .json of e.g.
  WORKDIR/samples/cfg_class3_scale2_pc_1000; returns (samples, labels)."""
  check_task(config)
  workdir, parallel = pathlib.Path(workdir), DataParallel.over_all_devices()
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  params = {"score": build.load_score_params(config, workdir, score_model, parallel.replicated)}
  classifier = None
  if config.sampling.task == "class_conditional":
    classifier = build_classifier(config, sde)
    params["classifier"] = load_classifier_params(config, workdir, classifier,
                                                  parallel.replicated)
  sample_fn = make_conditional_sample_fn(
      config, sde, conditional_score_fn(config, score_model, classifier), parallel)
  start = time.perf_counter()
  x, nfe, labels = map_global_batches(lambda idx: sample_fn(params, idx),
                                      config.sampling.num_samples, config.sampling.batch_size,
                                      parallel, lambda idx: (idx.astype(np.int32),), "sample")
  _write(config, workdir, x, nfe, labels, time.perf_counter() - start)
  return x, labels


def _write(config, workdir: pathlib.Path, x, nfe, labels, seconds: float) -> None:
  failed = ~np.all(np.isfinite(x.reshape(len(x), -1)), axis=-1)
  if jax.process_index() != 0:
    return
  path = outputs.write_samples(config, workdir, dict(samples=x, labels=labels, nfe=nfe,
                                                     failed=failed))
  s = config.sampling
  print(f"Wrote {len(x)} samples of {s.task} (class_label {s.class_label}, guidance_scale "
        f"{s.guidance_scale}) to {path} (and .png, .json) ({seconds:.1f} s, {s.method}, NFE mean "
        f"{nfe.mean():.0f}, failed {int(failed.sum())}).")
