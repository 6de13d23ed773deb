"""Our solvers beside the reference algorithms, in float64 on the exact mixture, step for step:
EDM's Algorithm 2 (churn on every step, the last one included), the official UniPC's final
orders, the released PC discretisation (table levels floor(t (N - 1) / T), sub-VP by
Euler-Maruyama), DPM-Solver's time_quadratic and AYS's grids, and the mixture oracle's precision.
k-diffusion is not installable beside numpy 2 (its torchsde pins numpy 1), so the algorithms are
written out here from the papers and the released code."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracles import gmm_fns, lifted_mixture
from samplers import get_solver, make_grid, pc_steps, per_sample_normal, per_sample_prior, sample_keys
from samplers.multistep import step_orders
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE


def test_the_mixture_score_is_float64_under_x64():
  """16-D: each component's score -C^{-1}(x - a m) with C = a^2 S + s^2 I, solved in numpy."""
  mixture = lifted_mixture(np.linspace(0.3, 1.5, 14))
  rng = np.random.default_rng(0)
  x, a, s = rng.normal(size=(5, 16)) * 2, np.full(5, 0.8), np.full(5, 0.6)
  want = []
  for xb, ab, sb in zip(x, a, s):
    covs = [ab**2 * np.asarray(c) + sb**2 * np.eye(16) for c in mixture.covs]
    diffs = [xb - ab * np.asarray(m) for m in mixture.means]
    logs = [np.log(w) - 0.5 * (np.linalg.slogdet(c)[1] + d @ np.linalg.solve(c, d))
            for w, c, d in zip(mixture.weights, covs, diffs)]
    post = np.exp(np.asarray(logs) - np.max(logs))
    post /= post.sum()
    want.append(sum(p * -np.linalg.solve(c, d) for p, c, d in zip(post, covs, diffs)))
  with jax.enable_x64(True):
    got = mixture.score(jnp.asarray(x), jnp.asarray(a), jnp.asarray(s))
    assert got.dtype == jnp.float64
  np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["heun", "euler"])
def test_churn_follows_edm_algorithm_2_on_every_step_the_last_included(name):
  """Karras et al. 2022, Alg. 2 with t_n = 0: churn at every t_i in [S_tmin, S_tmax] (S_tmin = 0
  takes the last level too), an Euler step, and Heun's correction where t_{i+1} > 0."""
  n, s_churn, s_noise = 8, 40.0, 1.007
  with jax.enable_x64(True):
    sde = EDMSDE()
    fns, times = gmm_fns(sde), make_grid(sde, "edm", n, 0.002)
    keys = sample_keys(jax.random.key(3), jnp.arange(4))
    ours, nfe = get_solver(name).sample(fns, times, keys, (2,), s_churn=s_churn, s_noise=s_noise)
    denoise = lambda x, t: np.asarray(fns.denoise(jnp.asarray(x), jnp.full((len(x),), t)))
    t = np.append(np.asarray(times), 0.0)
    gamma = min(s_churn / n, np.sqrt(2) - 1)
    x = np.asarray(per_sample_prior(sde, keys, 0, (2,)))
    for i in range(n):
      t_hat = t[i] * (1 + gamma)
      x_hat = x + np.sqrt(t_hat**2 - t[i]**2) * s_noise * np.asarray(per_sample_normal(keys, i + 1, (2,)))
      d = (x_hat - denoise(x_hat, t_hat)) / t_hat
      x = x_hat + (t[i + 1] - t_hat) * d
      if name == "heun" and t[i + 1] > 0:
        x = x_hat + (t[i + 1] - t_hat) * 0.5 * (d + (x - denoise(x, t[i + 1])) / t[i + 1])
  np.testing.assert_allclose(ours, x, rtol=1e-11, atol=1e-11)
  assert nfe == (2 * n - 1 if name == "heun" else n)


