"""The label condition from a config: classifier guidance (sampling.guidance.method=classifier)
and classifier-free guidance (cfg), for every task and solver (conditioning.conditions).

The classifier of `config.classifier` lives in its own workdir (sampling.guidance.classifier_workdir,
by default WORKDIR/classifier) with classifier.json recording the data and SDE it was trained for.
Sample i gets label sampling.guidance.class_label, or i % data.num_classes when that is -1.
"""
import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp

import conditioning
import models
from configs.errors import MissingFileError, UserError
from models import classifiers
from training import checkpoints
from workflows import build

INFO_FILE = "classifier.json"
GUIDANCE = ("none", "classifier", "cfg")


def check_guidance(config) -> None:
  """Rejects unknown guidance methods, class labels out of range and CFG on a model without a
  label input, before any work."""
  g, k = config.sampling.guidance, config.data.num_classes
  if g.method not in GUIDANCE:
    raise UserError(f"Unknown sampling.guidance.method {g.method!r}; choose one of "
                    f"{list(GUIDANCE)}.")
  if g.method == "none":
    return
  if not -1 <= g.class_label < k:
    raise UserError(f"sampling.guidance.class_label={g.class_label} is out of range: the data has "
                    f"{k} classes (0..{k - 1}); -1 samples every class in turn.")
  if g.method == "cfg" and not config.model.class_conditional:
    raise UserError("sampling.guidance.method='cfg' needs a class-conditional score model: train "
                    "it with --config.model.class_conditional=True (and training.label_dropout > 0).")


# --- classifiers ---------------------------------------------------------------------------

def classifier_dir(config, workdir) -> pathlib.Path:
  return pathlib.Path(config.sampling.guidance.classifier_workdir
                      or pathlib.Path(workdir) / "classifier")


def noise_input(config, sde) -> str:
  """classifier.noise_input, 'auto' being the SDE's choice (sde.classifier_noise_input)."""
  name = config.classifier.noise_input
  return sde.classifier_noise_input() if name == "auto" else name


def build_classifier(config, sde):
  """models.CLASSIFIERS[classifier.name] as a NoiseConditionalClassifier, or the exact
  models.EXACT_CLASSIFIERS[classifier.name] of the data's mixture."""
  c = config.classifier
  if c.name in models.EXACT_CLASSIFIERS:
    return models.EXACT_CLASSIFIERS[c.name](sde, build.exact_mixture(config, "classifier.name"))
  with build.section_keys("classifier"):
    cls = classifiers.get_classifier_class(c.name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "num_classes"}
  network = cls(num_classes=config.data.num_classes, **{k: c[k] for k in fields & set(c.keys())})
  return classifiers.NoiseConditionalClassifier(sde, network, noise_input(config, sde))


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
        "--config.sampling.guidance.classifier_workdir=DIR.")
  saved, wanted = json.loads(info_path.read_text()), trained_for(config)
  diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
  if diff:
    raise UserError(f"The classifier in {directory} was trained for other data or another SDE "
                     f"(saved, this config): {diff}. Train a classifier for this config "
                     "(--mode=train_classifier) or use its own config.")


def load_classifier_params(config, workdir, classifier, sharding):
  """EMA params of the newest classifier checkpoint ({} for one without parameters)."""
  if not classifier.has_parameters:
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


# --- the label condition --------------------------------------------------------------------

def sample_labels(indices, class_label: int, num_classes: int):
  """Label of each sample index (B,): class_label, or index % num_classes for -1."""
  if class_label >= 0:
    return jnp.full(indices.shape, class_label, jnp.int32)
  return (indices % num_classes).astype(jnp.int32)


def label_condition(config, workdir, sde, score_model, sharding):
  """(conditioning.Condition of sampling.guidance.method, its params {"classifier": ...} or {})."""
  g, resources, params = config.sampling.guidance, {}, {}
  if g.method == "classifier":
    classifier = build_classifier(config, sde)
    params["classifier"] = load_classifier_params(config, workdir, classifier, sharding)
    resources["classifier_log_probs"] = lambda p, x, t: classifier.log_probs(p["classifier"], x, t)
  resources["null_label"] = config.data.num_classes
  resources["score_given_labels"] = lambda p, x, t, y: score_model.score(p["score"], x, t, labels=y)
  with build.section_keys("sampling.guidance"):
    return conditioning.build_condition(g.method, resources, g), params
