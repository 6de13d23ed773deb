"""Class-conditional sampling against exact answers. For a labelled Gaussian mixture (label =
component) the perturbed classifier p_t(y | x) is the responsibilities of the perturbed
components and grad log p_t(x | y) is component y's perturbed score, so guided samples at scale 1
must be component y itself (mean, covariance within Monte-Carlo error) with every solver."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
import samplers
import conditioning
from data_sources.mixture import GaussianMixture
from sde_lib import VESDE, VPSDE

# Compile-bound (short loops, small models): XLA's unoptimised CPU compiles, measured faster.
pytestmark = pytest.mark.usefixtures("compile_without_llvm_optimisation")

LABELLED = GaussianMixture(weights=(0.3, 0.3, 0.4), means=((-3.0, 0.0), (3.0, -0.5), (0.0, 3.5)),
                           covs=(((0.6, 0.2), (0.2, 0.4)), ((0.3, -0.1), (-0.1, 0.7)),
                                 ((0.5, 0.0), (0.0, 0.3))))
BATCH = 2000
KEYS = samplers.sample_keys(jax.random.key(3), jnp.arange(BATCH))
# VE: sigma_max far above the data scale, else the prior N(0, sigma_max^2 I) misses p_T(x | y),
# whose mean is mu_y, and deterministic solvers carry that error to the end.
SDES = {"vp": VPSDE(N=200), "ve": VESDE(sigma_max=50.0, N=200)}
EPS = {"vp": 1e-3, "ve": 1e-5}
SOLVES = {  # name -> (method, grid, steps, options)
    "pc": ("pc", "uniform", 200, dict(predictor="reverse_diffusion", corrector="none")),
    "ode": ("ode", "uniform", 0, dict(rtol=1e-5, atol=1e-5)),
    "heun": ("heun", "edm", 40, {}),
    "dpm_solver_2m": ("dpm_solver_2m", "logsnr", 40, {}),
}


def exact_parts(sde):
  """(unconditional score, classifier, conditional score) of LABELLED under sde."""
  return (models.AnalyticGMMScore(sde, LABELLED), models.AnalyticGMMClassifier(sde, LABELLED),
          models.AnalyticGMMConditionalScore(sde, LABELLED))


def label_data(y):
  """One label for every sample (a scalar broadcasts, also in the per-sample adaptive ODE)."""
  return {"labels": jnp.int32(y)}


def guided_fns(sde, y, scale):
  """The exact mixture score with classifier guidance of label y (conditioning.CONDITIONS)."""
  score_model, classifier, _ = exact_parts(sde)
  condition = conditioning.build_condition(
      "classifier", {"classifier_log_probs": lambda p, x, t: classifier.log_probs({}, x, t)},
      {"scale": scale})
  fns = samplers.ModelFns(sde, lambda x, t: score_model.score({}, x, t))
  return condition.apply(fns, {}, label_data(y), None)


def cfg_fns(sde, y, w):
  """CFG of label y with the exact class-conditional score (null label 3)."""
  cond_model = exact_parts(sde)[2]
  condition = conditioning.build_condition(
      "cfg", {"score_given_labels": lambda p, x, t, labels: cond_model.score({}, x, t,
                                                                              labels=labels),
              "null_label": 3}, {"scale": w})
  fns = samplers.ModelFns(sde, lambda x, t: cond_model.score({}, x, t))
  return condition.apply(fns, {}, label_data(y), None)


@functools.lru_cache(maxsize=None)
def draw(solve: str, sde_name: str, kind: str, y: int, weight: float) -> np.ndarray:
  """Samples (BATCH, 2) of `solve` with classifier guidance ('guided', scale weight) or CFG."""
  method, grid, steps, options = SOLVES[solve]
  sde = SDES[sde_name]
  fns = (guided_fns if kind == "guided" else cfg_fns)(sde, y, weight)
  solver = samplers.get_solver(method)
  times = samplers.make_grid(sde, grid, steps, EPS[sde_name]) if solver.uses_grid else None
  if method == "ode":
    options = dict(options, eps=EPS[sde_name], denoise=True)
  x, _ = jax.jit(lambda keys: solver.sample(fns, times, keys, (2,), **options))(KEYS)
  return np.asarray(x, np.float64)


def assign(x):
  """Most responsible clean component of each sample (B,)."""
  log_terms, _ = LABELLED.component_terms(jnp.asarray(x, jnp.float32), jnp.ones(len(x)),
                                          jnp.zeros(len(x)) + 1e-6)
  return np.asarray(jnp.argmax(log_terms, axis=-1))


def assert_is_component(x, y, max_mean_z=4.5, max_cov_dev=0.15):
  """Samples x (B, 2) match N(mu_y, S_y): Mahalanobis mean error in standard errors, whitened
  covariance minus I, and under 1% of samples closer to another component."""
  mean, cov = np.asarray(LABELLED.means[y]), np.asarray(LABELLED.covs[y])
  assert np.all(np.isfinite(x))
  dm = x.mean(0) - mean
  mean_z = np.sqrt(len(x) * dm @ np.linalg.solve(cov, dm))
  white = np.linalg.inv(np.linalg.cholesky(cov))
  cov_dev = np.abs(white @ np.cov(x.T) @ white.T - np.eye(2)).max()
  elsewhere = np.mean(assign(x) != y)
  assert mean_z < max_mean_z and cov_dev < max_cov_dev and elsewhere < 0.01, (mean_z, cov_dev,
                                                                              elsewhere)


def test_guided_score_at_scale_one_is_the_exact_conditional_score():
  sde = SDES["vp"]
  x = jax.random.normal(jax.random.key(0), (BATCH, 2)) * 3.0
  t = jax.random.uniform(jax.random.key(1), (BATCH,), minval=1e-3, maxval=1.0)
  for y in range(3):
    guided = guided_fns(sde, y, 1.0).score(x, t)
    exact = exact_parts(sde)[2].score({}, x, t, labels=jnp.full((BATCH,), y))
    np.testing.assert_allclose(guided, exact, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("solve,sde_name,y", [("pc", "vp", 0), ("pc", "ve", 2), ("ode", "vp", 1),
                                              ("heun", "vp", 1), ("dpm_solver_2m", "vp", 2)])
def test_guided_samples_are_the_requested_component(solve, sde_name, y):
  assert_is_component(draw(solve, sde_name, "guided", y, 1.0), y)


def test_guidance_scale_zero_gives_the_unconditional_mixture():
  x = draw("pc", "vp", "guided", 0, 0.0)
  k = assign(x)
  weights = np.asarray(LABELLED.weights)
  freq = np.bincount(k, minlength=3) / len(k)
  assert np.all(np.abs(freq - weights) < 4 * np.sqrt(weights * (1 - weights) / len(k))), freq
  for y in range(3):
    assert_is_component(x[k == y], y, max_cov_dev=0.25)
  with pytest.raises(AssertionError):  # and the check does reject the mixture as one component
    assert_is_component(x, 0)


def test_cfg_at_w_zero_is_the_exact_conditional():
  """CFG of the exact conditional score at w = 0 gives the same samples (same keys) as exact
  classifier guidance at scale 1, and both are component y."""
  cfg, guided = draw("pc", "vp", "cfg", 1, 0.0), draw("pc", "vp", "guided", 1, 1.0)
  np.testing.assert_allclose(cfg, guided, atol=2e-3)
  assert_is_component(cfg, 1)


def test_cfg_mixes_conditional_and_unconditional_scores():
  """(1 + w) s(x | y) - w s(x | null) of the labels in the data (null = 5)."""
  score = lambda p, x, t, labels: jnp.where((labels == 5)[:, None], x + 1.0, 2.0 * x)
  x, t = jnp.arange(6.0).reshape(3, 2), jnp.ones(3)
  fns = samplers.ModelFns(VPSDE(), lambda x, t: x + 1.0)

  def mixed(w):
    condition = conditioning.build_condition(
        "cfg", {"score_given_labels": score, "null_label": 5}, {"scale": w})
    return condition.apply(fns, {}, {"labels": jnp.zeros(3, jnp.int32)}, None).score(x, t)

  np.testing.assert_allclose(mixed(1.5), 2.5 * 2.0 * x - 1.5 * (x + 1.0))
  np.testing.assert_allclose(mixed(0.0), 2.0 * x)
  with pytest.raises(ValueError, match="must be >= 0"):
    mixed(-0.5)


def test_analytic_classifier_is_bayes_rule_on_perturbed_components():
  sde = SDES["ve"]
  classifier = exact_parts(sde)[1]
  x = jnp.array([[-3.0, 0.0], [3.0, -0.5], [0.0, 3.5], [0.0, 0.0]])
  t = jnp.array([1e-5, 1e-5, 1e-5, 1.0])
  probs = np.exp(np.asarray(classifier.log_probs({}, x, t)))
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.argmax(probs[:3], -1) == np.arange(3)) and probs[:3].max(-1).min() > 0.999
  # At t = T (sigma 50) the components are indistinguishable: the prior weights.
  np.testing.assert_allclose(probs[3], LABELLED.weights, atol=0.01)


# --- through the config and --mode=sample ------------------------------------------------

from configs import load_config  # pylint: disable=wrong-import-position
from workflows import guidance as guidance_workflow  # pylint: disable=wrong-import-position
from workflows.sample import sample  # pylint: disable=wrong-import-position

GMM = {"sampling.num_steps": 200, "sampling.num_samples": 1200, "sampling.batch_size": 600}


def gmm_config(**overrides):
  return load_config("configs/gmm_analytic.py:vpsde", {**GMM, **overrides})


def test_sample_mode_cycles_classes_and_writes_labels(tmp_path):
  """class_label -1: sample i is class i % K; each class's samples are its component."""
  config = gmm_config(**{"sampling.guidance.method": "classifier"})
  sample(config, tmp_path)
  out = np.load(tmp_path / "samples" /
                f"unconditional_classifier_all_scale1_{config.sampling.method}_200.npz")
  np.testing.assert_array_equal(out["labels"], np.arange(1200) % 2)
  mixture = guidance_workflow.build.build_mixture(config.data)
  for y in range(2):
    x = out["samples"][out["labels"] == y].astype(np.float64)
    dm = x.mean(0) - np.asarray(mixture.means[y])
    assert np.sqrt(len(x) * dm @ np.linalg.solve(np.asarray(mixture.covs[y]), dm)) < 4.5
    white = np.linalg.inv(np.linalg.cholesky(np.asarray(mixture.covs[y])))
    assert np.abs(white @ np.cov(x.T) @ white.T - np.eye(2)).max() < 0.2


