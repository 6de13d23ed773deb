"""Fast solvers against exact answers (tests/oracles.py).

Deterministic solvers: from the same prior draws, the pathwise error at t = eps against a tight
float64 adaptive solve falls with num_steps at the solver's order. Stochastic ones: samples match
the mixture (and a sign-flipped score fails). EDM's preconditioning of the exact denoiser samples
correctly.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracles import (MIX, assert_matches_mixture, edm_exact_fns, gmm_fns, lifted_fns,
                     matches_mixture)
from samplers import SOLVERS, ModelFns, get_solver, make_grid, per_sample_prior, sample_keys
from samplers.ode import flow_drift, integrate
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

SDES = {"vp": (VPSDE(), 1e-3), "ve": (VESDE(sigma_max=20.0), 1e-5), "subvp": (SubVPSDE(), 1e-3),
        "edm": (EDMSDE(), 2e-3)}
# Order of each deterministic solver in the number of steps, and the slack of the fitted slope.
ORDERS = {"ddim": (1, 0.3), "euler": (1, 0.3), "heun": (2, 0.3)}
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


def pathwise_errors(name, case, grid="edm"):
  """RMS distance to the reference at eps after n steps (n + 1 grid points, no final denoising)."""
  (sde, eps), dim = SDES[case[0]], case[1]
  keys, target = reference(case)
  errors = []
  with jax.enable_x64(True):
    fns = exact_fns(sde, dim)
    for n in STEPS:
      times = make_grid(sde, grid, n + 1, eps)
      x, _ = jax.jit(lambda k: get_solver(name).sample(fns, times, k, (dim,), denoise=False))(keys)
      errors.append(float(np.sqrt(np.mean(np.sum((np.asarray(x) - target) ** 2, -1)))))
  return np.asarray(errors)


@pytest.mark.parametrize("case", CASES, ids=[f"{s}-{d}d" for s, d in CASES])
@pytest.mark.parametrize("name", sorted(ORDERS))
def test_convergence_order(name, case):
  order, slack = ORDERS[name]
  errors = pathwise_errors(name, case)
  slope = -np.polyfit(np.log(STEPS), np.log(errors), 1)[0]
  assert abs(slope - order) < slack, (errors, slope)
  assert errors[-1] < 0.2, errors


def test_order_test_fails_a_wrong_solver():
  """Heun with its corrector dropped (Euler) is first order: the check for order 2 rejects it."""
  slope = -np.polyfit(np.log(STEPS), np.log(pathwise_errors("euler", ("vp", 2))), 1)[0]
  assert abs(slope - ORDERS["heun"][0]) > ORDERS["heun"][1]


def test_every_deterministic_solver_has_an_order_test():
  stochastic_only = {"pc"}
  adaptive = {"ode"}
  assert set(SOLVERS) - stochastic_only - adaptive - {"dpm_solver_sde_2m"} <= set(ORDERS)


# --- stochastic solvers and EDM --------------------------------------------------------------

KEYS = sample_keys(jax.random.key(1), jnp.arange(2000))
STOCHASTIC = {
    "heun_churn": ("heun", "edm", 40, dict(s_churn=10.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)),
    "ddim_eta1": ("ddim", "edm", 100, dict(eta=1.0)),
    "pc_100": ("pc", "edm", 100, dict(predictor="reverse_diffusion", corrector="mala")),
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


# --- the projection hook that constraints (inpainting) use ------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, s in SOLVERS.items() if s.uses_grid))
def test_every_grid_solver_applies_the_projection(name):
  """A hook pinning coordinate 0 to the forward-perturbed value a(t) 1.5 (and to 1.5 exactly for
  clean data) is seen after every update: the output's coordinate 0 is exactly 1.5."""
  sde, eps = SDES["vp"]
  seen = []

  def pin(x, t, step):
    del step
    value = 1.5 if t is None else 1.5 * sde.marginal_coeffs(t)[0]
    seen.append(t is None)
    return x.at[:, 0].set(value)

  fns = ModelFns(sde, gmm_fns(sde).score, project=pin)
  x, _ = get_solver(name).sample(fns, make_grid(sde, "edm", 8, eps), KEYS[:16], (2,))
  np.testing.assert_array_equal(np.asarray(x)[:, 0], 1.5)
  assert True in seen and False in seen


def test_adaptive_ode_refuses_a_projection():
  sde, _ = SDES["vp"]
  fns = ModelFns(sde, gmm_fns(sde).score, project=lambda x, t, step: x)
  with pytest.raises(ValueError, match="grid solver"):
    get_solver("ode").sample(fns, None, KEYS[:2], (2,))
