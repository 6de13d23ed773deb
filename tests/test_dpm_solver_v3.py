"""DPM-Solver-v3 and its empirical model statistics against exact answers.

Without statistics (l = 1, s = b = 0, given or from a file) it is DPM-Solver++'s Taylor multistep
method; its derivative estimates are the interpolating polynomial's (or the official divided
differences); on Gaussian data N(mu, diag(c^2)) the estimated l, s, b equal their closed forms
(l exactly: the Rademacher probe gives a diagonal Jacobian's trace), and on isotropic data one
step of the solver with them is exact. --mode=ems writes them, resumes to the same file after an
interruption, and sampling reads them by name.
"""
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samplers
import workflows
from configs import load_config
from oracles import gmm_fns
from samplers import ModelFns, ems, make_grid, sample_keys
from samplers.ddim import ddim_sample
from samplers.dpm_solver import dpm_solver_2m, dpm_solver_3m
from samplers.dpm_solver_v3 import Statistics, derivative_weights, dpm_solver_v3
from sde_lib import VPSDE
from test_schedules import StopAfter
from training import interrupt
from workflows import build, ems as ems_mode

SDE = VPSDE()
MU = np.array([0.5, -1.0, 0.3, 2.0])
SPEC = "configs/gmm_analytic.py:vpsde"
SMALL = {"ems.num_nodes": 24, "ems.num_data": 64, "ems.batch_size": 32, "ems.save_every": 5}


def write_statistics(path, stats: Statistics):
  np.savez(path, **{k: np.asarray(v) for k, v in stats._asdict().items()})
  return str(path)


def test_without_statistics_it_is_dpm_solver_plus_plus_with_taylor_steps(tmp_path):
  """l = 1, s = b = 0 (the default, or a file on a wider lambda range): DDIM at order 1, the
  official 'taylor' 2M and 3M at orders 2 and 3, to 1e-6 on the 2-D mixture in float64."""
  degenerate = write_statistics(tmp_path / "flat.npz", Statistics(
      np.linspace(-8.0, 9.0, 7), np.ones(7), np.zeros(7), np.zeros((7, 2))))
  with jax.enable_x64(True):
    fns, keys = gmm_fns(SDE), sample_keys(jax.random.key(0), jnp.arange(16))
    times = make_grid(SDE, "logsnr", 7, 1e-3)
    references = {1: ddim_sample(fns, times, keys, (2,))[0]}
    for order, solver in ((2, dpm_solver_2m), (3, dpm_solver_3m)):
      references[order] = solver(fns, times, keys, (2,), lower_order_final=False,
                                 solver_type="taylor")[0]
    for order, reference in references.items():
      for path in ("", degenerate):
        x, nfe = dpm_solver_v3(fns, times, keys, (2,), ems=path, order=order,
                               use_corrector=False, lower_order_final=False)
        np.testing.assert_allclose(x, reference, atol=1e-6)
        assert nfe == 7
    assert np.max(np.abs(references[3] - references[2])) > 1e-3  # the orders differ


@pytest.mark.parametrize("pseudo", [False, True])
def test_derivative_weights_are_the_polynomial_or_the_divided_differences(pseudo):
  lam = np.array([[0.4, 0.1, -0.3, -0.45], [1.0, 0.6, 0.0, 0.0]])  # second row: 3 points used
  count = np.array([4, 3])
  g = lambda u: 0.3 + 1.5 * u - 2.0 * u**2 + 0.7 * u**3
  weights = derivative_weights(lam, count, pseudo, np)
  got = np.einsum("skj,sj->sk", weights, g(lam[:, 1:]) - g(lam[:, :1]))
  for row, n in enumerate(count):
    points = lam[row, :n]
    if pseudo:  # k! [lambda_0..lambda_k] g by the divided-difference table
      table, want = list(g(points)), []
      for k in range(1, n):
        table = [(table[j] - table[j + 1]) / (points[j] - points[j + k]) for j in range(n - k)]
        want.append(table[0] * np.prod(np.arange(1, k + 1)))
    else:  # the derivatives at lambda_0 of the degree-(n - 1) interpolant (g itself if cubic)
      poly = np.polynomial.Polynomial.fit(points, g(points), n - 1)
      want = [poly.deriv(k)(points[0]) for k in range(1, n)]
    np.testing.assert_allclose(got[row, :n - 1], want, rtol=1e-9)
    assert np.all(got[row, n - 1:] == 0)