def test_sample_mode_cfg_at_w_zero_matches_classifier_guidance(tmp_path):
  guided = gmm_config(**{"sampling.guidance.method": "classifier",
                         "sampling.guidance.class_label": 1})
  cfg = gmm_config(**{"sampling.guidance.method": "cfg", "sampling.guidance.class_label": 1,
                      "model.class_conditional": True, "sampling.guidance.scale": 0.0})
  x_guided = sample(guided, tmp_path / "g")["samples"]
  x_cfg = sample(cfg, tmp_path / "c")["samples"]
  np.testing.assert_allclose(x_cfg, x_guided, atol=2e-3)
  written = (tmp_path / "c" / "samples" /
             f"unconditional_cfg_class1_scale0_{cfg.sampling.method}_200.npz")
  assert np.all(np.load(written)["labels"] == 1)


@pytest.mark.parametrize("overrides,message", [
    ({"sampling.guidance.method": "classifier", "sampling.guidance.class_label": 2},
     "out of range"),
    ({"sampling.guidance.method": "cfg", "model.class_conditional": True,
      "sampling.guidance.scale": -1.0}, "must be >= 0"),
    ({"sampling.guidance.method": "cfg"}, "needs a class-conditional score model"),
    ({"sampling.guidance.method": "clasifier"}, "Unknown sampling.guidance.method"),
    ({"sampling.task": "inpaint_everything"}, "Unknown sampling.task"),
    ({"sampling.task": "cfg"}, "guidance.method=cfg"),
])
def test_bad_conditional_sampling_input_is_a_clear_error(tmp_path, overrides, message):
  with pytest.raises(ValueError, match=message):
    sample(gmm_config(**overrides), tmp_path)


