"""Noisy linear inverse problems y = A x + sigma_y n against exact posteriors
(conditioning.posterior, GaussianMixture.linear_posterior): the closed-form posterior against the
textbook formula and importance sampling; Pi-GDM exact on a standard normal prior (VP and VE) and
failing with the guidance sign flipped; on the correlated 2-D mixture, far closer to the exact
posterior than unconditional samples and, noise-free, closer than replacement; the command line
and its errors.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conditioning
import samplers
from data_sources.mixture import GaussianMixture
from oracles import energy_distance
from sde_lib import VESDE, VPSDE
from test_inverse_cli import run_main
from test_inverse_problems import GMM, PC_PLAIN, VP, mixture_fns, run

N = 2000
STANDARD = GaussianMixture((1.0,), ((0.0,) * 4,), (tuple(map(tuple, np.eye(4))),))


def make_sampler(fns, observation, shape, noise_std, method="pigdm", solver="pc", num_steps=200,
                 **options):
  """Jitted (y (B, ...), scale) -> samples (B, *shape) of sample indices 0..B-1: one compile
  serves every guidance scale (0: unconditional, -1: sign flipped)."""
  times = samplers.make_grid(fns.sde, "uniform" if solver == "pc" else "edm", num_steps, 1e-3)

  def sample(y, scale):
    keys = samplers.sample_keys(jax.random.key(0), jnp.arange(y.shape[0]))
    condition = conditioning.build_condition(
        method, {"observation": observation}, {"observation_noise": noise_std, "scale": scale})
    conditioned = condition.apply(fns, {}, {"y": y}, keys)
    return samplers.get_solver(solver).sample(conditioned, times, keys, shape, **options)[0]

  return jax.jit(sample)


def gaussian_errors(x, mean, cov):
  """Largest mean error in standard errors and largest entry of whitened cov minus I."""
  white = np.linalg.inv(np.linalg.cholesky(cov))
  z = (x.mean(0) - mean) @ white.T * np.sqrt(len(x))
  return np.abs(z).max(), np.abs(white @ np.cov(x.T) @ white.T - np.eye(len(mean))).max()


# --- the exact posterior --------------------------------------------------------------------

def test_linear_posterior_of_a_gaussian_is_the_textbook_formula():
  """Information form: Sigma = (S^-1 + A^T A / s^2)^-1, m = Sigma (S^-1 mu + A^T y / s^2)."""
  rng = np.random.default_rng(0)
  root = rng.normal(size=(3, 3))
  mu, cov = rng.normal(size=3), root @ root.T + 0.3 * np.eye(3)
  a, y, sigma = rng.normal(size=(2, 3)), rng.normal(size=2), 0.4
  post = GaussianMixture((1.0,), (tuple(mu),), (tuple(map(tuple, cov)),)).linear_posterior(
      a, y, sigma)
  prec = np.linalg.inv(cov) + a.T @ a / sigma**2
  np.testing.assert_allclose(post.covs[0], np.linalg.inv(prec), atol=1e-10)
  np.testing.assert_allclose(post.means[0], np.linalg.solve(prec, np.linalg.solve(cov, mu)
                                                            + a.T @ y / sigma**2), atol=1e-10)
  with pytest.raises(ValueError, match="noise_std > 0"):
    GMM.linear_posterior(np.eye(2)[:1], [0.0], 0.0)


def test_linear_posterior_of_a_mixture_matches_importance_sampling():
  """Prior draws weighted by N(y; A x, s^2) give the posterior's mean, covariance and component
  weights (general A: one row mixing all three coordinates)."""
  mix = GaussianMixture(weights=(0.3, 0.7), means=((0.0, 1.0, -1.0), (2.0, -1.0, 0.5)),
                        covs=(((1.0, 0.5, 0.2), (0.5, 1.2, -0.3), (0.2, -0.3, 0.8)),
                              ((0.6, -0.2, 0.1), (-0.2, 0.9, 0.4), (0.1, 0.4, 1.1))))
  a, y, sigma = np.array([[0.5, -1.0, 0.8]]), np.array([1.2]), 0.5
  post = mix.linear_posterior(a, y, sigma)
  x, label = mix.sample_labelled(np.random.default_rng(0), 400_000)
  w = np.exp(-0.5 * ((x @ a.T - y)[:, 0] / sigma)**2)
  w /= w.sum()
  mean = sum(wk * np.asarray(m) for wk, m in zip(post.weights, post.means))
  np.testing.assert_allclose(w @ x, mean, atol=0.02)
  second = sum(wk * (np.asarray(c) + np.outer(m, m))
               for wk, m, c in zip(post.weights, post.means, post.covs))
  np.testing.assert_allclose((x * w[:, None]).T @ x - np.outer(mean, mean),
                             second - np.outer(mean, mean), atol=0.03)
  np.testing.assert_allclose(w[label == 1].sum(), post.weights[1], atol=0.01)


# --- Pi-GDM is exact for a standard normal prior ---------------------------------------------

@pytest.fixture(scope="module", params=["vp_pc", "ve_heun"])
def standard_normal_run(request):
  """Pi-GDM samples of 2x2 images ~ N(0, I) given their 2x2 mean pooled (A A^T = 1/4) plus noise
  0.2: (samples at scale 1, at scale -1, exact mean, exact covariance)."""
  sde, solver, options = {"vp_pc": (VPSDE(), "pc", PC_PLAIN),
                          "ve_heun": (VESDE(sigma_max=20.0), "heun", {})}[request.param]
  observation, sigma = conditioning.AveragePoolObservation(2), 0.2
  post = STANDARD.linear_posterior(np.full((1, 4), 0.25), [0.8], sigma)
  sample = make_sampler(mixture_fns(sde, STANDARD, (2, 2, 1)), observation, (2, 2, 1), sigma,
                        solver=solver, num_steps=200 if solver == "pc" else 50, **options)
  y = jnp.full((N, 1, 1, 1), 0.8)
  x, flipped = (np.asarray(sample(y, s)).reshape(N, 4) for s in (1.0, -1.0))
  return x, flipped, np.asarray(post.means[0]), np.asarray(post.covs[0])


def test_pigdm_matches_the_exact_posterior_of_a_standard_normal_prior(standard_normal_run):
  """Mean within 4.5 standard errors, whitened covariance within 0.15 of I (posterior block-mean
  variance 0.035 against the prior's 0.25: the 1/4 of average pooling is accounted for)."""
  x, _, mean, cov = standard_normal_run
  mean_z, cov_dev = gaussian_errors(x, mean, cov)
  assert mean_z < 4.5 and cov_dev < 0.15, (mean_z, cov_dev)


def test_the_check_fails_with_the_guidance_sign_flipped(standard_normal_run):
  _, flipped, mean, cov = standard_normal_run
  mean_z, cov_dev = gaussian_errors(flipped, mean, cov)
  assert mean_z > 4.5 or cov_dev > 0.15, (mean_z, cov_dev)


# --- a correlated mixture ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixture_distances():
  """Energy distances to the exact posterior of GMM given y = x_1 + 0.3 n = 0: Pi-GDM (PC, 200
  steps), its sign-flipped and unconditional (scale 0) samples, the two-sample floor."""
  sigma, observation = 0.3, conditioning.MaskObservation(np.array([True, False]))
  post = GMM.linear_posterior(np.eye(2)[:1], [0.0], sigma)
  rng = np.random.default_rng(0)
  ref = [post.sample(rng, N) for _ in range(3)]
  sample = make_sampler(mixture_fns(VP, GMM), observation, (2,), sigma, **PC_PLAIN)
  y = jnp.zeros((N, 2))
  dist = {name: energy_distance(np.asarray(sample(y, s)), ref[0])
          for name, s in (("pigdm", 1.0), ("flipped", -1.0), ("unconditional", 0.0))}
  dist["floor"] = np.mean([energy_distance(ref[0], r) for r in ref[1:]])
  return dist


def test_pigdm_is_far_closer_to_the_noisy_posterior_than_unconditional_samples(mixture_distances):
  d = mixture_distances
  print(f"energy distance to the exact posterior (sigma_y 0.3): pigdm {d['pigdm']:.4f}, "
        f"unconditional {d['unconditional']:.4f}, noise floor {d['floor']:.4f}")
  assert d["pigdm"] < 0.05 * d["unconditional"]
  assert d["flipped"] > 5 * d["pigdm"]  # (d): the check can fail


def test_noise_free_pigdm_beats_replacement_on_correlated_coordinates():
  """x_2 given x_1 = 0 exactly, as in tests/test_inverse_problems.py's RePaint test (PC, 100
  steps): replacement is biased (x_2 sees only a noisy copy of x_1), Pi-GDM much less so."""
  observation = conditioning.MaskObservation(np.array([True, False]))
  y, fns = np.zeros((N // 2, 2), np.float32), mixture_fns(VP, GMM)
  ref = GMM.conditional_sample(np.random.default_rng(0), [0], [0.0], N // 2)[:, 1:]
  x = {m: run(fns, observation, y, (2,), method=m, num_steps=100, **PC_PLAIN)[0]
       for m in ("pigdm", "replacement")}
  dist = {m: energy_distance(x[m][:, 1:], ref) for m in x}
  print(f"noise-free energy distance to the exact conditional: pigdm {dist['pigdm']:.4f}, "
        f"replacement {dist['replacement']:.4f}")
  assert np.abs(x["pigdm"][:, 0]).max() < 1e-2  # A x = y up to about s(eps)
  assert dist["pigdm"] < 0.7 * dist["replacement"]


# --- the command line -------------------------------------------------------------------------

def test_noisy_inpainting_from_the_command_line(tmp_path):
  """dps with observation noise 0.1 (1000 PC steps: 200 diverge at this noise): observations are
  A x + 0.1 A A^+ z with z from the documented per-input keys."""
  result = run_main("--config=configs/gmm_analytic.py:vpsde", f"--workdir={tmp_path}",
                    "--mode=sample", "--config.sampling.task=inpaint",
                    "--config.sampling.method=pc", "--config.sampling.grid=uniform",
                    "--config.sampling.num_steps=1000",
                    "--config.sampling.inverse.method=dps",
                    "--config.sampling.inverse.observation_noise=0.1",
                    "--config.sampling.inverse.num_inputs=5", "--config.sampling.inverse.samples_per_input=3",
                    "--config.sampling.batch_size=8")
  assert result.returncode == 0, result.stderr
  written, = (tmp_path / "samples").glob("inpaint_dps_pc_1000*.npz")
  assert str(written) in result.stdout  # the path is printed
  with np.load(written) as out:
    samples, inputs, y = out["samples"], out["inputs"], out["observations"]
  base = jax.random.fold_in(jax.random.key(42), 0x0B5E_0001)  # config.seed, OBSERVATION_STREAM
  z = np.stack([jax.random.normal(jax.random.fold_in(base, k), (2,)) for k in range(5)])
  np.testing.assert_allclose(y[:, 0], inputs[:, 0] + 0.1 * z[:, 0], atol=1e-6)
  np.testing.assert_array_equal(y[:, 1], 0.0)
  assert samples.shape == (5, 3, 2) and np.all(np.isfinite(samples))
  assert np.abs(samples[..., 0] - y[:, None, 0]).max() < 0.5


@pytest.mark.parametrize("method, noise, message", [
    ("replacement", 0.1, "noise-free.*'pigdm'"),
    ("dps", 0.0, "observation_noise > 0"), ("pigdm", -0.1, ">= 0")])
def test_noise_the_method_cannot_take_is_a_one_line_error(method, noise, message):
  with pytest.raises(ValueError, match=message) as error:
    conditioning.build_condition(method, {"observation": None}, {"observation_noise": noise})
  assert "\n" not in str(error.value)
