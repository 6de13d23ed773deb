"""Samplers against exact answers: the score of a Gaussian mixture perturbed by each SDE is
closed-form (models.gmm), so PC and ODE samples must reproduce the mixture's component
weights, means and covariances within Monte-Carlo error (checked against fresh samples,
and shown to reject wrong samples)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.gmm import AnalyticGMMScore, GaussianMixture, marginal_coeffs
from samplers import (CORRECTORS, ODE_SOLVERS, PREDICTORS, get_corrector, get_ode_solver,
                      get_predictor, ode_sample, pc_nfe, pc_sample, per_sample_prior,
                      sample_keys)
from sde_lib import VESDE, VPSDE, SubVPSDE

N = 200  # discretisation steps of every PC run
BATCH = 2000
MIX = GaussianMixture(weights=(0.3, 0.7), means=((-2.5, -1.0), (2.0, 1.5)),
                      covs=(((1.0, 0.6), (0.6, 0.8)), ((0.4, -0.15), (-0.15, 0.9))))
SDES = {"ve": VESDE(N=N), "vp": VPSDE(N=N), "subvp": SubVPSDE(N=N)}
KEYS = sample_keys(jax.random.key(0), jnp.arange(BATCH))
# Langevin ('langevin') sizes its step with per-sample norms, which is only sound when they
# concentrate (high dimensions, see samplers.correctors.langevin): it is tested on the mixture
# lifted to 64-D by independent N(0, v_i) coordinates, whose score is still exact.
LIFT_VARS = np.linspace(0.3, 1.5, 62).astype(np.float32)

# Thresholds of matches_mixture: weight error in standard errors, mean error as a Mahalanobis
# distance in standard errors, max entry of the whitened covariance minus I (SE ~0.06 for a
# component of 600 samples, so 0.2 leaves ~3 SE; discretisation bias at N=200 is below that).
MAX_WEIGHT_Z, MAX_MEAN_Z, MAX_COV_DEV = 4.0, 4.5, 0.2


def gmm_score(sde, mixture=MIX):
  model = AnalyticGMMScore(sde, mixture)
  return lambda x, t: model.score({}, x, t)


def lifted_score(sde, lift_vars=LIFT_VARS):
  """Exact score of the lifted mixture: the 2-D mixture times N(0, diag(lift_vars))."""
  score_2d = gmm_score(sde)

  def score(x, t):
    a, s = marginal_coeffs(sde, t)
    var = jnp.square(a)[:, None] * lift_vars[None] + jnp.square(s)[:, None]
    return jnp.concatenate([score_2d(x[:, :2], t), -x[:, 2:] / var], axis=-1)

  return score


def assign(x, mixture=MIX):
  """Index of the most responsible component of each 2-D sample: (B,)."""
  w, m, c = (np.asarray(a, np.float64) for a in (mixture.weights, mixture.means, mixture.covs))
  diff = x[:, None] - m[None]
  maha = np.einsum("bki,kij,bkj->bk", diff, np.linalg.inv(c), diff)
  return np.argmax(np.log(w) - 0.5 * (maha + np.linalg.slogdet(c)[1]), axis=-1)


def component_stats(x):
  """(weight, mean, covariance) of the samples assigned to each component."""
  x = np.asarray(x, np.float64)
  k = assign(x)
  return [(np.mean(k == i), x[k == i].mean(0), np.cov(x[k == i].T)) for i in range(2)]


@functools.lru_cache(maxsize=None)
def reference_stats():
  return component_stats(MIX.sample(np.random.default_rng(0), 200_000))


def mixture_errors(x):
  """Largest standardised errors of weight, mean and covariance over the two components."""
  x = np.asarray(x, np.float64)
  if not np.all(np.isfinite(x)):
    return {"weight": np.inf, "mean": np.inf, "cov": np.inf}
  errors = {"weight": 0.0, "mean": 0.0, "cov": 0.0}
  for (w, m, c), (w0, m0, c0) in zip(component_stats(x), reference_stats()):
    n_k = max(w * len(x), 2.0)
    dm = m - m0
    errors["weight"] = max(errors["weight"], abs(w - w0) / np.sqrt(w0 * (1 - w0) / len(x)))
    errors["mean"] = max(errors["mean"], np.sqrt(n_k * dm @ np.linalg.solve(c0, dm)))
    white = np.linalg.inv(np.linalg.cholesky(c0))
    errors["cov"] = max(errors["cov"], np.abs(white @ c @ white.T - np.eye(2)).max())
  return errors


def matches_mixture(x):
  e = mixture_errors(x)
  return e["weight"] < MAX_WEIGHT_Z and e["mean"] < MAX_MEAN_Z and e["cov"] < MAX_COV_DEV


def assert_matches_mixture(x):
  assert matches_mixture(x), mixture_errors(x)


@functools.lru_cache(maxsize=None)
def pc_fn(sde, predictor, corrector, snr, n_steps, lifted=False):
  score_fn = lifted_score(sde) if lifted else gmm_score(sde)
  shape = (2 + LIFT_VARS.size,) if lifted else (2,)
  return jax.jit(lambda keys: pc_sample(sde, score_fn, keys, shape, predictor, corrector, snr,
                                        n_steps)[0])


def predictors_for(sde_name):
  names = ["euler_maruyama", "reverse_diffusion", "ancestral_sampling"]
  return names[:2] if sde_name == "subvp" else names


PC_2D = [(s, p, c) for s in SDES for p in predictors_for(s) for c in ("none", "ald")]
PC_LIFTED = [(s, p) for s in SDES for p in predictors_for(s) + ["none"]]


@pytest.mark.parametrize("sde_name,predictor,corrector", PC_2D)
def test_pc_samples_match_mixture(sde_name, predictor, corrector):
  x = pc_fn(SDES[sde_name], predictor, corrector, 0.16, 1)(KEYS)
  assert_matches_mixture(x)


@pytest.mark.parametrize("sde_name,predictor", PC_LIFTED)
def test_pc_langevin_samples_match_lifted_mixture(sde_name, predictor):
  """Langevin corrector after each predictor (snr 0.075), and alone ('none': corrector-only
  sampling needs more steps: N=500, 2 corrector steps, snr 0.16; 1000 samples for time)."""
  sde, snr, n_steps, keys = SDES[sde_name], 0.075, 1, KEYS
  if predictor == "none":
    sde, snr, n_steps, keys = type(sde)(N=500), 0.16, 2, KEYS[:1000]
  x = np.asarray(pc_fn(sde, predictor, "langevin", snr, n_steps, lifted=True)(keys))
  assert_matches_mixture(x[:, :2])
  # Variances of the 62 Gaussian coordinates (SE 0.03-0.045 each): the per-sample step size
  # biases them up by ~2/dim plus Langevin's discretisation bias, +4-8% here.
  ratio = x[:, 2:].var(0) / LIFT_VARS
  assert 0.95 < ratio.mean() < 1.1 and np.abs(ratio - 1).max() < 0.25, ratio


@pytest.mark.parametrize("sde_name", list(SDES))
def test_ode_samples_match_mixture(sde_name):
  sde = SDES[sde_name]
  x, nfe = jax.jit(lambda k: ode_sample(sde, gmm_score(sde), k, (2,)))(KEYS)
  assert_matches_mixture(x)
  assert nfe.shape == (BATCH,) and 20 < int(nfe.max()) < 1000


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
  flipped = jax.jit(lambda k: pc_sample(sde, lambda x, t: -gmm_score(sde)(x, t), k, (2,),
                                        "reverse_diffusion", "none", 0.16, 1)[0])
  assert not matches_mixture(flipped(KEYS))


def test_lifted_score_is_the_mixture_score():
  sde, lift_vars = SDES["vp"], LIFT_VARS[::12]  # 6-D: small matrices for the oracle
  dim = 2 + lift_vars.size
  pad = lambda c: np.block([[np.asarray(c), np.zeros((2, dim - 2))],
                            [np.zeros((dim - 2, 2)), np.diag(lift_vars)]])
  big = GaussianMixture(MIX.weights, tuple(tuple(m) + (0.0,) * (dim - 2) for m in MIX.means),
                        tuple(tuple(map(tuple, pad(c))) for c in MIX.covs))
  x = jax.random.normal(jax.random.key(1), (3, dim))
  t = jnp.array([0.01, 0.3, 0.9])
  both = jax.jit(lambda x, t: (lifted_score(sde, lift_vars)(x, t), gmm_score(sde, big)(x, t)))
  np.testing.assert_allclose(*both(x, t), rtol=1e-4, atol=1e-4)


# --- batch-size independence --------------------------------------------------------------

SMALL_VE = VESDE(N=50)


@pytest.mark.parametrize("sampler", ["pc", "ode"])
def test_samples_do_not_depend_on_batch_size(sampler):
  if sampler == "pc":
    fn = jax.jit(lambda k: pc_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), "reverse_diffusion",
                                     "langevin", 0.16, 2)[0])
  else:
    fn = jax.jit(lambda k: ode_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), rtol=1e-4,
                                      atol=1e-4)[0])
  keys = sample_keys(jax.random.key(3), jnp.arange(8))
  whole = np.asarray(fn(keys))
  halves = np.concatenate([fn(keys[:4]), fn(keys[4:])])
  np.testing.assert_allclose(whole, halves, rtol=1e-5, atol=1e-5)  # (bitwise equal here)
  assert np.abs(whole[:4] - whole[4:]).min() > 1e-3  # samples differ from each other


# --- NFE ------------------------------------------------------------------------------------


def counting(score_fn, counter):
  """score_fn that adds the number of samples it scores to counter[0] (as a side effect)."""
  def count(x):
    counter[0] += x.shape[0]

  def wrapped(x, t):
    jax.debug.callback(count, x)
    return score_fn(x, t)

  return wrapped


def test_pc_nfe_formula():
  assert pc_nfe(SMALL_VE, "euler_maruyama", "langevin", 3) == 50 * 4
  assert pc_nfe(SMALL_VE, "none", "ald", 2) == 50 * 2
  assert pc_nfe(SMALL_VE, "reverse_diffusion", "none", 5) == 50
  assert pc_nfe(SMALL_VE, "none", "none", 1) == 0
  returned = {}

  def trace_only(keys):
    x, returned["nfe"] = pc_sample(SMALL_VE, gmm_score(SMALL_VE), keys, (2,), "euler_maruyama",
                                   "langevin", 0.16, 3)
    return x

  jax.eval_shape(trace_only, sample_keys(jax.random.key(0), jnp.arange(2)))
  assert type(returned["nfe"]) is int and returned["nfe"] == 200  # static, known before running


@pytest.mark.parametrize("predictor,corrector,n_steps",
                         [("euler_maruyama", "langevin", 2), ("none", "ald", 3)])
def test_pc_nfe_counts_score_calls(predictor, corrector, n_steps):
  sde, counter, batch = VESDE(N=10), [0], 3
  score_fn = counting(gmm_score(sde), counter)
  keys = sample_keys(jax.random.key(0), jnp.arange(batch))
  x, nfe = jax.jit(lambda k: pc_sample(sde, score_fn, k, (2,), predictor, corrector, 0.16,
                                       n_steps))(keys)
  jax.block_until_ready(x)
  jax.effects_barrier()
  assert int(nfe) == pc_nfe(sde, predictor, corrector, n_steps) == sde.N * (
      PREDICTORS[predictor].nfe + n_steps * CORRECTORS[corrector].nfe)
  assert counter[0] == batch * int(nfe)


@pytest.mark.parametrize("method", sorted(ODE_SOLVERS))
def test_ode_nfe_counts_score_calls(method):
  """Reported NFE = real score calls. The vmapped solver loops until its slowest sample is
  done, so the batch makes max(nfe) batched calls; the samples' own NFEs differ."""
  sde, counter, batch = SMALL_VE, [0], 3
  keys = sample_keys(jax.random.key(4), jnp.arange(batch))
  x, nfe = jax.jit(lambda k: ode_sample(sde, counting(gmm_score(sde), counter), k, (2,),
                                        rtol=1e-3, atol=1e-3, method=method, denoise=True))(keys)
  jax.block_until_ready(x)
  jax.effects_barrier()
  assert counter[0] == batch * int(nfe.max()), (counter[0], nfe)
  assert int(nfe.min()) < int(nfe.max())


