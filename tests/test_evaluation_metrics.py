"""FID, IS, KID and feature statistics against exact answers and pytorch-fid's formulas."""
import numpy as np
import pytest

import torch_reference
from evaluation import metrics, stats


@pytest.fixture(scope="module")
def pytorch_fid_score():
  return torch_reference.pytorch_fid_module("fid_score")


def random_rotation(d, rng):
  q, r = np.linalg.qr(rng.normal(size=(d, d)))
  return q * np.sign(np.diag(r))


def covariance_with_eigenvalues(eigenvalues, rng):
  q = random_rotation(len(eigenvalues), rng)
  return (q * eigenvalues) @ q.T


def test_frechet_distance_of_non_commuting_covariances_is_closed_form():
  # S1 = L L^T, S2 = L^-T D L^-1: S1 S2 = L D L^-1 has eigenvalues D, so Tr sqrt = sum sqrt(D).
  rng = np.random.default_rng(0)
  d = 12
  chol = np.tril(rng.normal(size=(d, d))) + 4 * np.eye(d)
  diag = rng.uniform(0.1, 3.0, d)
  inv = np.linalg.inv(chol)
  sigma1, sigma2 = chol @ chol.T, inv.T @ np.diag(diag) @ inv
  assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  exact = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
           - 2 * np.sum(np.sqrt(diag)))
  np.testing.assert_allclose(metrics.frechet_distance(mu1, sigma1, mu2, sigma2), exact, rtol=1e-12)


def test_fid_of_gaussian_samples_approaches_the_distance_of_their_parameters():
  rng = np.random.default_rng(1)
  d, n = 6, 200_000
  scales1, scales2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
  shift = rng.normal(size=d)
  rotation = random_rotation(d, rng)  # same eigenbasis: the exact distance is elementwise
  x = (rng.normal(size=(n, d)) * scales1) @ rotation.T
  y = (rng.normal(size=(n, d)) * scales2) @ rotation.T + shift
  exact = shift @ shift + np.sum((scales1 - scales2) ** 2)
  fx, fy = (stats.FeatureStats(d).update(z) for z in (x, y))
  np.testing.assert_allclose(metrics.frechet_distance(fx.mu, fx.sigma, fy.mu, fy.sigma), exact,
                             rtol=0.02)


@pytest.mark.parametrize("case", ["condition_1e8", "rank_deficient", "regular"])
def test_fid_equals_pytorch_fids_scipy_formula(pytorch_fid_score, case):
  rng = np.random.default_rng(2)
  d = 64
  if case == "condition_1e8":
    sigma1, sigma2 = (covariance_with_eigenvalues(np.logspace(0, -8, d), rng) for _ in range(2))
  elif case == "rank_deficient":  # fewer samples than dimensions: rank 39 and 49
    sigma1 = np.cov(rng.normal(size=(40, d)), rowvar=False)
    sigma2 = np.cov(1.5 * rng.normal(size=(50, d)), rowvar=False)
  else:
    sigma1 = np.cov(rng.normal(size=(400, d)), rowvar=False)
    sigma2 = np.cov(1.3 * rng.normal(size=(500, d)), rowvar=False)
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  expected = pytorch_fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
  np.testing.assert_allclose(metrics.frechet_distance(mu1, sigma1, mu2, sigma2), expected,
                             rtol=1e-7)


def test_fid_of_a_sample_with_itself_is_zero():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(300, 128)) @ rng.normal(size=(128, 128))  # scale ~ 128: trace ~ 1.6e4
  mu, sigma = x.mean(0), np.cov(x, rowvar=False)
  assert abs(metrics.frechet_distance(mu, sigma, mu, sigma)) < 1e-6
  low_rank = np.cov(x[:50], rowvar=False)  # rank 49 of 128
  assert abs(metrics.frechet_distance(mu, low_rank, mu, low_rank)) < 1e-6


def test_fid_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="shapes differ"):
    metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_inception_score_of_uniform_predictions_is_one():
  mean, std = metrics.inception_score(np.full((100, 1008), 1 / 1008))
  np.testing.assert_allclose(mean, 1.0, atol=1e-12)
  assert std < 1e-12


