"""PC and adaptive-ODE samplers against exact answers: the score of a Gaussian mixture perturbed
by each SDE is closed-form (tests/oracles.py), so samples must reproduce the mixture's component
weights, means and covariances within Monte-Carlo error (checked against fresh samples, and shown
to reject wrong samples); single steps equal the released code's formulas on fixed inputs."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oracles import (MIX, assert_matches_mixture, gmm_fns, lifted_fns, lifted_mixture,
                     matches_mixture, mixture_errors)
from data_sources.mixture import GaussianMixture
from samplers import (CORRECTORS, ODE_SOLVERS, PREDICTORS, ModelFns, get_corrector,
                      get_ode_solver, get_predictor, get_solver, make_grid, ode_sample, pc_nfe,
                      pc_sample, pc_steps, per_sample_normal, per_sample_prior,
                      per_sample_uniform, sample_keys, step_keys)
from samplers.ode import INITIAL_EVALS
from sde_lib import EDMSDE, VESDE, VPSDE, SubVPSDE

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

N = 200  # steps of every PC run
BATCH = 2000
SDES = {"ve": VESDE(N=N), "vp": VPSDE(N=N), "subvp": SubVPSDE(N=N)}
EPS = {"ve": 1e-5, "vp": 1e-3, "subvp": 1e-3, "edm": 2e-3}
KEYS = sample_keys(jax.random.key(0), jnp.arange(BATCH))
# The per-sample Langevin rule is tested on the mixture lifted to 64-D by independent N(0, v_i)
# coordinates, whose score is still exact, where its bias is small but visible.
LIFT_VARS = np.linspace(0.3, 1.5, 62).astype(np.float32)


@functools.lru_cache(maxsize=None)
def pc_fn(sde_name, predictor, corrector, snr, n_steps, grid="uniform", lifted=False, num_steps=N):
  """Jitted keys -> samples; the uniform grid of the SDE's N steps uses its tables (released)."""
  sde = SDES.get(sde_name) or EDMSDE()
  fns = lifted_fns(sde, LIFT_VARS) if lifted else gmm_fns(sde)
  shape = (2 + LIFT_VARS.size,) if lifted else (2,)
  times = make_grid(sde, grid, num_steps, EPS[sde_name])
  steps = pc_steps(sde, times, use_tables=grid == "uniform" and num_steps == sde.N)
  return jax.jit(lambda keys: pc_sample(fns, steps, keys, shape, predictor, corrector, snr,
                                        n_steps)[0])


def predictors_for(sde_name):
  return ["euler_maruyama", "reverse_diffusion", "ancestral_sampling"]


PC_2D = [(s, p, c) for s in SDES for p in predictors_for(s) for c in ("none", "ald")]


@pytest.mark.parametrize("sde_name,predictor,corrector", PC_2D)
def test_pc_samples_match_mixture(sde_name, predictor, corrector):
  assert_matches_mixture(pc_fn(sde_name, predictor, corrector, 0.16, 1)(KEYS))


@pytest.mark.parametrize("sde_name,grid,predictor", [
    ("ve", "edm", "reverse_diffusion"), ("vp", "logsnr", "ancestral_sampling"),
    ("subvp", "quadratic", "euler_maruyama"), ("edm", "edm", "reverse_diffusion"),
    ("edm", "edm", "ancestral_sampling")])
def test_pc_on_other_grids_matches_mixture(sde_name, grid, predictor):
  """Off the released tables, the chain is the exact kernel between grid times (any SDE)."""
  assert_matches_mixture(pc_fn(sde_name, predictor, "none", 0.16, 1, grid, num_steps=100)(KEYS))


@pytest.mark.parametrize("sde_name", list(SDES))
def test_pc_with_released_langevin_matches_mixture_in_2d(sde_name):
  """The released rule (norms averaged over the whole batch) at the paper's snr 0.16."""
  assert_matches_mixture(pc_fn(sde_name, "reverse_diffusion", "langevin", 0.16, 1)(KEYS))


@pytest.mark.parametrize("sde_name", ["ve", "vp"])
def test_pc_with_mala_matches_mixture_in_2d(sde_name):
  assert_matches_mixture(pc_fn(sde_name, "reverse_diffusion", "mala", 0.16, 1)(KEYS))


