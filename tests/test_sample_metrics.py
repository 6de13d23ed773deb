"""Every evaluation.SAMPLE_METRICS entry against its exact answer (CHECKS: a new metric fails
here until its check is added), and the registry's column contract."""
import numpy as np
import pytest

from evaluation import SAMPLE_METRICS, ReferenceFeatures, SampleFeatures, sample_metric_columns
from test_evaluation_metrics import direct_unbiased_mmd2


def frechet_case():
  """Features at m1 +- a e_i (mean m1, covariance 2 a^2 / (2d - 1) I, ddof 1) against a
  diagonal reference: the distance is |m1 - m2|^2 + sum_i (s1 + s2_i - 2 sqrt(s1 s2_i))."""
  d, a = 3, 1.5
  m1, m2, s2 = np.array([0.5, -1.0, 2.0]), np.array([0.0, 1.0, 1.0]), np.array([0.5, 2.0, 4.0])
  features = m1 + np.concatenate([a * np.eye(d), -a * np.eye(d)])
  s1 = 2 * a ** 2 / (2 * d - 1)
  want = np.sum((m1 - m2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  return SampleFeatures(features), ReferenceFeatures(m2, np.diag(s2)), {"fd": want}


def inception_case():
  """Ten splits of the rows [1, 0] and [1/2, 1/2]: marginal [3/4, 1/4] in each, so every split
  scores exp((log(4/3) + 1/2 log(2/3) + 1/2 log 2) / 2)."""
  probs = np.tile([[1.0, 0.0], [0.5, 0.5]], (10, 1))
  score = np.exp((np.log(4 / 3) + 0.5 * np.log(2 / 3) + 0.5 * np.log(2)) / 2)
  return (SampleFeatures(np.zeros((20, 1)), probs), ReferenceFeatures(np.zeros(1), np.eye(1)),
          {"is": score, "is_std": 0.0})


def kernel_case():
  """Fewer than 1000 rows on each side: every subset is all rows, so KID x 10^3 is 10^3 times the
  unbiased MMD^2 of (x . y / d + 1)^3, summed term by term, with std 0."""
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2)) + 0.3
  mmd2 = direct_unbiased_mmd2(x, y)
  return (SampleFeatures(x), ReferenceFeatures(y.mean(0), np.cov(y.T), y),
          {"kid_x1e3": 1e3 * mmd2, "kid_x1e3_std": 0.0})


def precision_recall_case():
  """1-D features, k = 3. Real 0..4 (3rd-neighbour radii 3, 2, 2, 2, 3) and 50..53 (3, 2, 2, 3);
  generated 0.5..3.5 and 20..23 (radii 3, 2, 2, 3 in each group). Generated 20..23 lie on no real
  ball (reach: [-3, 7] and [47, 56]): precision 4/8; real 50..53 on no generated ball (reach up
  to 26): recall 5/9."""
  real = np.array([0, 1, 2, 3, 4, 50, 51, 52, 53], float)[:, None]
  generated = np.array([0.5, 1.5, 2.5, 3.5, 20, 21, 22, 23])[:, None]
  return (SampleFeatures(generated), ReferenceFeatures(np.zeros(1), np.eye(1), real),
          {"precision": 0.5, "recall": 5 / 9})


CHECKS = {"fd": frechet_case, "is": inception_case, "kid": kernel_case,
          "precision_recall": precision_recall_case}


@pytest.mark.parametrize("name", sorted(SAMPLE_METRICS))
def test_every_metric_gives_its_exact_answer(name):
  assert name in CHECKS, f"add an exact check of sample metric {name!r} to CHECKS"
  samples, reference, want = CHECKS[name]()
  got = SAMPLE_METRICS[name](samples, reference)
  assert sorted(got) == sorted(want)
  for column, value in want.items():
    assert isinstance(got[column], float)
    np.testing.assert_allclose(got[column], value, rtol=1e-9, atol=1e-12, err_msg=column)


def test_metrics_without_their_inputs_add_no_columns_and_columns_never_collide():
  samples, reference, _ = frechet_case()
  assert sorted(sample_metric_columns(samples, reference)) == ["fd"]  # no probs, no KID features
  columns = [c for name in CHECKS for c in SAMPLE_METRICS[name](*CHECKS[name]()[:2])]
  assert len(columns) == len(set(columns))


def test_precision_and_recall_move_the_right_way():
  """Identical sets: 1 and 1. Samples shrunk towards the mean keep precision and lose recall;
  shifted ones lose precision."""
  real = np.random.default_rng(0).normal(size=(600, 8))
  generated = np.random.default_rng(1).normal(size=(600, 8))
  metric = lambda g: SAMPLE_METRICS["precision_recall"](
      SampleFeatures(g), ReferenceFeatures(np.zeros(8), np.eye(8), real))
  assert metric(real) == {"precision": 1.0, "recall": 1.0}
  base, shrunk, shifted = metric(generated), metric(0.3 * generated), metric(generated + 1.5)
  assert shrunk["precision"] >= base["precision"] - 0.02 and shrunk["recall"] < base["recall"] - 0.3
  assert shifted["precision"] < base["precision"] - 0.3, (base, shifted)
