"""Fast solvers against exact answers (tests/oracles.py).

Deterministic solvers: from the same prior draws, the pathwise error at t = eps against a tight
float64 adaptive solve falls with num_steps at the solver's order (the slope fitted over 10 to 80
steps and the last doubling's). Stochastic ones: samples match the mixture (and a sign-flipped
score fails). EDM's preconditioning of the exact denoiser samples correctly. The multistep solvers'
steps equal their formulas written out in numpy, and their NFE the model calls.
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracles import (MIX, assert_matches_mixture, edm_exact_fns, gmm_fns, lifted_fns,
                     matches_mixture)
from samplers import SOLVERS, ModelFns, get_solver, make_grid, per_sample_prior, sample_keys
from samplers.multistep import phi_functions
from samplers.ode import flow_drift, integrate
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

SDES = {"vp": (VPSDE(), 1e-3), "ve": (VESDE(sigma_max=20.0), 1e-5), "subvp": (SubVPSDE(), 1e-3),
        "edm": (EDMSDE(), 2e-3)}
# Order of each deterministic solver in the number of steps, and the slack of the fitted slope.
ORDERS = {"ddim": (1, 0.3), "euler": (1, 0.3), "heun": (2, 0.3), "dpm_solver_2m": (2, 0.3),
          "dpm_solver_3m": (3, 0.5), "unipc": (3, 0.3), "unipc_bh1": (3, 0.5),
          # iPNDM's equal-step Adams-Bashforth weights on the rho-spaced grid: second order
          # (fitted 1.96-2.26 over the five cases), not the fourth of equal steps.
          "ipndm": (2, 0.3),
          # iPNDM_v: the grid's own Adams-Bashforth weights; fitted 2.56-2.93 (last doubling
          # 3.23-3.46), its warm-up bounding the rate as DEIS's.
          "ipndm_v": (3, 0.5),
          # DEIS-4: fitted 2.73-2.93 (last doubling 2.94-3.46): its warm-up steps at orders 1-3
          # bound the rate at these step counts; each step integrates a cubic exactly (below).
          "deis": (3, 0.5),
          # DPM-Solver-v3 (l = 1, s = b = 0) with its corrector: order 3 steps, each corrected
          # with the new evaluation; fitted 3.68-3.97 (last doubling 3.21-3.98).
          "dpm_solver_v3": (4, 0.9)}
VARIANT_OF = {"unipc_bh1": ("unipc", dict(variant="bh1")),
              "ipndm_v": ("ipndm", dict(variable_steps=True))}  # order-test names of solver options
# UniPC with B = -h ('bh1') is pre-asymptotic at 10 steps (error 1.3 vs 0.08 at 20 on vp-2d: its
# corrections weigh -h where bh2 weighs expm1(-h), far apart at the 10-step grid's h ~ 1): fit
# its order from 20 steps on.
FIT_FROM = {"unipc_bh1": 1}
# Options of the order runs. lower_order_final acts below 15 steps, here only at 10, where it makes
# the last step first order: a first-order error that would flatten the fitted slope of 2M and
# UniPC. 3M keeps it: its third-order extrapolation over the 10-step grid's long last steps is
# unstable without it (sub-VP: error 2.1 instead of 0.68), which would steepen the fitted slope.
ORDER_OPTIONS = {"dpm_solver_2m": dict(lower_order_final=False),
                 "unipc": dict(lower_order_final=False), "unipc_bh1": dict(lower_order_final=False)}
STEPS = (10, 20, 40, 80)
CASES = [("vp", 2), ("vp", 16), ("edm", 16), ("ve", 2), ("subvp", 2)]
LIFT = lambda dim: jnp.linspace(0.3, 1.5, dim - 2)  # the 16-D mixture: MIX x N(0, diag(LIFT))
NUM_PATHS = 64


def exact_fns(sde, dim):
  return gmm_fns(sde) if dim == 2 else lifted_fns(sde, LIFT(dim))


@functools.lru_cache(maxsize=None)
def reference(case):
  """(prior draws, their probability-flow solution at eps), float64, rtol = atol = 1e-10."""
  (sde, eps), dim = SDES[case[0]], case[1]
  with jax.enable_x64(True):
    keys = sample_keys(jax.random.key(0), jnp.arange(NUM_PATHS))
    drift = flow_drift(exact_fns(sde, dim))
    solve = jax.jit(lambda x: integrate(lambda t, v: drift(v, t), x, sde.T, eps, "dopri5", 1e-10,
                                        1e-10, 100_000)[0])
    return keys, np.asarray(solve(per_sample_prior(sde, keys, 0, (dim,))))


def pathwise_errors(name, case, grid="edm", steps=STEPS, **options):
  """RMS distance to the reference at eps after n steps (n + 1 grid points, no final denoising)."""
  (sde, eps), dim = SDES[case[0]], case[1]
  keys, target = reference(case)
  errors = []
  with jax.enable_x64(True):
    fns = exact_fns(sde, dim)
    for n in steps:
      times = make_grid(sde, grid, n + 1, eps)
      x, _ = jax.jit(lambda k: get_solver(name).sample(fns, times, k, (dim,), denoise=False,
                                                       **options))(keys)
      errors.append(float(np.sqrt(np.mean(np.sum((np.asarray(x) - target) ** 2, -1)))))
  return np.asarray(errors)


@pytest.mark.usefixtures("compile_without_llvm_optimisation")  # 140 compiles of short loops
@pytest.mark.parametrize("case", CASES, ids=[f"{s}-{d}d" for s, d in CASES])
@pytest.mark.parametrize("name", sorted(ORDERS))
def test_convergence_order(name, case):
  order, slack = ORDERS[name]
  solver, options = VARIANT_OF.get(name, (name, {}))
  steps = STEPS[FIT_FROM.get(name, 0):]
  errors = pathwise_errors(solver, case, steps=steps, **options, **ORDER_OPTIONS.get(name, {}))
  slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
  last_doubling = np.log(errors[-2] / errors[-1]) / np.log(steps[-1] / steps[-2])
  assert abs(slope - order) < slack and abs(last_doubling - order) < slack, (errors, slope,
                                                                             last_doubling)
  assert errors[-1] < 0.2, errors


def test_deis_steps_integrate_the_lagrange_polynomial_exactly():
  """With eps a cubic in t, DEIS-4's step i (4 evaluations from step 3 on) is the exact integral
  of eps over sigma, int_{sigma_i}^{sigma_{i+1}} eps(t(sigma)) dsigma (scipy's adaptive quad)."""
  from scipy import integrate  # pylint: disable=import-outside-toplevel
  from samplers.deis import deis_coefficients  # pylint: disable=import-outside-toplevel
  sde = VPSDE()
  cubic = lambda t: 1 + 2 * t - 3 * t**2 + 0.5 * t**3
  with jax.enable_x64(True):
    times = make_grid(sde, "edm", 8, 1e-3)
    coefficients, t = np.asarray(deis_coefficients(sde, times, 4)), np.asarray(times)
    sigma = lambda v: float(sde.noise_level(jnp.array([v]))[0])
    along = lambda s: cubic(float(sde.time_at_noise_level(jnp.array([s]))[0]))
    for i in range(3, 7):
      exact = integrate.quad(along, sigma(t[i]), sigma(t[i + 1]), epsabs=1e-13, epsrel=1e-13)[0]
      step = sum(coefficients[i, j] * cubic(t[i - j]) for j in range(4))
      np.testing.assert_allclose(step, exact, rtol=1e-11)


def test_ipndm_v_weights_are_diff_samplers_as_they_are_meant():
  """iPNDM_v's steps on a random decreasing sigma grid: order 2 is diff-sampler's closed form,
  order 3 its closed form with the parentheses its formula means (read literally it weighs the
  second difference by (1 - h^2 / (3 h1 (h1 + h2))) / 2, which differs here), and every step
  integrates a cubic in sigma exactly; equal steps give Adams-Bashforth's 55/24, -59/24, ..."""
  from samplers.deis import lagrange_coefficients  # pylint: disable=import-outside-toplevel
  sigma = np.sort(np.random.default_rng(0).uniform(0.01, 80.0, 9))[::-1]
  equal = np.linspace(10.0, 1.0, 8)
  with jax.enable_x64(True):
    weights_of = lambda s: np.asarray(lagrange_coefficients(jnp.asarray(s), jnp.asarray(s), 4,
                                                            lambda v: v))
    c, ab4 = weights_of(sigma), weights_of(equal)
  h, h1, h2 = sigma[3] - sigma[2], sigma[2] - sigma[1], sigma[1] - sigma[0]  # step 2's steps
  np.testing.assert_allclose(c[1, :2], h1 * np.array([(2 + h1 / h2) / 2, -(h1 / h2) / 2]),
                             rtol=1e-12)  # step 1: h1 after h2
  meant = (1 - h / (3 * (h + h1))) * (h * (h + h1)) / (h1 * (h1 + h2)) / 2
  literal = (1 - h / (3 * (h + h1)) * (h * (h + h1)) / (h1 * (h1 + h2))) / 2
  weights = lambda temp: h * np.array([(2 + h / h1) / 2 + temp, -(h / h1) / 2 - (1 + h1 / h2) * temp,
                                       temp * h1 / h2])
  np.testing.assert_allclose(c[2, :3], weights(meant), rtol=1e-12)
  assert np.max(np.abs(c[2, :3] - weights(literal))) > 0.1
  cubic = lambda s: 1 + 0.2 * s - 0.03 * s**2 + 4e-4 * s**3
  exact = lambda a, b: (lambda f: f(b) - f(a))(lambda s: s + 0.1 * s**2 - 0.01 * s**3 + 1e-4 * s**4)
  for i in range(3, 8):
    np.testing.assert_allclose(sum(c[i, j] * cubic(sigma[i - j]) for j in range(4)),
                               exact(sigma[i], sigma[i + 1]), rtol=1e-10)
  np.testing.assert_allclose(ab4[4] / (equal[5] - equal[4]) * 24, [55, -59, 37, -9], rtol=1e-12)


def test_order_test_fails_a_wrong_solver():
  """Heun with its corrector dropped (Euler) is first order: the check for order 2 rejects it."""
  slope = -np.polyfit(np.log(STEPS), np.log(pathwise_errors("euler", ("vp", 2))), 1)[0]
  assert abs(slope - ORDERS["heun"][0]) > ORDERS["heun"][1]


STOCHASTIC_ONLY = {"pc", "dpm_solver_sde_2m"}


def test_every_deterministic_solver_has_an_order_test():
  adaptive = {"ode"}
  resampling = {"repaint"}  # PC with RePaint passes: tests/test_inverse_problems.py
  assert set(SOLVERS) - STOCHASTIC_ONLY - adaptive - resampling <= set(ORDERS)
  assert STOCHASTIC_ONLY <= {name for name, *_ in STOCHASTIC.values()}


# --- stochastic solvers and EDM --------------------------------------------------------------

KEYS = sample_keys(jax.random.key(1), jnp.arange(2000))
STOCHASTIC = {
    "heun_churn": ("heun", "edm", 40, dict(s_churn=10.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)),
    "ddim_eta1": ("ddim", "edm", 100, dict(eta=1.0)),
    "pc_100": ("pc", "edm", 100, dict(predictor="reverse_diffusion", corrector="mala")),
    "dpm_sde_2m_50": ("dpm_solver_sde_2m", "edm", 50, {}),
}


def stochastic_samples(sde_name, variant, fns_of=gmm_fns):
  sde, eps = SDES[sde_name]
  name, grid, num_steps, options = STOCHASTIC[variant]
  times = make_grid(sde, grid, num_steps, eps)
  fns = fns_of(sde)
  return jax.jit(lambda k: get_solver(name).sample(fns, times, k, (2,), **options)[0])


@pytest.mark.parametrize("sde_name", ["vp", "edm", "ve"])
@pytest.mark.parametrize("variant", sorted(STOCHASTIC))
def test_stochastic_solvers_match_mixture(variant, sde_name):
  assert_matches_mixture(stochastic_samples(sde_name, variant)(KEYS))


@pytest.mark.parametrize("variant", sorted(STOCHASTIC))
def test_stochastic_check_rejects_a_flipped_score(variant):
  flipped = lambda sde: ModelFns(sde, lambda x, t: -gmm_fns(sde).score(x, t))
  assert not matches_mixture(stochastic_samples("vp", variant, flipped)(KEYS))


@pytest.mark.parametrize("sde_name", ["edm", "vp"])
def test_edm_preconditioned_exact_denoiser_samples_the_mixture(sde_name):
  sde, eps = SDES[sde_name]
  fns = edm_exact_fns(sde)
  times = make_grid(sde, "edm", 18, eps)
  x, nfe = jax.jit(lambda k: get_solver("heun").sample(fns, times, k, (2,)))(KEYS)
  assert nfe == 35  # EDM's 18 steps: 17 Heun steps + the final Euler step
  assert_matches_mixture(x)


def test_edm_denoiser_is_the_posterior_mean():
  """D(x, t) = E[x0 | x(t) = x]: for the mixture, the responsibility-weighted component posterior
  means, computed here by Gaussian conditioning in numpy."""
  sde, _ = SDES["vp"]
  x = jnp.array([[0.3, -0.8], [1.5, 2.0]])
  t = jnp.array([0.2, 0.6])
  a, s = (np.asarray(v, np.float64) for v in sde.marginal_coeffs(t))
  expected = []
  for xi, ai, si in zip(np.asarray(x, np.float64), a, s):
    w, means = [], []
    for wk, mk, ck in zip(MIX.weights, np.asarray(MIX.means), np.asarray(MIX.covs)):
      cov = ai**2 * ck + si**2 * np.eye(2)
      diff = xi - ai * mk
      w.append(wk * np.exp(-0.5 * diff @ np.linalg.solve(cov, diff)) / np.sqrt(np.linalg.det(cov)))
      means.append(mk + ai * ck @ np.linalg.solve(cov, diff))
    expected.append(np.einsum("k,kd->d", np.asarray(w) / np.sum(w), np.asarray(means)))
  for fns in (gmm_fns(sde), edm_exact_fns(sde)):
    np.testing.assert_allclose(fns.denoise(x, t), np.asarray(expected), rtol=1e-4, atol=1e-5)


# --- the multistep solvers' steps on fixed inputs ---------------------------------------------

def vp_setup(num_points):
  """(fns, times (num_points,), prior draws (4, 2), D(x, grid index) in numpy), float64."""
  sde, eps = SDES["vp"]
  fns, times = gmm_fns(sde), make_grid(sde, "edm", num_points, eps)
  x = np.asarray(per_sample_prior(sde, KEYS[:4], 0, (2,)))
  denoise = lambda v, i: np.asarray(fns.denoise(jnp.asarray(v), jnp.full((4,), times[i])))
  return fns, times, x, denoise


def run(name, fns, times, **options):
  sample = lambda k: get_solver(name).sample(fns, times, k, (2,), denoise=False, **options)[0]
  return np.asarray(jax.jit(sample)(KEYS[:4]))


@pytest.mark.parametrize("name", ["dpm_solver_2m", "dpm_solver_3m", "unipc"])
def test_first_multistep_step_is_ddim(name):
  """With no history the step is first order: DPM-Solver++1 (and UniP-1) is DDIM with eta 0."""
  with jax.enable_x64(True):
    fns, times, _, _ = vp_setup(2)
    np.testing.assert_allclose(run(name, fns, times), run("ddim", fns, times), rtol=1e-12)


def test_two_steps_equal_the_formulas_in_numpy():
  """DDIM then DPM-Solver++(2M) (Alg. 2); UniPC-2: DDIM corrected by UniC-1 (rho 1/2) with the
  model evaluated at the DDIM point, then UniP-2 (rho_p 1/2; = 2M for B = expm1(-h)) from the
  corrected point; with B(h) = -h ('bh1') both corrections take B = -h instead."""
  with jax.enable_x64(True):
    fns, times, x, denoise = vp_setup(3)
    a, s = (np.asarray(v) for v in fns.sde.marginal_coeffs(times))
    h1, h2 = np.diff(np.log(a / s))
    m0 = denoise(x, 0)
    ddim = s[1] / s[0] * x - a[1] * np.expm1(-h1) * m0
    m1 = denoise(ddim, 1)
    second = lambda x1, b2: (s[2] / s[1] * x1 - a[2] * np.expm1(-h2) * m1
                             - a[2] * b2 * (m1 - m0) * h2 / (2 * h1))
    off = dict(lower_order_final=False)
    np.testing.assert_allclose(run("dpm_solver_2m", fns, times, **off),
                               second(ddim, np.expm1(-h2)), rtol=1e-12)
    for variant, b1, b2 in [("bh2", np.expm1(-h1), np.expm1(-h2)), ("bh1", -h1, -h2)]:
      corrected = ddim - a[1] * b1 * 0.5 * (m1 - m0)
      np.testing.assert_allclose(run("unipc", fns, times, variant=variant, **off),
                                 second(corrected, b2), rtol=1e-12)


def test_dpm_solver_3m_integrates_quadratic_data_predictions_exactly():
  """D = q(lambda_t) quadratic in lambda and free of x makes the ODE's solution closed-form:
  x_t = (s_t / s_0) x_0 + s_t [F(lambda_t) - F(lambda_0)], F' = e^lambda q. With exact states
  pinned (by the projection hook) after the two warm-up steps, the third-order step is exact;
  the official code's weight of D2, half of this one, misses by O(h^3) (second order)."""
  c = np.array([[0.3, -0.2], [0.5, 0.1], [-0.2, 0.15]])  # q = c0 + c1 lambda + c2 lambda^2
  q = lambda lam: c[0][None] + c[1][None] * lam[:, None] + c[2][None] * lam[:, None] ** 2
  big_f = lambda lam: np.exp(lam)[:, None] * q(lam) - np.exp(lam)[:, None] * (
      c[1][None] + c[2][None] * (2 * lam[:, None] - 2))
  with jax.enable_x64(True):
    sde, eps = SDES["vp"]
    times = make_grid(sde, "edm", 4, eps)
    a, s = (np.asarray(v) for v in sde.marginal_coeffs(times))
    lam = np.log(a / s)
    x0 = np.asarray(per_sample_prior(sde, KEYS[:4], 0, (2,)))
    exact = [s[i] / s[0] * x0 + s[i] * (big_f(lam[i:i + 1]) - big_f(lam[:1])) for i in range(4)]

    def score(x, t):
      a_t, s_t = sde.marginal_coeffs(t)
      return (a_t[:, None] * q(jnp.log(a_t / s_t)) - x) / s_t[:, None] ** 2

    pin = lambda x, t, step: jnp.where(step < 3, jnp.asarray(exact[2]), x)
    x3 = run("dpm_solver_3m", ModelFns(sde, score, project=pin), times, lower_order_final=False)
    x3_official = run("dpm_solver_3m", ModelFns(sde, score, project=pin), times,
                      lower_order_final=False, official_3m=True)
  np.testing.assert_allclose(x3, exact[3], rtol=1e-9)
  h, h0, h1 = np.diff(lam)[::-1]
  r0, r1 = h0 / h, h1 / h
  m = q(lam[::-1][1:])  # m_i, m_{i-1}, m_{i-2} at i = 2
  d1_0, d1_1 = (m[0] - m[1]) / r0, (m[1] - m[2]) / r1
  phi_2 = np.expm1(-h) / h + 1
  official = (s[3] / s[2] * exact[2] - a[3] * np.expm1(-h) * m[0]
              + a[3] * phi_2 * (d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1))
              - a[3] * (phi_2 / h - 0.5) * (d1_0 - d1_1) / (r0 + r1))
  assert np.abs(official - exact[3]).max() > 1e-3
  np.testing.assert_allclose(x3_official, official, rtol=1e-9)  # official_3m is that formula


