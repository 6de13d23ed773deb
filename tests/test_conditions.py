"""Conditions compose (conditioning.conditions): on a labelled 2-D mixture with diagonal
covariances, classifier guidance of class y combined with inpainting of coordinate 1 samples the
exact p(x_2 | y, x_1) = N(mu_y2, var_y2) (given the class the coordinates are independent, so
replacement is exact), which neither condition alone gives. Every CONDITIONS entry builds from
the resources its signature names and meets its own exact check."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conditioning
import models
import samplers
from data_sources.mixture import GaussianMixture
from sde_lib import VPSDE

SDE = VPSDE()
DIAGONAL = GaussianMixture(weights=(0.5, 0.5), means=((-1.0, -1.5), (1.5, 2.0)),
                           covs=(((0.5, 0.0), (0.0, 0.3)), ((0.8, 0.0), (0.0, 0.4))))
N, X1, LABEL = 2000, 0.2, 1
KEYS = samplers.sample_keys(jax.random.key(7), jnp.arange(N))
OBSERVATION = conditioning.MaskObservation(np.array([True, False]))
SCORE = models.AnalyticGMMScore(SDE, DIAGONAL)
CLASSIFIER = models.AnalyticGMMClassifier(SDE, DIAGONAL)
CONDITIONAL = models.AnalyticGMMConditionalScore(SDE, DIAGONAL)
RESOURCES = {"observation": OBSERVATION, "null_label": 2,
             "classifier_log_probs": lambda p, x, t: CLASSIFIER.log_probs({}, x, t),
             "score_given_labels": lambda p, x, t, y: CONDITIONAL.score({}, x, t, labels=y)}
DATA = {"labels": jnp.full((N,), LABEL, jnp.int32), "y": jnp.tile(jnp.array([[X1, 0.0]]), (N, 1))}
BASE = samplers.ModelFns(SDE, lambda x, t: SCORE.score({}, x, t))


def draw(names, settings=None):
  """Samples (N, 2) of PC (200 steps) with the conditions `names` applied in order."""
  conditions = [conditioning.build_condition(n, RESOURCES, settings or {}) for n in names]
  apply = conditioning.compose(conditions)
  times = samplers.make_grid(SDE, "uniform", 200, 1e-3)

  def run(keys, data):
    fns = apply(BASE, {}, data, keys)
    return samplers.get_solver("pc").sample(fns, times, keys, (2,))[0]

  return np.asarray(jax.jit(run)(KEYS, DATA), np.float64)


def x2_errors(x):
  """(mean error in standard errors, variance error in standard errors) of x_2 against
  N(mu_y2, var_y2)."""
  mean, var = DIAGONAL.means[LABEL][1], DIAGONAL.covs[LABEL][1][1]
  x2 = x[:, 1]
  return (abs(x2.mean() - mean) / np.sqrt(var / len(x2)),
          abs(x2.var() - var) / (var * np.sqrt(2.0 / len(x2))))


def test_classifier_guidance_with_inpainting_samples_the_exact_conditional():
  x = draw(["classifier", "replacement"])
  np.testing.assert_allclose(x[:, 0], X1, atol=1e-6)  # the observed coordinate, as given
  mean_z, var_z = x2_errors(x)
  assert mean_z < 4.5 and var_z < 4.5, (mean_z, var_z)


@pytest.mark.parametrize("names", [["replacement"], ["classifier"]])
def test_either_condition_alone_misses_it(names):
  """Inpainting alone mixes both classes at x_1; guidance alone leaves x_1 free."""
  x = draw(names)
  mean_z, var_z = x2_errors(x)
  free_x1 = np.abs(x[:, 0] - X1).max() > 0.5
  assert max(mean_z, var_z) > 10 or free_x1, (mean_z, var_z)


# Each condition's exact check: (settings, check(base fns, conditioned fns)).
def _is_component_score(base, fns):
  x = jax.random.normal(jax.random.key(0), (N, 2)) * 2.0
  t = jnp.linspace(1e-3, 1.0, N)
  exact = CONDITIONAL.score({}, x, t, labels=DATA["labels"])
  np.testing.assert_allclose(fns.score(x, t), exact, rtol=2e-3, atol=2e-3)


def _pins_the_observation(base, fns):
  x = jax.random.normal(jax.random.key(0), (N, 2))
  np.testing.assert_array_equal(np.asarray(fns.constrain(x, None, 0))[:, 0], np.float32(X1))
  assert base.project is None


def _pulls_toward_the_observation(base, fns):
  """The added score term is J_D^T A^T (y - A D) / v with J_D = Cov[x0 | x] a / s^2 positive
  semi-definite: along A^T (y - A D) it is >= 0 for every sample, and > 0 for most."""
  x = jax.random.normal(jax.random.key(0), (N, 2))
  t = jnp.full((N,), 0.3)
  term = np.asarray(fns.score(x, t) - base.score(x, t))
  residual = X1 - np.asarray(base.denoise(x, t))[:, 0]
  along = term[:, 0] * residual
  assert along.min() >= -1e-6 and np.mean(along > 1e-6) > 0.9, along.min()


CHECKS = {"classifier": ({"scale": 1.0}, _is_component_score),
          "cfg": ({"scale": 0.0}, _is_component_score),
          "replacement": ({}, _pins_the_observation),
          "pigdm": ({"scale": 1.0}, _pulls_toward_the_observation),
          "dps": ({"observation_noise": 0.1}, _pulls_toward_the_observation)}


@pytest.mark.parametrize("name", sorted(conditioning.CONDITIONS))
def test_every_registered_condition_meets_its_check(name):
  assert name in CHECKS, f"condition {name!r} needs an exact check in tests/test_conditions.py"
  settings, check = CHECKS[name]
  condition = conditioning.build_condition(name, RESOURCES, settings)
  check(BASE, condition.apply(BASE, {}, DATA, KEYS))


def test_projections_need_a_grid_solver():
  from workflows import build  # pylint: disable=import-outside-toplevel
  projecting = [conditioning.build_condition("replacement", RESOURCES, {})]
  with pytest.raises(ValueError, match="grid solver") as error:
    build.check_solver_fits("ode", projecting)
  assert "\n" not in str(error.value)
  build.check_solver_fits("ode", [conditioning.build_condition("classifier", RESOURCES, {})])