def test_guidance_without_a_classifier_is_a_clear_error(tmp_path):
  config = gmm_config(**{"sampling.guidance.method": "classifier", "classifier.name": "mlp"})
  with pytest.raises(FileNotFoundError, match="train_classifier"):
    sample(config, tmp_path)


def test_classifier_of_another_sde_is_a_clear_error(tmp_path):
  config = gmm_config(**{"classifier.name": "mlp"})
  other = load_config("configs/gmm_analytic.py:vesde", {"classifier.name": "mlp"})
  directory = guidance_workflow.classifier_dir(config, tmp_path)
  directory.mkdir(parents=True)
  (directory / guidance_workflow.INFO_FILE).write_text(
      guidance_workflow.json.dumps(guidance_workflow.trained_for(other)))
  with pytest.raises(ValueError, match="trained for other data or another SDE"):
    guidance_workflow.check_trained_for(config, directory)
  guidance_workflow.check_trained_for(other, directory)


# --- classifier-free guidance: networks with a null label, label dropout ---------------------

from training import losses  # pylint: disable=wrong-import-position
from workflows import build  # pylint: disable=wrong-import-position
from workflows.train import train  # pylint: disable=wrong-import-position


def test_label_dropout_rate_is_honoured():
  labels = jnp.arange(200_000) % 5
  batch = {"image": jnp.zeros((labels.size, 2)), "label": labels}
  _, kw = losses.split_batch(batch, jax.random.key(0), label_dropout=0.3, label_classes=5)
  dropped = np.asarray(kw["labels"] == 5)
  assert abs(dropped.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / labels.size), dropped.mean()
  np.testing.assert_array_equal(np.asarray(kw["labels"])[~dropped], np.asarray(labels)[~dropped])
  _, kept = losses.split_batch(batch, jax.random.key(0), label_dropout=0.0, label_classes=5)
  np.testing.assert_array_equal(kept["labels"], labels)
  x, none = losses.split_batch(batch["image"], jax.random.key(0), 0.3, 5)
  assert none == {} and x.shape == (labels.size, 2)