def gaussian_fns(c):
  """The exact model of data N(MU, diag(c^2)) under SDE."""
  mu, c = jnp.asarray(MU), jnp.asarray(c)

  def score(x, t):
    a, s = (v[:, None] for v in SDE.marginal_coeffs(t))
    return -(x - a * mu[None]) / (a**2 * c[None] ** 2 + s**2)

  return ModelFns(SDE, score)


def gaussian_closed_forms(c, lambdas):
  """l, dl/dlambda, s and b (N, D) of N(MU, diag(c^2)) at lambdas (N,): with v = a^2 c^2 + s^2,
  l = mean(s^2 / v), f_d = k_d xi_d - l mu_d with k_d = (s^2 / v_d - l) sqrt(v_d) / a, so
  s* = sum k' k / sum k^2 (0 where k = 0) and b* = -l' mu + s* l mu."""
  c = jnp.asarray(c)

  def coeffs(lam):
    a, s = SDE.marginal_coeffs(SDE.time_at_noise_level(jnp.exp(-lam)))
    return a, s, a**2 * c**2 + s**2

  def l_of(lam):
    _, s, v = coeffs(lam)
    return jnp.mean(s**2 / v)

  def k_of(lam):
    a, s, v = coeffs(lam)
    return (s**2 / v - l_of(lam)) * jnp.sqrt(v) / a

  def all_of(lam):
    l, dl = jax.jvp(l_of, (lam,), (1.0,))
    k, dk = jax.jvp(k_of, (lam,), (1.0,))
    norm = jnp.sum(k * k)
    s = jnp.where(norm > 1e-20, jnp.sum(k * dk) / jnp.where(norm > 1e-20, norm, 1.0), 0.0)
    return l, dl, s, (-dl + s * l) * jnp.asarray(MU)

  return jax.vmap(all_of)(jnp.asarray(lambdas))


def estimate(fns, num_nodes: int, num_data: int, c):
  """EMS of the exact model on num_data draws of N(MU, diag(c^2)), as --mode=ems computes them."""
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  x0 = MU[None] + np.asarray(c)[None] * np.asarray(jax.random.normal(k1, (num_data, 4)))
  z = jax.random.normal(k2, (num_data, 4))
  v = jax.random.rademacher(k3, (num_data, 4), jnp.float64)
  nodes = ems.lambda_nodes(SDE, 1e-3, num_nodes)
  return Statistics(nodes, *ems.estimate(fns, x0, z, v, nodes))


def gaussian_flow(c, times, x_start):
  """The exact probability-flow map of N(MU, diag(c^2)) from times[0] to times[-1]."""
  (a0, a1), (s0, s1) = (np.asarray(v)[[0, -1], None] for v in SDE.marginal_coeffs(times))
  v0, v1 = a0**2 * np.square(c) + s0**2, a1**2 * np.square(c) + s1**2
  return a1 * MU + np.sqrt(v1 / v0) * (x_start - a0 * MU)


def test_ems_of_isotropic_gaussian_data_are_exact_and_make_one_step_exact(tmp_path):
  c = np.full(4, 0.7)
  with jax.enable_x64(True):
    fns = gaussian_fns(c)
    stats = estimate(fns, 1000, 64, c)
    l, dl, s, b = gaussian_closed_forms(c, stats.lambdas)
    np.testing.assert_allclose(stats.l, l, rtol=1e-12)
    assert np.all(stats.s == 0)  # f does not vary with the data: the least-norm s
    np.testing.assert_allclose(stats.b, b, atol=1e-4 * np.max(np.abs(b)))
    path = write_statistics(tmp_path / "iso.npz", stats)
    keys = sample_keys(jax.random.key(3), jnp.arange(8))
    times = make_grid(SDE, "logsnr", 2, 1e-3)
    x, nfe = dpm_solver_v3(fns, times, keys, (4,), ems=path, denoise=False)
    exact = gaussian_flow(c, times, np.asarray(fns.initial(keys, (4,))))
    np.testing.assert_allclose(x, exact, atol=1e-4)
    assert nfe == 1
    plain, _ = dpm_solver_v3(fns, times, keys, (4,), denoise=False)
    assert np.max(np.abs(plain - exact)) > 0.1  # without them one step is far off