def test_phi_functions_are_accurate_where_the_recursion_cancels():
  """phi_k(z) = sum_m z^m / (m + k)! against the series in Python floats, including |z| << 1 in
  float32, where (phi_{k-1} - 1/(k-1)!) / z from expm1 would have lost every digit."""
  series = lambda z, k: sum(z**m / math.factorial(m + k) for m in range(40))
  phis = jax.jit(phi_functions, static_argnums=1)
  for z in (-3.0, -1.0, -0.4, -1e-3, 0.0, 0.7):
    with jax.enable_x64(True):
      exact = [series(z, k) for k in (1, 2, 3)]
      np.testing.assert_allclose(phis(jnp.float64(z), 3), exact, rtol=1e-13)
    np.testing.assert_allclose(phis(jnp.float32(z), 3), exact, rtol=1e-6)


def test_unipc_rejects_an_unknown_order_or_variant():
  """Called directly the error names the argument; at the config boundary, its config key."""
  from workflows import build  # pylint: disable=import-outside-toplevel
  sde, eps = SDES["vp"]
  sample = functools.partial(get_solver("unipc").sample, gmm_fns(sde),
                             make_grid(sde, "edm", 4, eps), KEYS[:2], (2,))
  with pytest.raises(ValueError, match="^order of unipc must be one of"):
    sample(order=4)
  with pytest.raises(ValueError, match="^variant must be one of"):
    sample(variant="bh3")
  with pytest.raises(ValueError, match="^sampling.solver_order of unipc"), build.sampling_keys():
    sample(order=4)
  with pytest.raises(ValueError, match="^sampling.unipc_variant must"), build.sampling_keys():
    sample(variant="bh3")