def test_per_sample_langevin_bias_is_visible():
  """The per-sample rule tilts the chain towards ~ p ||s||^2: in 2-D (snr 0.16) it fails the
  mixture check the released rule and MALA pass; in 64-D its variance bias is a few percent."""
  x = pc_fn("vp", "reverse_diffusion", "langevin_per_sample", 0.16, 1)(KEYS)
  assert not matches_mixture(x), mixture_errors(x)
  lifted = np.asarray(pc_fn("vp", "reverse_diffusion", "langevin_per_sample", 0.075, 1,
                            lifted=True)(KEYS))
  assert_matches_mixture(lifted[:, :2])
  ratio = lifted[:, 2:].var(0) / LIFT_VARS  # (SE 0.03-0.045 each)
  assert 1.01 < ratio.mean() < 1.1, ratio.mean()


@pytest.mark.parametrize("sde_name", list(SDES))
def test_ode_samples_match_mixture(sde_name):
  sde = SDES[sde_name]
  x, nfe = jax.jit(lambda k: ode_sample(gmm_fns(sde), k, (2,), eps=EPS[sde_name]))(KEYS)
  assert_matches_mixture(x)
  assert nfe.shape == (BATCH,) and 20 < int(nfe.max()) < 1000


def test_whole_batch_ode_matches_mixture_with_one_nfe():
  sde = SDES["vp"]
  x, nfe = jax.jit(lambda k: ode_sample(gmm_fns(sde), k, (2,), whole_batch=True))(KEYS)
  assert_matches_mixture(x)
  assert len(set(np.asarray(nfe).tolist())) == 1


def test_check_rejects_wrong_samples():
  """The mixture check passes fresh samples and fails wrong ones: another mixture's samples
  (weights off by 0.06, covariances 25% too large, means off by 0.15), prior samples, and a
  PC sampler whose score has the wrong sign."""
  rng = np.random.default_rng(1)
  assert matches_mixture(MIX.sample(rng, BATCH))
  scaled = lambda f: tuple(tuple(map(tuple, np.asarray(c) * f)) for c in MIX.covs)
  wrong = [GaussianMixture((0.36, 0.64), MIX.means, MIX.covs),
           GaussianMixture(MIX.weights, MIX.means, scaled(1.25)),
           GaussianMixture(MIX.weights, tuple((m0 + 0.15, m1) for m0, m1 in MIX.means), MIX.covs)]
  for mixture in wrong:
    assert not matches_mixture(mixture.sample(rng, BATCH)), mixture
  sde = SDES["vp"]
  assert not matches_mixture(per_sample_prior(sde, KEYS, 0, (2,)))
  flipped = ModelFns(sde, lambda x, t: -gmm_fns(sde).score(x, t))
  steps = pc_steps(sde, make_grid(sde, "uniform", N, 1e-3), True)
  x = jax.jit(lambda k: pc_sample(flipped, steps, k, (2,), "reverse_diffusion", "none", 0.16, 1)[0])
  assert not matches_mixture(x(KEYS))


def test_lifted_score_is_the_mixture_score():
  sde, lift_vars = SDES["vp"], LIFT_VARS[::12]  # 6-D: small matrices for the oracle
  x = jax.random.normal(jax.random.key(1), (3, 2 + lift_vars.size))
  t = jnp.array([0.01, 0.3, 0.9])
  both = jax.jit(lambda x, t: (lifted_fns(sde, lift_vars).score(x, t),
                               gmm_fns(sde, lifted_mixture(lift_vars)).score(x, t)))
  np.testing.assert_allclose(*both(x, t), rtol=1e-4, atol=1e-4)


# --- single steps against the released formulas --------------------------------------------

X = jnp.array([[0.3, -1.2], [2.0, 0.5], [-0.7, 0.1]])
Z = jnp.array([[1.1, -0.4], [0.2, 0.9], [-1.5, 0.3]])
FNS_SCORE = lambda x, t: -x * (1.0 + t[:, None])  # any fixed score


def released_table_step(name, i):
  """One step i of the released grid linspace(T, eps, N): table level j = N - 1 - i."""
  sde = VESDE(N=N) if name == "ve" else VPSDE(N=N)
  steps = pc_steps(sde, make_grid(sde, "uniform", N, 1e-3), use_tables=True)
  return sde, jax.tree.map(lambda v: v[i], steps), N - 1 - i