@pytest.mark.slow  # CI budget, 23-24 s: two networks' compiles
@pytest.mark.usefixtures("compile_without_llvm_optimisation")  # two networks' compiles
def test_null_label_gives_the_unconditional_output():
  """Analytic: the null label is the mixture's score. Networks: no labels = the null label."""
  sde = SDES["vp"]
  model = exact_parts(sde)[2]
  x = jax.random.normal(jax.random.key(0), (64, 2)) * 3
  t = jnp.linspace(1e-3, 1.0, 64)
  np.testing.assert_allclose(model.score({}, x, t, labels=jnp.full((64,), 3)),
                             exact_parts(sde)[0].score({}, x, t), rtol=1e-6, atol=1e-6)
  for name in ("mlp", "ncsnpp"):
    config = load_config("configs/toy.py:gmm,vpsde" if name == "mlp" else "configs/digits.py:vpsde",
                         {"model.class_conditional": True, "model.nf": 16})
    score_model = build.build_score_model(config, sde)
    example = build.example_batch(config, 4)
    rng = np.random.default_rng(2)  # perturbed: no zero-initialised output layer
    params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape, np.float32),
                          jax.jit(score_model.init)(jax.random.key(1), example))
    xs = jax.random.normal(jax.random.key(3), example.shape)
    ts = jnp.full((4,), 0.5)
    score = jax.jit(score_model.score)  # one compile without labels, one with
    null = score(params, xs, ts, labels=jnp.full((4,), config.data.num_classes))
    np.testing.assert_allclose(score(params, xs, ts), null, rtol=1e-5, atol=1e-5)
    other = score(params, xs, ts, labels=jnp.zeros((4,), jnp.int32))
    assert np.abs(np.asarray(other - null)).max() > 1e-3, name


@pytest.mark.parametrize("name,extra", [("mlp", 3 * 128), ("ncsnpp", 11 * 128), ("ddpm", 11 * 128)])
def test_class_embedding_adds_only_its_table(name, extra):
  """num_classes + 1 rows of the time-embedding width; unconditional networks are unchanged."""
  spec = "configs/toy.py:gmm,vpsde" if name == "mlp" else "configs/digits.py:vpsde"

  def count(cond):
    c = load_config(spec, {"model.name": name, "model.class_conditional": cond})
    init = build.build_score_model(c, SDES["vp"]).init
    shapes = jax.eval_shape(lambda k: init(k, build.example_batch(c)), jax.random.key(0))
    return sum(p.size for p in jax.tree.leaves(shapes))

  assert count(True) - count(False) == extra


def test_tiny_conditional_network_trains_a_step(tmp_path):
  config = load_config("configs/toy.py:gmm,vpsde", {
      "model.class_conditional": True, "model.nf": 32, "training.batch_size": 64,
      "training.n_iters": 2, "training.log_freq": 1, "training.snapshot_freq": 2,
      "training.snapshot_freq_for_preemption": 2, "optim.warmup": 0})
  sde = build.build_sde(config)
  score_model = build.build_score_model(config, sde)
  state = train(config, tmp_path)
  initial = score_model.init(jax.random.key(config.seed, impl="rbg"), build.example_batch(config))
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params, initial)
  assert moved["class_embed"]["embedding"] > 0 and np.isfinite(jax.tree.leaves(moved)).all()
  loss = jax.jit(build.build_loss(config, sde, score_model))
  data = {"image": jnp.asarray(build.load_split(config, "train")[:512]),
          "label": jnp.asarray(build.load_labels(config, "train")[:512])}
  assert np.isfinite(float(loss(state.params, data, jax.random.key(0))[0]))
