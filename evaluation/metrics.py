"""Sample-quality metrics on features or class probabilities, in float64 numpy.

- `frechet_distance`: FID (Heusel et al. 2017) from two Gaussians' (mu, sigma);
- `inception_score`: IS (Salimans et al. 2016), mean and std over splits;
- `kernel_inception_distance`: KID (Binkowski et al. 2018), unbiased MMD^2 with the cubic
  polynomial kernel over random subsets, mean and std.
"""
import numpy as np


def _psd_sqrt_factor(sigma: np.ndarray) -> np.ndarray:
  """F with F F^T = sigma for symmetric PSD sigma: eigenvectors * sqrt(eigenvalues clipped >= 0)."""
  eigenvalues, eigenvectors = np.linalg.eigh(sigma)
  return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """Tr sqrtm(sigma1 sigma2) for symmetric PSD sigma1, sigma2 (d, d), in float64.

  sigma1 sigma2 is similar to sqrt(S1) S2 sqrt(S1) = A A^T with A = sqrt(S1) sqrt(S2), symmetric
  PSD, so the trace is the sum of A's singular values. With S_i = F_i F_i^T from symmetric
  eigendecompositions, A and F1^T F2 differ by orthogonal factors and share singular values.
  Singular values carry absolute errors of eps * ||A||, where square roots of the eigenvalues
  of A A^T would carry sqrt(eps) * ||A|| on the small ones (near-singular covariances).
  """
  a = _psd_sqrt_factor(np.asarray(sigma1, np.float64)).T @ _psd_sqrt_factor(
      np.asarray(sigma2, np.float64))
  return float(np.sum(np.linalg.svd(a, compute_uv=False)))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)): mu (d,), sigma (d, d); float64.

  The value of pytorch-fid's `calculate_frechet_distance` (scipy `sqrtm`), computed from
  symmetric eigendecompositions (`trace_sqrt_product`) so it needs no complex arithmetic, no
  diagonal offset and stays accurate for singular covariances.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
    raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                     f"{sigma2.shape}.")
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2.0 * trace_sqrt_product(sigma1, sigma2))


def log_softmax(logits: np.ndarray) -> np.ndarray:
  """(N, K) logits -> (N, K) log-probabilities, float64."""
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _mean_kl_to_marginal(probs: np.ndarray) -> float:
  """mean_i KL(p(y|x_i) || p(y)) over the rows of probs (n, K), with 0 log 0 = 0."""
  marginal = probs.mean(axis=0, keepdims=True)
  safe = np.where(probs > 0, probs, 1.0)
  return float(np.mean(np.sum(probs * (np.log(safe) - np.log(np.where(probs > 0, marginal, 1.0))),
                              axis=1)))


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
  """(mean, std) over `num_splits` consecutive splits of exp(E_x KL(p(y|x) || p(y))).

  probs (N, K): class probabilities, e.g. `np.exp(log_softmax(logits))`. Splits are rows
  [i N / s, (i + 1) N / s), as in the reference code (openai/improved-gan); std has ddof 0.
  """
  probs = np.asarray(probs, np.float64)
  n = len(probs)
  if n < num_splits:
    raise ValueError(f"{n} samples cannot fill {num_splits} splits.")
  scores = [np.exp(_mean_kl_to_marginal(probs[i * n // num_splits:(i + 1) * n // num_splits]))
            for i in range(num_splits)]
  return float(np.mean(scores)), float(np.std(scores))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x, y) = (x . y / d + 1)^3 for rows of x (n, d) and y (m, d): (n, m)."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 estimate between samples x (m, d) and y (m, d), polynomial kernel."""
  m = len(x)
  k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
  return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """(mean, std) of `unbiased_mmd2` over `num_subsets` pairs of random subsets (without
  replacement within a subset) of min(subset_size, N1, N2) rows of features (N, d)."""
  x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  m = min(subset_size, len(x), len(y))
  rng = np.random.default_rng(seed)
  mmds = [unbiased_mmd2(x[rng.choice(len(x), m, replace=False)],
                        y[rng.choice(len(y), m, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(mmds)), float(np.std(mmds))


def frechet_bootstrap_interval(features: np.ndarray, reference, num: int, level: float = 0.95,
                               seed: int = 0) -> tuple[float, float]:
  """The percentile bootstrap interval of the Fréchet distance of features (N, F) to the
  reference's mu, sigma: num resamples of the N rows with replacement."""
  rng = np.random.default_rng(seed)
  distances = []
  for _ in range(num):
    rows = features[rng.integers(0, len(features), len(features))]
    distances.append(frechet_distance(rows.mean(0), np.cov(rows, rowvar=False), reference.mu,
                                      reference.sigma))
  return tuple(float(v) for v in np.quantile(distances, [(1 - level) / 2, (1 + level) / 2]))


def _pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Euclidean distances between rows of x (n, d) and y (m, d): (n, m)."""
  squared = (np.sum(x * x, 1)[:, None] - 2.0 * x @ y.T) + np.sum(y * y, 1)[None, :]
  return np.sqrt(np.maximum(squared, 0.0))


def knn_radii(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
  """Distance of each row of features (n, d) to its k-th nearest other row: (n,)."""
  return np.concatenate([np.sort(_pairwise_distances(features[i:i + chunk], features), axis=1)[:, k]
                         for i in range(0, len(features), chunk)])


def manifold_coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                      chunk: int = 1024) -> float:
  """Fraction of points (n, d) inside some ball (centres (m, d), radii (m,))."""
  inside = [np.any(_pairwise_distances(points[i:i + chunk], centres) <= radii[None, :], axis=1)
            for i in range(0, len(points), chunk)]
  return float(np.mean(np.concatenate(inside)))


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
  """Improved precision and recall (Kynkäänniemi et al. 2019, Eq. 1-3): each set's manifold is
  the union of balls reaching each feature's k-th nearest neighbour in its set; precision is the
  fraction of generated features on the real manifold, recall of real features on the generated
  one. real (N, d), generated (M, d)."""
  real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
  precision = manifold_coverage(generated, real, knn_radii(real, k))
  recall = manifold_coverage(real, generated, knn_radii(generated, k))
  return precision, recall