@pytest.mark.parametrize("name", ["ve", "vp"])
@pytest.mark.parametrize("predictor", ["reverse_diffusion", "ancestral_sampling"])
@pytest.mark.parametrize("i", [0, 57, N - 1])
def test_table_steps_are_the_released_formulas(name, predictor, i):
  sde, step, j = released_table_step(name, i)
  t = jnp.full((3,), step.t)
  s = FNS_SCORE(X, t)
  if name == "ve":  # released VESDE.discretize / AncestralSamplingPredictor.vesde_update_fn
    sigmas = np.exp(np.linspace(np.log(0.01), np.log(50.0), N))
    sigma, prev = sigmas[j], (sigmas[j - 1] if j > 0 else 0.0)
    mean = X + (sigma**2 - prev**2) * s
    std = np.sqrt(sigma**2 - prev**2) if predictor == "reverse_diffusion" else np.sqrt(
        prev**2 * (sigma**2 - prev**2) / sigma**2)
  else:  # released VPSDE.discretize / AncestralSamplingPredictor.vpsde_update_fn
    beta = np.linspace(0.1 / N, 20.0 / N, N)[j]
    mean = ((2 - np.sqrt(1 - beta)) * X + beta * s if predictor == "reverse_diffusion"
            else (X + beta * s) / np.sqrt(1 - beta))
    std = np.sqrt(beta)
  x, x_mean = get_predictor(predictor).update(ModelFns(sde, FNS_SCORE), X, step, Z, False)
  np.testing.assert_allclose(x_mean, mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(x, mean + std * Z, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_tables", [True, False])
def test_euler_maruyama_steps_by_the_released_dt_or_the_grid_spacing(use_tables):
  """With the released tables dt = -1 / N (score_sde's EulerMaruyamaPredictor), else the grid's
  spacing, here -(1 - eps) / (N - 1)."""
  sde = VPSDE(N=N)
  times = make_grid(sde, "uniform", N, 1e-3)
  step = jax.tree.map(lambda v: v[3], pc_steps(sde, times, use_tables))
  t = jnp.full((3,), times[3])
  drift, g = sde.reverse(FNS_SCORE).sde(X, t)
  dt = -1 / N if use_tables else float(times[4] - times[3])
  if not use_tables:
    np.testing.assert_allclose(dt, -(1 - 1e-3) / (N - 1), rtol=1e-4)
  x, x_mean = get_predictor("euler_maruyama").update(ModelFns(sde, FNS_SCORE), X, step, Z, False)
  np.testing.assert_allclose(x_mean, X + drift * dt, rtol=1e-5)
  np.testing.assert_allclose(x, X + drift * dt + g[:, None] * np.sqrt(-dt) * Z, rtol=1e-5)


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_released_langevin_rule_on_fixed_inputs(name):
  """e = 2 alpha (r mean_b ||z_b|| / mean_b ||s_b||)^2 over the whole batch (released pmean),
  x <- x + e s + sqrt(2 e) z, with alpha = 1 - beta_j (VP) or 1 (VE)."""
  sde, step, j = released_table_step(name, 57)
  keys = sample_keys(jax.random.key(5), jnp.arange(3))
  snr = 0.16
  from samplers.per_sample_keys import per_sample_normal  # pylint: disable=import-outside-toplevel
  z = per_sample_normal(keys, 0, (2,))
  s = FNS_SCORE(X, jnp.full((3,), step.t))
  alpha = 1.0 if name == "ve" else 1 - np.linspace(0.1 / N, 20.0 / N, N)[j]
  size = 2 * alpha * (snr * np.linalg.norm(z, axis=1).mean() / np.linalg.norm(s, axis=1).mean())**2
  x = get_corrector("langevin").update(ModelFns(sde, FNS_SCORE), X, step, keys, snr, 1)
  np.testing.assert_allclose(x, X + size * s + np.sqrt(2 * size) * z, rtol=1e-5, atol=1e-6)


def test_corrector_only_sampling_ends_with_the_denoising_step():
  """NCSNv2 (Sec. 3.3): after the last annealed-Langevin level, x + sigma^2 s(x) (+1 NFE)."""
  sde = VESDE(N=10)
  steps = pc_steps(sde, make_grid(sde, "uniform", 10, 1e-5), True)
  fns = gmm_fns(sde)
  keys = sample_keys(jax.random.key(2), jnp.arange(4))
  noisy, nfe_noisy = pc_sample(fns, steps, keys, (2,), "none", "ald", 0.16, 2, denoise=False)
  clean, nfe = pc_sample(fns, steps, keys, (2,), "none", "ald", 0.16, 2, denoise=True)
  t = jnp.full((4,), 1e-5)
  np.testing.assert_allclose(clean, noisy + sde.sigma(t)[:, None]**2 * fns.score(noisy, t),
                             rtol=1e-5)
  assert nfe == nfe_noisy + 1 == 10 * 2 + 1


# --- batch-size independence --------------------------------------------------------------

SMALL_VE = VESDE(N=50)


@pytest.mark.llvm_optimised  # bit-for-bit across batch sizes
@pytest.mark.parametrize("corrector,independent", [("langevin_per_sample", True),
                                                   ("mala", True), ("langevin", False)])
def test_pc_samples_depend_on_batch_only_with_the_released_langevin(corrector, independent):
  steps = pc_steps(SMALL_VE, make_grid(SMALL_VE, "uniform", 50, 1e-5), True)
  fn = jax.jit(lambda k: pc_sample(gmm_fns(SMALL_VE), steps, k, (2,), "reverse_diffusion",
                                   corrector, 0.16, 2)[0])
  keys = sample_keys(jax.random.key(3), jnp.arange(8))
  whole = np.asarray(fn(keys))
  halves = np.concatenate([fn(keys[:4]), fn(keys[4:])])
  assert np.allclose(whole, halves, rtol=1e-5, atol=1e-5) == independent
  assert np.abs(whole[:4] - whole[4:]).min() > 1e-3  # samples differ from each other


def jax_random_noise(keys, step, shape):
  """What the per-sample functions promise, from jax.random itself: (fold_in keys, normal, U)."""
  folded = jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
  return (folded, jax.vmap(lambda k: jax.random.normal(k, shape))(folded),
          jax.vmap(jax.random.uniform)(folded))


@pytest.mark.parametrize("x64", [False, True])
def test_per_sample_noise_is_jax_random_bit_for_bit(x64):
  """The unrolled threefry (samplers.threefry) gives jax.random's values exactly, in float32
  and float64, for traced and Python steps, and raw uint32 keys take jax.random's own path."""
  with jax.enable_x64(x64):
    keys = sample_keys(jax.random.key(11), jnp.arange(5, 305))
    for shape in [(), (3, 5), (3, 4, 4)]:
      ours = jax.jit(lambda k, s, shape=shape: (jax.random.key_data(step_keys(k, s)),
                                                per_sample_normal(k, s, shape),
                                                per_sample_uniform(k, s)))
      theirs = jax.jit(lambda k, s, shape=shape: jax_random_noise(k, s, shape))
      for step in [0, 977, 2**31 - 1]:
        folded, normal, uniform = theirs(keys, step)
        for got, want in zip(ours(keys, step), (jax.random.key_data(folded), normal, uniform)):
          assert got.dtype == want.dtype and got.shape == want.shape
          np.testing.assert_array_equal(got, want)
      assert normal.dtype == (jnp.float64 if x64 else jnp.float32)
    np.testing.assert_array_equal(per_sample_normal(keys, 1, (2,)),
                                  jax_random_noise(keys, 1, (2,))[1])  # a Python step
    raw = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(3), i))(jnp.arange(4))
    np.testing.assert_array_equal(per_sample_normal(raw, 7, (2,)),
                                  jax_random_noise(raw, 7, (2,))[1])