# --- errors ----------------------------------------------------------------------------------


def test_failed_ode_solve_returns_nan():
  keys = sample_keys(jax.random.key(0), jnp.arange(2))
  x, nfe = jax.jit(lambda k: ode_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), max_steps=3))(keys)
  assert np.all(np.isnan(x)) and np.all(np.asarray(nfe) == 1 + 6 * 3)


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
  trace = lambda fn: jax.eval_shape(lambda k: fn(k)[0], keys)  # errors surface while tracing
  subvp = SubVPSDE(N=5)
  with pytest.raises(ValueError, match="VESDE and VPSDE"):
    trace(lambda k: pc_sample(subvp, gmm_score(subvp), k, (2,), "ancestral_sampling", "none",
                              0.16, 1))
  with pytest.raises(ValueError, match="probability-flow"):
    trace(lambda k: pc_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), "ancestral_sampling",
                              "none", 0.16, 1, probability_flow=True))
  with pytest.raises(ValueError, match="Unknown ODE solver"):
    trace(lambda k: ode_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), method="rk45"))
  with pytest.raises(ValueError, match="Unknown corrector"):
    trace(lambda k: pc_sample(SMALL_VE, gmm_score(SMALL_VE), k, (2,), "euler_maruyama", "mala",
                              0.16, 1))
