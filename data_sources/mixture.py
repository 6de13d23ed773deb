"""A Gaussian mixture: a data distribution whose perturbed densities are all closed-form.

If x(0) ~ sum_k w_k N(mu_k, S_k) and p_0t(x(t)|x(0)) = N(a x(0), s^2 I), then
x(t) ~ sum_k w_k N(a mu_k, a^2 S_k + s^2 I): log p_t and its score are exact at every (a, s),
which makes it the oracle for samplers and likelihoods (models.analytic wraps it as a model).
Its conditionals given some coordinates are mixtures again (`conditional`), and so are its
posteriors given a noisy linear observation y = A x + noise (`linear_posterior`): the ground
truth of every inverse-problem sampler.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from configs.errors import UserError



@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """weights (K,), means (K, D), covs (K, D, D) as nested tuples (hashable, usable in jit)."""

  weights: tuple
  means: tuple
  covs: tuple

  def __post_init__(self):
    w, m, c = (np.asarray(a, np.float64) for a in (self.weights, self.means, self.covs))
    if w.ndim != 1 or m.shape != (w.size, m.shape[-1]) or c.shape != m.shape + m.shape[-1:]:
      raise UserError("GaussianMixture needs weights (K,), means (K, D), covs (K, D, D); got "
                       f"{w.shape}, {m.shape}, {c.shape}.")
    if not np.isclose(w.sum(), 1.0) or np.any(w <= 0):
      raise UserError(f"GaussianMixture weights must be positive and sum to 1; got {w}.")

  @property
  def dim(self) -> int:
    return len(self.means[0])

  def _eigh(self):
    """Eigendecompositions S_k = U_k diag(lam_k) U_k^T, in numpy once: (K, D), (K, D, D)."""
    lam, vecs = np.linalg.eigh(np.asarray(self.covs, np.float64))
    return jnp.asarray(lam), jnp.asarray(vecs)  # the default float: float64 under x64

  def _component_terms(self, x, mean_coeff, std):
    """Per-component log(w_k N(x; m_k, C_k)) (B, K) and -C_k^{-1} (x - m_k) (B, K, D).

    C_k(t) = a^2 S_k + s^2 I = U_k diag(a^2 lam_k + s^2) U_k^T, so no factorisation runs in
    traced code (jaxlib 0.10's batched Cholesky can deadlock inside loops).
    """
    lam, vecs = self._eigh()
    a, s2 = mean_coeff[:, None], jnp.square(std)[:, None, None]
    diff = x[:, None, :] - a[..., None] * jnp.asarray(self.means)[None]          # (B, K, D)
    eig = jnp.square(a)[..., None] * lam[None] + s2                               # (B, K, D)
    proj = jnp.einsum("kde,bkd->bke", vecs, diff)                                 # U^T (x - m)
    solved = jnp.einsum("kde,bke->bkd", vecs, proj / eig)                         # C^{-1} (x - m)
    log_det = jnp.sum(jnp.log(eig), axis=-1)
    log_norm = -0.5 * (self.dim * np.log(2 * np.pi) + log_det + jnp.sum(proj**2 / eig, -1))
    return jnp.log(jnp.asarray(self.weights))[None] + log_norm, -solved

  def log_prob(self, x, mean_coeff, std):
    """log p_t(x): x (B, D) -> (B,)."""
    log_terms, _ = self._component_terms(x, mean_coeff, std)
    return jax.scipy.special.logsumexp(log_terms, axis=-1)

  def score(self, x, mean_coeff, std):
    """grad_x log p_t(x): x (B, D) -> (B, D), as the responsibility-weighted component scores."""
    log_terms, comp_scores = self._component_terms(x, mean_coeff, std)
    resp = jax.nn.softmax(log_terms, axis=-1)
    return jnp.sum(resp[..., None] * comp_scores, axis=1)

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """n samples (n, D) drawn with numpy."""
    return self.sample_labelled(rng, n)[0]

  def sample_labelled(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n samples (n, D) and the index of the component each came from (n,) int32."""
    k = rng.choice(len(self.weights), size=n, p=np.asarray(self.weights) / np.sum(self.weights))
    chol = np.linalg.cholesky(np.asarray(self.covs))[k]
    z = rng.standard_normal((n, self.dim))
    return np.asarray(self.means)[k] + np.einsum("nij,nj->ni", chol, z), k.astype(np.int32)

  def linear_map(self, matrix) -> "GaussianMixture":
    """The law of M x for x from this mixture and an orthogonal (or any invertible) M (D, D):
    means M mu_k, covariances M S_k M^T (e.g. images in colorization's decoupled basis)."""
    m = np.asarray(matrix, np.float64)
    means = np.asarray(self.means) @ m.T
    covs = np.einsum("ij,kjl,ml->kim", m, np.asarray(self.covs), m)
    return GaussianMixture(self.weights, _nested(means), _nested(covs))

  def conditional(self, observed_coords, values) -> "GaussianMixture":
    """The exact law of the unobserved coordinates given x[observed_coords] = values (O,):
    a mixture over the other D - O coordinates (in increasing order) with components
    N(mu_u + S_uo S_oo^-1 (v - mu_o), S_uu - S_uo S_oo^-1 S_ou) and weights proportional to
    w_k N(v; mu_o, S_oo) (Bishop 2006, Sec. 2.3.1 per component)."""
    obs = np.asarray(observed_coords, int)
    unobs = np.setdiff1d(np.arange(self.dim), obs)
    if obs.size == 0 or unobs.size == 0 or len(set(obs.tolist())) != obs.size:
      raise UserError(f"observed_coords={obs.tolist()} must be distinct, non-empty and leave "
                       f"some of the {self.dim} coordinates unobserved.")
    v = np.asarray(values, np.float64).reshape(obs.size)
    log_w, means, covs = [], [], []
    for w, mu, cov in zip(self.weights, np.asarray(self.means), np.asarray(self.covs)):
      s_oo, s_uo = cov[np.ix_(obs, obs)], cov[np.ix_(unobs, obs)]
      gain = np.linalg.solve(s_oo, s_uo.T).T  # S_uo S_oo^-1
      diff = v - mu[obs]
      log_w.append(np.log(w) - 0.5 * (diff @ np.linalg.solve(s_oo, diff)
                                      + np.linalg.slogdet(2 * np.pi * s_oo)[1]))
      means.append(mu[unobs] + gain @ diff)
      covs.append(cov[np.ix_(unobs, unobs)] - gain @ s_uo.T)
    return _from_log_weights(log_w, means, covs)

  def linear_posterior(self, matrix, y, noise_std: float) -> "GaussianMixture":
    """The exact law of x (all D coordinates) given y = A x + noise_std n, n ~ N(0, I_K), for
    A = matrix (K, D) and y (K,): per component the Gaussian posterior
    N(mu + G (y - A mu), S - G A S), G = S A^T C^-1, C = A S A^T + noise_std^2 I, with weights
    proportional to w_k N(y; A mu_k, C_k) (Bishop 2006, Sec. 2.3.3, Eq. 2.115-2.117, per
    component).
    noise_std > 0 (the noise-free posterior is degenerate; `conditional` gives it for masks)."""
    a = np.asarray(matrix, np.float64)
    if noise_std <= 0 or a.ndim != 2 or a.shape[1] != self.dim:
      raise UserError(f"linear_posterior needs noise_std > 0 (got {noise_std}) and a matrix "
                       f"(K, {self.dim}) (got {a.shape}); use `conditional` without noise.")
    v = np.asarray(y, np.float64).reshape(a.shape[0])
    log_w, means, covs = [], [], []
    for w, mu, cov in zip(self.weights, np.asarray(self.means), np.asarray(self.covs)):
      c = a @ cov @ a.T + noise_std**2 * np.eye(a.shape[0])
      gain = np.linalg.solve(c, a @ cov).T  # S A^T C^-1 (C, S symmetric)
      diff = v - a @ mu
      log_w.append(np.log(w) - 0.5 * (diff @ np.linalg.solve(c, diff)
                                      + np.linalg.slogdet(2 * np.pi * c)[1]))
      means.append(mu + gain @ diff)
      covs.append(cov - gain @ a @ cov)
    return _from_log_weights(log_w, means, covs)

  def conditional_sample(self, rng: np.random.Generator, observed_coords, values,
                         n: int) -> np.ndarray:
    """n exact draws (n, D) of x given x[observed_coords] = values: the observed coordinates
    equal `values`, the others come from self.conditional."""
    obs = np.asarray(observed_coords, int)
    unobs = np.setdiff1d(np.arange(self.dim), obs)
    x = np.empty((n, self.dim))
    x[:, obs] = np.asarray(values, np.float64).reshape(obs.size)
    x[:, unobs] = self.conditional(obs, values).sample(rng, n)
    return x


  def component_terms(self, x, mean_coeff, std):
    """log(w_k N(x; a mu_k, a^2 S_k + s^2 I)) (B, K) and each perturbed component's score
    (B, K, D): what class-conditional models need (models.analytic)."""
    return self._component_terms(x, mean_coeff, std)


def _from_log_weights(log_w, means, covs) -> GaussianMixture:
  """A mixture from unnormalised log weights (K,), means (K, D) and covariances (K, D, D)
  (symmetrised; weights floored positive, as the class needs)."""
  log_w, covs = np.asarray(log_w), np.asarray(covs)
  weights = np.maximum(np.exp(log_w - log_w.max()), 1e-300)
  return GaussianMixture(_nested(weights / weights.sum()), _nested(np.asarray(means)),
                         _nested(0.5 * (covs + np.swapaxes(covs, 1, 2))))


def _nested(array: np.ndarray) -> tuple:
  """A numpy array as nested tuples of floats (the mixture's hashable fields)."""
  return tuple(_nested(a) for a in array) if np.ndim(array) > 1 else tuple(map(float, array))