def test_lower_order_final_always_is_the_official_unipc_rule():
  """wl-zhao/UniPC, multistep: step s = 1..N has order min(order, s, N + 1 - s) at any N;
  DPM-Solver's rule (our default) lowers the final orders below 15 steps only."""
  for num_steps in (5, 14, 15, 40):
    official = [min(3, s, num_steps + 1 - s) for s in range(1, num_steps + 1)]
    warm_up = [min(3, s) for s in range(1, num_steps + 1)]
    assert list(step_orders(num_steps, 3, True, at_any_length=True)) == official
    assert list(step_orders(num_steps, 3, True)) == (official if num_steps < 15 else warm_up)
  sde = VPSDE()
  times, keys = make_grid(sde, "logsnr", 21, 1e-3), sample_keys(jax.random.key(0), jnp.arange(8))
  run = lambda always: get_solver("unipc").sample(gmm_fns(sde), times, keys, (2,), order=3,
                                                  lower_order_final_always=always)[0]
  assert float(jnp.abs(run(True) - run(False)).max()) > 1e-4  # 20 steps: only the option lowers


N_TABLE = 1086  # at eps = 1e-3 the released level floor(t (N - 1) / T) leaves the grid position


@pytest.mark.parametrize("name", ["ve", "vp", "subvp"])
def test_pc_tables_are_the_released_discretisation(name):
  """score_sde's discretize at timestep = int(t (N - 1) / T) (float32, as released): VE a = 1,
  b^2 = sigma_j^2 - sigma_{j-1}^2; VP a = sqrt(1 - beta_j), b = sqrt(beta_j); sub-VP (no table in
  the released code) Euler-Maruyama over dt = 1 / N: a = 1 - beta(t) / (2 N), b = g(t) / sqrt(N);
  and Euler-Maruyama's dt = -1 / N."""
  sde = {"ve": VESDE(N=N_TABLE), "vp": VPSDE(N=N_TABLE), "subvp": SubVPSDE(N=N_TABLE)}[name]
  times = make_grid(sde, "uniform", N_TABLE, 1e-3)
  steps = pc_steps(sde, times, use_tables=True)
  level = np.asarray((times * (N_TABLE - 1) / sde.T).astype(jnp.int32))
  assert np.any(level != np.arange(N_TABLE)[::-1])  # the case tells the two rules apart
  t = np.asarray(times, np.float64)
  if name == "ve":
    sigmas = np.exp(np.linspace(np.log(sde.sigma_min), np.log(sde.sigma_max), N_TABLE))
    below = np.where(level > 0, sigmas[np.maximum(level - 1, 0)], 0.0)
    a, b = np.ones(N_TABLE), np.sqrt(sigmas[level]**2 - below**2)
  elif name == "vp":
    betas = np.linspace(sde.beta_min / N_TABLE, sde.beta_max / N_TABLE, N_TABLE)[level]
    a, b = np.sqrt(1 - betas), np.sqrt(betas)
  else:
    beta = sde.beta_min + t * (sde.beta_max - sde.beta_min)
    integral = sde.beta_min * t + 0.5 * t**2 * (sde.beta_max - sde.beta_min)
    a, b = 1 - beta / (2 * N_TABLE), np.sqrt(beta * -np.expm1(-2 * integral) / N_TABLE)
  np.testing.assert_allclose(steps.a, a, rtol=2e-6)
  np.testing.assert_allclose(steps.b, b, rtol=1e-4)  # float32 tables; a level off: 0.8%
  np.testing.assert_allclose(steps.dt, -1 / N_TABLE, rtol=1e-6)


@pytest.mark.parametrize("sde,eps", [(VPSDE(), 1e-3), (EDMSDE(), 0.002)])
def test_time_quadratic_and_ays_grids_are_their_closed_forms(sde, eps):
  """DPM-Solver's time_quadratic: sqrt(t) uniform; AYS (Sabour et al. 2024): arctan(sigma / c)
  uniform, c the data std."""
  with jax.enable_x64(True):
    roots = np.sqrt(np.asarray(make_grid(sde, "time_quadratic", 9, eps)))
    angles = np.arctan(np.asarray(sde.noise_level(make_grid(sde, "ays", 9, eps, data_std=0.7))) / 0.7)
    hi, lo = (float(sde.noise_level(jnp.array([v]))[0]) for v in (sde.T, eps))
  np.testing.assert_allclose(np.diff(roots), (np.sqrt(eps) - np.sqrt(sde.T)) / 8, rtol=1e-10)
  np.testing.assert_allclose(np.diff(angles), np.mean(np.diff(angles)), rtol=1e-9)
  np.testing.assert_allclose(angles[[0, -1]], np.arctan(np.array([hi, lo]) / 0.7), rtol=1e-9)