# --- NFE ------------------------------------------------------------------------------------


def counting(fns, counter):
  """fns whose score adds the number of samples it scores to counter[0] (as a side effect)."""
  def count(x):
    counter[0] += x.shape[0]

  def wrapped(x, t):
    jax.debug.callback(count, x)
    return fns.score(x, t)

  return fns.with_score(wrapped)


def test_pc_nfe_formula():
  assert pc_nfe(50, "euler_maruyama", "langevin", 3, True) == 50 * 4
  assert pc_nfe(50, "none", "ald", 2, False) == 50 * 2
  assert pc_nfe(50, "none", "ald", 2, True) == 50 * 2 + 1
  assert pc_nfe(50, "reverse_diffusion", "none", 5, True) == 50
  assert pc_nfe(50, "reverse_diffusion", "mala", 2, True) == 50 * 4


@pytest.mark.parametrize("predictor,corrector,n_steps",
                         [("euler_maruyama", "langevin", 2), ("none", "ald", 3),
                          ("ancestral_sampling", "mala", 2)])
def test_pc_nfe_counts_score_calls(predictor, corrector, n_steps):
  sde, counter, batch = VESDE(N=10), [0], 3
  fns = counting(gmm_fns(sde), counter)
  steps = pc_steps(sde, make_grid(sde, "uniform", 10, 1e-5), True)
  keys = sample_keys(jax.random.key(0), jnp.arange(batch))
  x, nfe = jax.jit(lambda k: pc_sample(fns, steps, k, (2,), predictor, corrector, 0.16,
                                       n_steps))(keys)
  jax.block_until_ready(x)
  jax.effects_barrier()
  assert int(nfe) == pc_nfe(10, predictor, corrector, n_steps, True)
  assert counter[0] == batch * int(nfe)


