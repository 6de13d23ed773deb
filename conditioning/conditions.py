"""Conditions as transformations of the model every solver queries (samplers.ModelFns).

A Condition's apply(fns, params, data, keys) -> fns takes the run's parameter pytree (params
{"score": ..., "classifier": ...}), the per-sample condition data (data {"labels": (B,) int32,
"y": (B, ...)}: one pytree, sharded like the batch) and the per-sample keys (B, key). One sampler
builder (workflows.build.build_sampler) applies a list of them in order, so conditions compose
with each other and with every solver:

  cfg          replaces the score by (1 + w) s(x | y) - w s(x) (Ho & Salimans 2022, Eq. 6): first;
  classifier   adds scale * grad log p_t(y | x) (Song et al. 2021, Sec. 5; Dhariwal & Nichol 2021);
  replacement  projects the observed part of x onto y after every update (App. I.2-I.3);
  pigdm, dps   posterior guidance for y = A x + noise through the incoming model's D
               (conditioning.posterior), so after the label conditions: grad log p_t(x | c, y) =
               grad log p_t(x | c) + grad log p_t(y | x, c).

Additive terms (classifier guidance) commute with each other and with projections; the order
fixed above (labels, then observations) is the one where every combination is the maths above.
A projection needs a grid solver (`projects`); score transforms run on every solver, the
adaptive ODE included.

Registry: CONDITIONS[name] is a factory; build_condition passes it, by its signature, the
resources it names (observation, classifier_log_probs, score_given_labels, null_label) and the
settings of its config section (sampling.guidance or sampling.inverse). A new condition is one
factory plus one CONDITIONS line.
"""
import inspect
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from conditioning.guidance import check_guidance_weight, label_log_prob
from conditioning.posterior import check_posterior_noise, posterior_guided_score, VARIANCES
from conditioning.replacement import replacement_project
from configs.errors import ArgumentError, UserError


class Condition(NamedTuple):
  apply: Callable  # (fns, params, data, keys) -> fns
  projects: bool = False  # sets fns.project (grid solvers only)


def classifier_guidance(classifier_log_probs, scale: float = 1.0) -> Condition:
  """+ scale grad_x log p_t(y | x) of data["labels"]; classifier_log_probs(params, x, t) ->
  (B, K) log-probabilities (params: the run's, with "classifier")."""
  if scale < 0:
    raise ArgumentError("scale", f"Classifier guidance {{arg}}={scale} must be >= 0 (1: the "
                        "paper's conditional score, 0: unconditional).")

  def apply(fns, params, data, keys):
    del keys
    log_prob_y = label_log_prob(lambda x, t: classifier_log_probs(params, x, t), data["labels"])
    grad = jax.grad(lambda x, t: jnp.sum(log_prob_y(x, t)))
    return fns.plus(lambda x, t: scale * grad(x, t))

  return Condition(apply)


def classifier_free_guidance(score_given_labels, null_label: int, scale: float = 1.0) -> Condition:
  """The score (1 + w) s(x | y) - w s(x | null), w = scale, of data["labels"];
  score_given_labels(params, x, t, labels (B,)) -> (B, ...)."""
  check_guidance_weight(scale)

  def apply(fns, params, data, keys):
    del keys

    def score(x, t):
      labels = jnp.broadcast_to(data["labels"], x.shape[:1])
      cond = score_given_labels(params, x, t, labels)
      uncond = score_given_labels(params, x, t, jnp.full(x.shape[:1], null_label, jnp.int32))
      return (1.0 + scale) * cond - scale * uncond

    return fns.with_score(score)

  return Condition(apply)


def replacement(observation, observation_noise: float = 0.0) -> Condition:
  """Replace the observed part by data["y"] perturbed to the state's time (noise-free y)."""
  if observation_noise != 0:
    raise ArgumentError("observation_noise", "Replacement assumes noise-free observations y = A x "
                        f"({{arg}}={observation_noise}); use posterior guidance ('pigdm' or "
                        "'dps') for noisy ones.")

  def apply(fns, params, data, keys):
    del params
    return fns.with_project(replacement_project(fns.sde, observation, data["y"], keys))

  return Condition(apply, projects=True)


def posterior_guidance(name: str) -> Callable:
  """The factory of posterior guidance `name` (conditioning.posterior.VARIANCES)."""

  def factory(observation, observation_noise: float = 0.0, scale: float = 1.0) -> Condition:
    check_posterior_noise(name, observation_noise)

    def apply(fns, params, data, keys):
      del params, keys
      return fns.with_score(posterior_guided_score(fns, observation, data["y"],
                                                   observation_noise, scale, VARIANCES[name]))

    return Condition(apply)

  return factory


CONDITIONS = {"cfg": classifier_free_guidance, "classifier": classifier_guidance,
              "replacement": replacement, "pigdm": posterior_guidance("pigdm"),
              "dps": posterior_guidance("dps")}


def build_condition(name: str, resources: dict, settings) -> Condition:
  """CONDITIONS[name] called with the resources and settings its signature names."""
  if name not in CONDITIONS:
    raise UserError(f"Unknown condition {name!r}; choose one of {sorted(CONDITIONS)}.")
  factory = CONDITIONS[name]
  names = inspect.signature(factory).parameters
  kwargs = {k: settings[k] for k in names if k in settings}
  kwargs.update({k: resources[k] for k in names if k in resources})
  return factory(**kwargs)


def compose(conditions) -> Callable:
  """apply(fns, params, data, keys) of the conditions in order (none: the model itself)."""

  def apply(fns, params, data, keys):
    for condition in conditions:
      fns = condition.apply(fns, params, data, keys)
    return fns

  return apply
