"""--mode=train_classifier: a noise-conditional classifier p_t(y | x(t)) for classifier guidance
(Song et al. 2021, App. I.1), trained by cross-entropy on x(t) ~ p_0t(x(t) | x(0)), t ~ U(eps, T)
under config's SDE, with the score trainer's state, checkpoints, resume and data parallelism.

It writes to sampling.guidance.classifier_workdir (default WORKDIR/classifier): checkpoints/, config.json,
metrics.jsonl and classifier.json (the data and SDE it is for, checked when sampling).
"""
import json

import jax

import fileio
from configs.errors import UserError
from training import losses
from training.state import TrainState
from workflows import build, guidance
from workflows.train import Trainer, make_trainer, run_training


def build_classifier_trainer(config) -> Trainer:
  """The Trainer of config.classifier under training_config(config) (classifier.n_iters, ...)."""
  build.check_config(config)
  cconfig = guidance.training_config(config)
  sde = build.build_sde(cconfig)
  classifier = guidance.build_classifier(cconfig, sde)
  if not classifier.has_parameters:
    raise UserError(f"classifier.name={config.classifier.name!r} is exact and has no parameters: "
                    "nothing to train. Sample with --mode=sample "
                    "--config.sampling.guidance.method=classifier.")
  optimizer = build.build_optimizer(cconfig)
  loss = losses.classifier_loss(sde, classifier, eps=cconfig.classifier.eps)
  return make_trainer(cconfig, loss, optimizer,
                      build.state_initializer(cconfig, classifier, optimizer), with_labels=True)


def train_classifier(config, workdir) -> TrainState:
  """Trains to classifier.n_iters, resuming from the newest checkpoint of the classifier dir."""
  trainer = build_classifier_trainer(config)
  directory = guidance.classifier_dir(config, workdir)
  if jax.process_index() == 0:
    fileio.write_text_atomic(directory / guidance.INFO_FILE,
                             json.dumps(guidance.trained_for(config), indent=2))
  return run_training(trainer, directory, sample_grids=False)
