"""The solver contract (samplers/solvers.py), checked for every entry of samplers.SOLVERS (and
the grid and parameterisation contracts for every entry of theirs): a newly registered one is
tested here with no new test code.

For each solver: its NFE equals the model calls a counting model sees; a sample does not depend
on the rest of its batch; a projection hook is applied after every update (or refused by a
solver that cannot); a denoiser-only model gives the same samples (or is refused by a solver that
needs the score); and on the exact 2-D mixture score, samples at a generous step count match the
mixture within the two-sample floor (tests/oracles.py). Last, a solver written here is registered
and samples through workflows.build.build_sampler with an option taken from a config.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import samplers
from configs import load_config
from models.parameterization import preconditioned_score
from oracles import MIX, assert_matches_mixture, gmm_fns, matches_mixture
from samplers import SOLVERS, ModelFns, Solver, get_solver, make_grid, per_sample_prior, sample_keys
from sde_lib import EDMSDE, VESDE, VPSDE, batch_expand
from sde_lib.tweedie import score_from_denoiser
from test_samplers import counting
from workflows import build

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

SDE, EPS = VPSDE(), 1e-3
KEYS = sample_keys(jax.random.key(1), jnp.arange(2000))
# Steps at which every solver's discretisation error is below the mixture check's noise floor.
GENEROUS_STEPS = 100
# Options that are not the default somewhere in the contract (the ODE's shared step size makes
# its calls countable: one solve for the batch).
COUNTABLE = {"ode": dict(whole_batch=True)}


def sample(name, fns, keys, num_steps=8, **options):
  solver = get_solver(name)
  times = make_grid(fns.sde, "edm", num_steps, EPS) if solver.uses_grid else None
  return jax.jit(lambda k: solver.sample(fns, times, k, (2,), **options))(keys)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_nfe_counts_model_calls(name):
  counter, keys = [0], KEYS[:3]
  x, nfe = sample(name, counting(gmm_fns(SDE), counter), keys, **COUNTABLE.get(name, {}))
  jax.block_until_ready(x)
  jax.effects_barrier()
  assert counter[0] == int(np.sum(np.broadcast_to(nfe, (3,)))) and counter[0] > 0


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_samples_do_not_depend_on_the_batch(name):
  fns = gmm_fns(SDE)
  whole, part = sample(name, fns, KEYS[:8])[0], sample(name, fns, KEYS[3:5])[0]
  np.testing.assert_allclose(whole[3:5], part, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_projection_follows_every_update(name):
  """A hook pinning coordinate 0 to a(t) 1.5 (1.5 for clean data) is applied after every update:
  the model only ever sees pinned states (but the prior draw), and the output is pinned."""
  seen, unpinned = [0], [0]

  def pin(x, t, step):
    del step
    return x.at[:, 0].set(1.5 if t is None else 1.5 * SDE.marginal_coeffs(t)[0])

  def check(x, t):
    seen[0] += 1
    unpinned[0] += int(np.any(np.abs(x[:, 0] - 1.5 * SDE.marginal_coeffs(t)[0]) > 1e-5))

  def score(x, t):
    jax.debug.callback(check, x, t)
    return gmm_fns(SDE).score(x, t)

  fns = ModelFns(SDE, score, project=pin)
  if not get_solver(name).projects:
    with pytest.raises(ValueError, match="grid solver"):
      sample(name, fns, KEYS[:4])
    return
  x, _ = sample(name, fns, KEYS[:4])
  jax.effects_barrier()
  np.testing.assert_array_equal(np.asarray(x)[:, 0], 1.5)
  assert seen[0] > 1 and unpinned[0] <= 1, (seen, unpinned)  # the prior draw, at most


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_denoiser_only_models(name):
  """Solvers that do not need the score give the same samples from the denoiser alone; those
  that do refuse such a model in one line."""
  fns = gmm_fns(SDE)
  if get_solver(name).needs_score:
    with pytest.raises(ValueError, match="needs the model's score") as error:
      build.check_solver_fits(name, (), score=False)
    assert "\n" not in str(error.value)
    return
  from_score = sample(name, fns, KEYS[:16])[0]
  from_denoiser = sample(name, ModelFns.from_denoiser(SDE, fns.denoise), KEYS[:16])[0]
  np.testing.assert_allclose(from_denoiser, from_score, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_generous_steps_sample_the_mixture(name):
  assert_matches_mixture(np.asarray(sample(name, gmm_fns(SDE), KEYS, GENEROUS_STEPS)[0]))


def test_mixture_check_rejects_a_wrong_score():
  flipped = gmm_fns(SDE).with_score(lambda x, t: -gmm_fns(SDE).score(x, t))
  assert not matches_mixture(np.asarray(sample("ddim", flipped, KEYS, GENEROUS_STEPS)[0]))


# --- one file and one registry line: a solver written here ------------------------------------

def shrunk_euler(fns, times, keys, shape, shrink: float = 1.0):
  """Euler steps of dx~/dsigma = (x~ - D) / sigma (EDM's Eq. 4 in x~ = x / a), then D(x, eps),
  the output multiplied by `shrink` (an option to read from the config)."""
  x = per_sample_prior(fns.sde, keys, 0, shape)
  vec = lambda t: jnp.full(x.shape[:1], t, x.dtype)

  def step(x, i):
    t, t_next = vec(times[i]), vec(times[i + 1])
    (a, s), (a_next, s_next) = fns.sde.marginal_coeffs(t), fns.sde.marginal_coeffs(t_next)
    d = (x / batch_expand(a, x) - fns.denoise(x, t)) / batch_expand(s / a, x)
    x_next = batch_expand(a_next, x) * (x / batch_expand(a, x) + batch_expand(s_next / a_next - s / a, x) * d)
    return fns.constrain(x_next, t_next, i + 1), None

  x, _ = jax.lax.scan(step, x, jnp.arange(times.shape[0] - 1))
  x = fns.constrain(fns.denoise(x, vec(times[-1])), None, times.shape[0])
  return shrink * x, times.shape[0]


def test_a_solver_registered_here_samples_through_build_sampler(monkeypatch):
  monkeypatch.setitem(SOLVERS, "shrunk_euler", Solver(shrunk_euler))
  spec = "configs/gmm_analytic.py:vpsde"
  settings = {"sampling.method": "shrunk_euler", "sampling.num_steps": GENEROUS_STEPS,
              "sampling.grid": "edm", "data.gmm_weights": MIX.weights, "data.gmm_means": MIX.means,
              "data.gmm_covs": MIX.covs}

  def draw(config):
    sde = build.build_sde(config)
    sampler = build.build_sampler(config, sde, build.build_score_model(config, sde))
    x, nfe = jax.jit(sampler)({"score": {}}, KEYS, {})
    assert np.all(np.asarray(nfe) == GENEROUS_STEPS)
    return np.asarray(x)

  plain = draw(load_config(spec, settings))
  assert_matches_mixture(plain)
  shrunk = load_config(spec, {**settings, "sampling.shrink": 0.5})  # the option, from a config
  assert shrunk.sampling.shrink == 0.5 and samplers.solver_options("shrunk_euler", shrunk.sampling)
  np.testing.assert_allclose(draw(shrunk), 0.5 * plain, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="option of shrunk_euler"):
    load_config(spec, {"sampling.shrink": 0.5})  # another method: named, in one line


# --- the other sampling-layer registries ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(samplers.GRIDS))
def test_every_grid_runs_from_t_to_eps(name, tmp_path):
  for sde, eps in ((SDE, EPS), (EDMSDE(), 0.002)):
    options = {}
    if name == "file":  # a schedule file of this SDE's edm grid
      options["path"] = str(tmp_path / f"{sde.T}.json")
      samplers.schedules.write_schedule(options["path"], make_grid(sde, "edm", 12, eps))
    times = np.asarray(make_grid(sde, name, 12, eps, **options))
    assert times.shape == (12,) and times[0] == sde.T and np.isclose(times[-1], eps)
    assert np.all(np.diff(times) < 0), (name, times)


def test_grid_options_are_config_keys_and_another_grid_s_option_is_one_line():
  spec = "configs/gmm_analytic.py:vpsde"
  config = load_config(spec, {"sampling.grid": "ays", "sampling.grid_data_std": 0.3})
  assert samplers.grid_options("ays", config.sampling) == {"data_std": 0.3}
  with pytest.raises(ValueError, match=r"^sampling.grid_data_std is an option of grid ays, not "
                     r"of sampling.grid='edm'"):
    load_config(spec, {"sampling.grid": "edm", "sampling.grid_data_std": 0.3})


@pytest.mark.parametrize("name", sorted(models.PARAMETERIZATIONS))
def test_every_parameterisation_s_score_is_its_denoiser_s(name):
  """score = (a D - x) / s^2 (Tweedie) with D = c_skip x~ + c_out F(c_in x~, c_noise), x~ = x / a,
  for any network output F, on a VP and a VE process."""
  for sde in (SDE, VESDE()):
    p = models.PARAMETERIZATIONS[name](sde).precondition(jnp.linspace(0.05, 1.0, 6))
    x = jax.random.normal(jax.random.key(0), (6, 3))
    out = jax.random.normal(jax.random.key(1), (6, 3))
    expand = lambda v: v[:, None]
    denoised = expand(p.c_skip) * x / expand(p.scale) + expand(p.c_out) * out
    std = p.sigma * p.scale
    np.testing.assert_allclose(preconditioned_score(p, x, out),
                               score_from_denoiser(x, denoised, p.scale, std),
                               rtol=1e-4, atol=1e-4)