def test_inception_score_of_confident_distinct_classes_is_the_class_count():
  probs = np.eye(10)[np.arange(200) % 10]  # each of the 10 splits holds 2 of each class
  mean, std = metrics.inception_score(probs, num_splits=10)
  np.testing.assert_allclose(mean, 10.0, rtol=1e-12)
  assert std < 1e-12
  one_class = metrics.inception_score(np.eye(10)[np.zeros(200, int)])
  np.testing.assert_allclose(one_class, (1.0, 0.0), atol=1e-12)


def test_inception_score_from_logits_uses_splits_of_consecutive_rows():
  logits = np.log(np.eye(4)[np.r_[np.arange(40) % 4, np.zeros(40, int)]] + 1e-30)
  mean, std = metrics.inception_score(np.exp(metrics.log_softmax(logits)), num_splits=2)
  np.testing.assert_allclose([mean, std], [2.5, 1.5], rtol=1e-9)  # splits score 4 and 1


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
  rng = np.random.default_rng(4)
  d = 32
  x, y = rng.normal(size=(2000, d)), rng.normal(size=(2000, d))
  mean, std = metrics.kernel_inception_distance(x, y, num_subsets=50, subset_size=500)
  assert std > 0 and abs(mean) < 3 * std
  shifted_mean, shifted_std = metrics.kernel_inception_distance(x, y + 0.5, num_subsets=50,
                                                                subset_size=500)
  assert shifted_mean > 10 * shifted_std and shifted_mean > 10 * abs(mean)


def direct_unbiased_mmd2(x, y) -> float:
  """The unbiased MMD^2 of k(a, b) = (a . b / d + 1)^3 between x and y (m, d), term by term."""
  k = lambda a, b: (a @ b / x.shape[1] + 1) ** 3
  m = len(x)
  within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  across = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return within / (m * (m - 1)) - 2 * across / m ** 2


def test_unbiased_mmd_matches_a_direct_double_sum():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.2
  np.testing.assert_allclose(metrics.unbiased_mmd2(x, y), direct_unbiased_mmd2(x, y), rtol=1e-12)


def test_streaming_statistics_equal_mean_and_cov_of_all_features():
  rng = np.random.default_rng(6)
  features = (rng.normal(size=(1037, 40)) * rng.uniform(0.1, 10, 40) + 100).astype(np.float32)
  accumulated = stats.FeatureStats(40)
  for start in range(0, len(features), 100):  # uneven last batch
    accumulated.update(features[start:start + 100])
  assert accumulated.count == 1037
  all64 = features.astype(np.float64)
  np.testing.assert_allclose(accumulated.mu, np.mean(all64, axis=0), rtol=1e-13)
  np.testing.assert_allclose(accumulated.sigma, np.cov(all64, rowvar=False), rtol=1e-10,
                             atol=1e-12)


def test_stats_files_round_trip_and_read_like_pytorch_fids(tmp_path, pytorch_fid_score):
  rng = np.random.default_rng(7)
  mu, sigma = rng.normal(size=5), np.cov(rng.normal(size=(20, 5)), rowvar=False)
  ours = tmp_path / "ours.npz"
  stats.save_stats(ours, mu, sigma, num_images=20, resize="none")
  loaded = stats.load_stats(ours)
  np.testing.assert_array_equal(loaded.mu, mu)
  np.testing.assert_array_equal(loaded.sigma, sigma)
  assert (loaded.num_images, loaded.resize) == (20, "none")
  m, s = pytorch_fid_score.compute_statistics_of_path(str(ours), None, 1, 5, "cpu")
  np.testing.assert_array_equal(m, mu)
  np.testing.assert_array_equal(s, sigma)
  theirs = tmp_path / "theirs.npz"
  np.savez_compressed(theirs, mu=mu, sigma=sigma)  # pytorch-fid's save_fid_stats
  assert stats.load_stats(theirs).num_images is None
  np.testing.assert_array_equal(stats.load_stats(theirs).sigma, sigma)
  np.savez(tmp_path / "bad.npz", mean=mu)
  with pytest.raises(KeyError, match="mu"):
    stats.load_stats(tmp_path / "bad.npz")