def test_ems_of_anisotropic_gaussian_data_match_their_closed_form(tmp_path):
  c = np.array([0.3, 0.7, 1.0, 1.5])
  with jax.enable_x64(True):
    fns = gaussian_fns(c)
    stats = estimate(fns, 200, 2048, c)
    l, _, s, b = gaussian_closed_forms(c, stats.lambdas)
    np.testing.assert_allclose(stats.l, l, rtol=1e-12)
    # s and b are Monte-Carlo estimates over 2048 draws (errors 1e-3 and 4e-3 at this seed)
    np.testing.assert_allclose(stats.s, s, atol=0.01 * np.max(np.abs(s)))
    np.testing.assert_allclose(stats.b, b, atol=0.01 * np.max(np.abs(b)))
    path = write_statistics(tmp_path / "aniso.npz", stats)
    keys = sample_keys(jax.random.key(3), jnp.arange(64))
    times = make_grid(SDE, "logsnr", 5, 1e-3)
    exact = gaussian_flow(c, times, np.asarray(fns.initial(keys, (4,))))
    error = lambda path: np.sqrt(np.mean(np.square(
        dpm_solver_v3(fns, times, keys, (4,), ems=path, denoise=False)[0] - exact)))
    assert error(path) < 0.25 * error("")  # measured 0.044 vs 0.22 (4 steps)


def test_the_ems_mode_resumes_to_the_same_file_and_sampling_reads_it_by_name(tmp_path,
                                                                             monkeypatch):
  whole = ems_mode.estimate_ems(load_config(SPEC, {**SMALL, "ems.name": "whole"}), tmp_path)
  config = load_config(SPEC, {**SMALL, "ems.name": "cut"})
  with monkeypatch.context() as patch:
    patch.setattr(interrupt, "stop_requests", contextlib.contextmanager(lambda: (yield StopAfter(30))))
    with pytest.raises(interrupt.Interrupted, match=r"at node 6 of 25 \(pass 2 of 2\)"):
      ems_mode.estimate_ems(config, tmp_path)
  with pytest.raises(ValueError, match=r"cut.state.npz holds a run on other nodes or data"):
    ems_mode.estimate_ems(load_config(SPEC, {**SMALL, "ems.name": "cut", "ems.num_data": 32}),
                          tmp_path)
  resumed = ems_mode.estimate_ems(config, tmp_path)
  for key in whole:
    np.testing.assert_array_equal(resumed[key], whole[key])
  assert not (tmp_path / "ems" / "cut.state.npz").exists()
  assert whole["l"][0] == pytest.approx(1.0, abs=1e-3)  # at T the data are all noise
  with pytest.raises(ValueError, match=r"cut.npz exists; set --config.ems.name="):
    ems_mode.estimate_ems(config, tmp_path)

  model = workflows.load(load_config(SPEC, {"sampling.method": "dpm_solver_v3",
                                            "sampling.grid": "logsnr", "sampling.num_steps": 6}),
                         tmp_path)
  by_name = model.sample(16, ems="whole")
  keys = samplers.sample_keys(build.stream_key(model.config, "sample"), jnp.arange(16))
  direct, _ = dpm_solver_v3(model.model_fns(), make_grid(SDE, "logsnr", 6, 1e-3), keys, (2,),
                            ems=str(tmp_path / "ems" / "whole.npz"))
  np.testing.assert_allclose(by_name, direct, rtol=1e-4, atol=5e-5)
  with pytest.raises(ValueError, match=r"cover lambda in \[-5.025, 4.558\]; this grid reaches "
                     r".* estimate them with the same sampling.eps"):
    model.sample(16, ems="whole", eps=1e-4)
  with pytest.raises(FileNotFoundError, match=r"sampling.ems=.*theirs.npz' is not a file; run "
                     "--mode=ems first"):
    model.sample(16, ems="theirs")
