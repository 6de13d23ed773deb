"""SDE marginals, priors and discretisations against closed forms and simulation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import sde_lib
from data_sources.mixture import GaussianMixture
from models.analytic import AnalyticGMMScore

SDES = {
    "vesde": sde_lib.VESDE(sigma_min=0.01, sigma_max=5.0, N=1000),
    "vpsde": sde_lib.VPSDE(beta_min=0.1, beta_max=20.0, N=1000),
    "subvpsde": sde_lib.SubVPSDE(beta_min=0.1, beta_max=20.0, N=1000),
    "edm": sde_lib.EDMSDE(sigma_min=0.002, sigma_max=5.0),
}
MIXTURE = GaussianMixture(weights=(0.3, 0.7), means=((-2.0, 1.0), (1.5, -0.5)),
                          covs=(((0.5, 0.2), (0.2, 0.3)), ((0.2, -0.05), (-0.05, 0.4))))


def simulate_forward(sde, x0, t_end, key, num_steps=2000):
  """Euler-Maruyama integration of the forward SDE from x0 (B, D) to t_end."""
  dt = t_end / num_steps

  def step(x, inputs):
    i, k = inputs
    t = jnp.full((x.shape[0],), i * dt)
    drift, diffusion = sde.sde(x, t)
    return x + drift * dt + diffusion[:, None] * jnp.sqrt(dt) * jax.random.normal(k, x.shape), None

  keys = jax.random.split(key, num_steps)
  return jax.lax.scan(step, x0, (jnp.arange(num_steps), keys))[0]


@pytest.mark.parametrize("name", sorted(SDES))
@pytest.mark.parametrize("t_end", [0.1, 0.5])
def test_marginal_matches_simulation(name, t_end):
  sde = SDES[name]
  x0 = jnp.tile(jnp.array([[1.5, -0.7]]), (20000, 1))
  xt = np.asarray(jax.jit(simulate_forward, static_argnums=(0,))(sde, x0, t_end, jax.random.key(0)))
  mean, std = sde.marginal_prob(x0[:1], jnp.array([t_end]))
  # The kernel's std includes the std at t=0 (sigma_min for VE, 0 for VP): a point mass at t=0
  # spreads by sqrt(std(t)^2 - std(0)^2).
  std = jnp.sqrt(jnp.square(std) - jnp.square(sde.marginal_prob(x0[:1], jnp.zeros(1))[1]))
  # Standard errors: mean std/sqrt(n), std about std/sqrt(2n); 5 sigma plus discretisation slack.
  n = x0.shape[0]
  np.testing.assert_allclose(xt.mean(0), mean[0], atol=5 * float(std[0]) / np.sqrt(n) + 2e-3)
  np.testing.assert_allclose(xt.std(0), np.full(2, float(std[0])), rtol=5 / np.sqrt(2 * n) + 5e-3)


@pytest.mark.parametrize("name", sorted(SDES))
def test_prior_logp_and_sampling(name):
  sde = SDES[name]
  z = sde.prior_sampling(jax.random.key(1), (4000, 3))
  scale = sde.sigma_max if name in ("vesde", "edm") else 1.0
  expected = scipy.stats.norm(scale=scale).logpdf(np.asarray(z)).sum(-1)
  np.testing.assert_allclose(sde.prior_logp(z), expected, rtol=1e-5)
  assert abs(float(jnp.std(z)) / scale - 1.0) < 0.03
  # The prior is the marginal at T up to the data's (negligible) contribution.
  _, std_t = sde.marginal_prob(jnp.zeros((1, 3)), jnp.array([sde.T]))
  assert abs(float(std_t[0]) / scale - 1.0) < 1e-3


def test_ve_levels_are_the_smld_chain():
  levels = SDES["vesde"].discrete_levels(1000)
  sigmas = np.exp(np.linspace(np.log(0.01), np.log(5.0), 1000))
  np.testing.assert_allclose(levels.sigmas, sigmas, rtol=1e-6)
  # Summing the chain's variances telescopes to sigma_i^2 (Eq. 8).
  np.testing.assert_allclose(np.cumsum(np.square(levels.b)), sigmas**2, rtol=1e-4)
  np.testing.assert_array_equal(levels.a, 1.0)


def test_vp_levels_are_the_ddpm_chain():
  sde = SDES["vpsde"]
  levels = sde.discrete_levels(sde.N)
  betas = np.linspace(0.1 / sde.N, 20.0 / sde.N, sde.N)
  np.testing.assert_allclose(levels.a, np.sqrt(1 - betas), rtol=1e-6)
  np.testing.assert_allclose(levels.b, np.sqrt(betas), rtol=1e-5)
  np.testing.assert_allclose(levels.sigmas, np.sqrt(1 - np.cumprod(1 - betas)), rtol=1e-4)
  # After i + 1 DDPM steps the chain's std approximates the continuous one at t = (i + 1) / N.
  _, std = sde.marginal_coeffs((jnp.arange(sde.N) + 1.0) / sde.N)
  np.testing.assert_allclose(std, levels.sigmas, atol=5e-3)


@pytest.mark.parametrize("name", sorted(SDES))
def test_levels_chain_is_consistent_with_its_marginals(name):
  levels = SDES[name].discrete_levels(50)
  prev_alpha = np.concatenate([[1.0], levels.alphas[:-1]])
  prev_sigma = np.concatenate([[0.0], levels.sigmas[:-1]])
  np.testing.assert_allclose(levels.a, levels.alphas / prev_alpha, rtol=1e-4)
  np.testing.assert_allclose(levels.b**2 + (levels.a * prev_sigma) ** 2, levels.sigmas**2,
                             rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("name", sorted(SDES))
def test_noise_level_inverse_and_transition_kernels(name):
  sde = SDES[name]
  t = jnp.array([1e-5, 1e-3, 0.1, 0.5, 0.99]) * sde.T
  np.testing.assert_allclose(sde.time_at_noise_level(sde.noise_level(t)), t, rtol=2e-5,
                             atol=1e-8 * sde.T)
  # Chapman-Kolmogorov: s(t2)^2 = a^2 s(t1)^2 + b^2 and a(t2) = a a(t1).
  t1, t2 = t[:-1], t[1:]
  a, b = sde.transition_coeffs(t1, t2)
  (a1, s1), (a2, s2) = sde.marginal_coeffs(t1), sde.marginal_coeffs(t2)
  np.testing.assert_allclose(a * a1, a2, rtol=1e-6)
  np.testing.assert_allclose(b**2 + (a * s1) ** 2, s2**2, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(SDES))
def test_reverse_sde_and_probability_flow(name):
  sde = SDES[name]
  score_fn = lambda x, t: -x
  x, t = jnp.array([[1.0, 2.0]]), jnp.array([0.4])
  drift, diffusion = sde.sde(x, t)
  rev_drift, rev_diffusion = sde.reverse(score_fn).sde(x, t)
  np.testing.assert_allclose(rev_drift, drift + diffusion[:, None] ** 2 * x, rtol=1e-6)
  np.testing.assert_allclose(rev_diffusion, diffusion)
  ode_drift, ode_diffusion = sde.reverse(score_fn, probability_flow=True).sde(x, t)
  np.testing.assert_allclose(ode_drift, drift + 0.5 * diffusion[:, None] ** 2 * x, rtol=1e-6)
  np.testing.assert_allclose(ode_diffusion, 0.0)


@pytest.mark.parametrize("name", sorted(SDES))
def test_gmm_score_is_gradient_of_log_density(name):
  model = AnalyticGMMScore(SDES[name], MIXTURE)
  x = jax.random.normal(jax.random.key(2), (16, 2)) * 2.0
  t = jnp.linspace(1e-3, 1.0, 16)
  autodiff = jax.grad(lambda x: jnp.sum(model.log_prob(x, t)))(x)
  np.testing.assert_allclose(model.score({}, x, t), autodiff, rtol=1e-4, atol=1e-5)


def test_gmm_log_density_at_time_zero_matches_scipy():
  model = AnalyticGMMScore(SDES["vpsde"], MIXTURE)
  x = np.random.default_rng(0).normal(size=(8, 2))
  expected = np.log(sum(w * scipy.stats.multivariate_normal(m, c).pdf(x)
                        for w, m, c in zip(MIXTURE.weights, MIXTURE.means, MIXTURE.covs)))
  np.testing.assert_allclose(model.log_prob(jnp.asarray(x), jnp.zeros(8)), expected, rtol=1e-5)


def test_unknown_sde_lists_choices():
  with pytest.raises(ValueError, match="edm.*subvpsde.*vesde.*vpsde"):
    sde_lib.get_sde("ito")
