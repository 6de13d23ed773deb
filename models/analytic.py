"""Models with exact scores and no parameters (an empty parameter tree): the oracles of every
sampler and likelihood test. EXACT_SCORES / EXACT_CLASSIFIERS map a config's model.name /
classifier.name to a builder from (sde, the data's mixture); workflows treat them as any model
whose `has_parameters` is False (nothing to train, load or import)."""
import dataclasses

import jax
import jax.numpy as jnp

from data_sources.mixture import GaussianMixture
from sde_lib import SDE


@dataclasses.dataclass(frozen=True)
class AnalyticGMMScore:
  """The exact score of `mixture` perturbed by `sde`: a score model with no parameters."""

  sde: SDE
  mixture: GaussianMixture
  has_parameters = False

  def init(self, rng, example_x):
    del rng, example_x
    return {}

  def score(self, params, x, t, *, train=False, rng=None):
    """grad_x log p_t(x): (B, D), (B,) -> (B, D)."""
    del params, train, rng
    return self.mixture.score(x, *self.sde.marginal_coeffs(t))

  def log_prob(self, x, t):
    """Exact log p_t(x): (B, D), (B,) -> (B,)."""
    return self.mixture.log_prob(x, *self.sde.marginal_coeffs(t))


class _LabelledMixture:
  """What the exact labelled-mixture models share: no parameters, one class per component."""

  mixture: GaussianMixture
  has_parameters = False

  @property
  def num_classes(self) -> int:
    return len(self.mixture.weights)

  def init(self, rng, example_x):
    del rng, example_x
    return {}


@dataclasses.dataclass(frozen=True)
class AnalyticGMMClassifier(_LabelledMixture):
  """The exact noise-conditional classifier of `mixture` under `sde`, the label of a point being
  its component: p_t(y | x) = the responsibilities of the perturbed components."""

  sde: SDE
  mixture: GaussianMixture

  def log_probs(self, params, x, t, *, train=False, rng=None):
    """log p_t(y | x) for every y: (B, D), (B,) -> (B, K)."""
    del params, train, rng
    log_terms, _ = self.mixture.component_terms(x, *self.sde.marginal_coeffs(t))
    return jax.nn.log_softmax(log_terms, axis=-1)


@dataclasses.dataclass(frozen=True)
class AnalyticGMMConditionalScore(_LabelledMixture):
  """Exact class-conditional scores of `mixture` under `sde`: grad log p_t(x | y) is the score
  of component y perturbed; the null label (= number of components) or no label gives the
  unconditional mixture score. A score model for classifier-free guidance with no training."""

  sde: SDE
  mixture: GaussianMixture

  def score(self, params, x, t, *, labels=None, train=False, rng=None):
    """grad_x log p_t(x | y): (B, D), (B,), labels (B,) int in [0, K] (K: null) -> (B, D)."""
    del params, train, rng
    log_terms, comp_scores = self.mixture.component_terms(x, *self.sde.marginal_coeffs(t))
    resp = jax.nn.softmax(log_terms, axis=-1)
    unconditional = jnp.sum(resp[..., None] * comp_scores, axis=1)
    if labels is None:
      return unconditional
    k = jnp.minimum(labels, self.num_classes - 1).astype(jnp.int32)
    conditional = jnp.take_along_axis(comp_scores, k[:, None, None], axis=1)[:, 0]
    return jnp.where((labels == self.num_classes)[:, None], unconditional, conditional)


def exact_score_model(sde: SDE, mixture: GaussianMixture, class_conditional: bool = False):
  """The exact score of `mixture` under `sde` (class-conditional: of each component too)."""
  return (AnalyticGMMConditionalScore if class_conditional else AnalyticGMMScore)(sde, mixture)


EXACT_SCORES = {"gmm_analytic": exact_score_model}
EXACT_CLASSIFIERS = {"gmm_analytic": AnalyticGMMClassifier}