@pytest.mark.parametrize("method", sorted(ODE_SOLVERS))
@pytest.mark.parametrize("whole_batch", [False, True])
def test_ode_nfe_counts_score_calls(method, whole_batch):
  """Reported NFE = real score calls, the initial-step evaluations included. The vmapped solver
  loops until its slowest sample is done, so the batch makes max(nfe) batched calls."""
  sde, counter, batch = SMALL_VE, [0], 3
  keys = sample_keys(jax.random.key(4), jnp.arange(batch))
  x, nfe = jax.jit(lambda k: ode_sample(counting(gmm_fns(sde), counter), k, (2,), rtol=1e-3,
                                        atol=1e-3, method=method, denoise=True,
                                        whole_batch=whole_batch))(keys)
  jax.block_until_ready(x)
  jax.effects_barrier()
  assert counter[0] == batch * int(nfe.max()), (counter[0], nfe)
  assert (int(nfe.min()) == int(nfe.max())) == whole_batch


def test_failed_ode_solve_is_nan_and_counted():
  keys = sample_keys(jax.random.key(0), jnp.arange(2))
  x, nfe = jax.jit(lambda k: ode_sample(gmm_fns(SMALL_VE), k, (2,), max_steps=3))(keys)
  assert np.all(np.isnan(x)) and np.all(np.asarray(nfe) == INITIAL_EVALS + 6 * 3)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("getter,registry", [(get_predictor, PREDICTORS),
                                             (get_corrector, CORRECTORS),
                                             (get_ode_solver, ODE_SOLVERS)])
def test_unknown_names_list_valid_choices(getter, registry):
  with pytest.raises(ValueError) as info:
    getter("no_such_method")
  for name in registry:
    assert repr(name) in str(info.value)


def test_unsupported_combinations_raise():
  keys = sample_keys(jax.random.key(0), jnp.arange(2))
  steps = pc_steps(SMALL_VE, make_grid(SMALL_VE, "uniform", 50, 1e-5), True)
  trace = lambda fn: jax.eval_shape(lambda k: fn(k)[0], keys)  # errors surface while tracing
  with pytest.raises(ValueError, match="probability-flow"):
    trace(lambda k: pc_sample(gmm_fns(SMALL_VE), steps, k, (2,), "ancestral_sampling", "none",
                              0.16, 1, probability_flow=True))
  with pytest.raises(ValueError, match="Unknown ODE solver"):
    trace(lambda k: ode_sample(gmm_fns(SMALL_VE), k, (2,), method="rk45"))
  with pytest.raises(ValueError, match="Unknown corrector"):
    trace(lambda k: pc_sample(gmm_fns(SMALL_VE), steps, k, (2,), "euler_maruyama", "hmc",
                              0.16, 1))
  with pytest.raises(ValueError, match="Unknown sampling method.*ddim"):
    get_solver("plms")
