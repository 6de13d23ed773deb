"""The Python API for notebooks and scripts, on the code paths main.py runs:

  m = workflows.load("workdirs/digits_vp")  # a workdir (its config), or a config file / ConfigDict
  x = m.sample(64, method="dpm_solver_2m", num_steps=10)  # --mode=sample's samples, not written
  arrays = m.sample_arrays(64, method="pc")                # with nfe, labels, observations...
  logp = m.likelihood(x)                                   # log p(x) in nats (N,)
  out = m.likelihood_arrays(x, trace_estimator="exact")    # logp and NFE per example
  d, s = m.denoise(x, t), m.score(x, t)                    # D(x, t) and the score, t (N,)
  fns = m.model_fns()                                      # samplers.ModelFns, for solvers

Likelihood overrides are config.eval keys.

Sampling overrides are config.sampling keys, dotted below it (m.sample(64, task="inpaint",
**{"guidance.method": "cfg"})); an unknown key fails as on the command line.
"""
import dataclasses
import functools
import pathlib

import jax
import ml_collections
import numpy as np

import configs
import samplers
from parallel import DataParallel
from workflows import build, likelihood, sample
from workflows.batches import map_global_batches


@dataclasses.dataclass
class Model:
  """A score model: config (locked) and the workdir of its checkpoints (none for analytic ones)."""

  config: ml_collections.ConfigDict
  workdir: pathlib.Path
  # workflows.sample.SamplingRun per sampling settings, jitted likelihood per eval settings (their
  # JSON): each compiles once.
  _runs: dict = dataclasses.field(default_factory=dict, repr=False)
  _likelihoods: dict = dataclasses.field(default_factory=dict, repr=False)

  @functools.cached_property
  def _parts(self):
    """(sde, score model, EMA params, DataParallel) of the newest checkpoint, loaded once."""
    parallel = DataParallel.over_all_devices()
    sde = build.build_sde(self.config)
    score_model = build.build_score_model(self.config, sde)
    params = build.load_score_params(self.config, self.workdir, score_model, parallel.replicated)
    return sde, score_model, params, parallel

  def settings(self, **sampling) -> ml_collections.ConfigDict:
    """The config with config.sampling keys overridden (dotted below sampling)."""
    return configs.with_overrides(self.config, {f"sampling.{k}": v for k, v in sampling.items()})

  def sample_arrays(self, n: int, **sampling) -> dict:
    """The arrays --mode=sample writes (samples, nfe, failed; labels, observations, inputs,
    masks where they apply) for n samples of config.sampling with `sampling` overrides, drawn
    exactly as --mode=sample draws them; the sampler compiles once per settings."""
    config = self.settings(num_samples=n, **sampling)
    key = config.sampling.to_json_best_effort(sort_keys=True)
    if key not in self._runs:
      self._runs[key] = sample.prepare(config, self.workdir, score_params=self._parts[2])
    return sample.draw(self._runs[key], progress=False)[0]

  def sample(self, n: int, **sampling) -> np.ndarray:
    """n samples (n, ...) (inverse tasks: (K, S, ...)) of sample_arrays."""
    return self.sample_arrays(n, **sampling)["samples"]

  def likelihood_arrays(self, x, **evaluation) -> dict:
    """{"logp": (N,) nats, "nfe": (N,)} of model-space x (N, ...) by config.eval's route with
    `evaluation` overrides (likelihood: ode, or the bounds elbo / elbo_discrete, whose logp is
    the ELBO; trace_estimator, rtol, atol, eps, elbo_draws), as --mode=likelihood computes them
    (bits/dim: samplers.bits_per_dim); compiles once per settings."""
    config = configs.with_overrides(self.config, {f"eval.{k}": v for k, v in evaluation.items()})
    sde, score_model, params, parallel = self._parts
    key = config.eval.to_json_best_effort(sort_keys=True)
    if key not in self._likelihoods:
      self._likelihoods[key] = jax.jit(
          likelihood.make_log_likelihood(config, sde, score_model),
          in_shardings=(parallel.replicated, parallel.batch, parallel.batch))
    fn, x = self._likelihoods[key], np.asarray(x, np.float32)
    rows = lambda idx: (x[np.minimum(idx, len(x) - 1)], idx.astype(np.int32))
    logp, nfe = map_global_batches(lambda v, idx: fn(params, v, idx), len(x),
                                   config.eval.batch_size, parallel, rows, "likelihood",
                                   progress=False, batch_key="eval.batch_size")
    return {"logp": logp, "nfe": nfe}

  def likelihood(self, x, **evaluation) -> np.ndarray:
    """log p(x) (N,) in nats of likelihood_arrays."""
    return self.likelihood_arrays(x, **evaluation)["logp"]

  def model_fns(self) -> samplers.ModelFns:
    """Score, denoiser and SDE of the loaded parameters (samplers.ModelFns)."""
    sde, score_model, params, _ = self._parts
    return build.model_fns(sde, score_model, params)

  def score(self, x, t) -> np.ndarray:
    """grad_x log p_t(x): x (N, ...), t (N,) -> (N, ...)."""
    return np.asarray(jax.jit(self.model_fns().score)(x, t))

  def denoise(self, x, t) -> np.ndarray:
    """D(x, t) = E[x0 | x(t) = x] (Tweedie): x (N, ...), t (N,) -> (N, ...)."""
    return np.asarray(jax.jit(self.model_fns().denoise)(x, t))


def load(workdir_or_config, workdir=None, **overrides) -> Model:
  """A Model from a workdir (the config it recorded, its checkpoints), a config spec
  ('configs/digits.py:vpsde') or a ConfigDict, with `overrides` {"training.batch_size": 64, ...}.
  workdir: where the checkpoints are, when the first argument is a config."""
  if isinstance(workdir_or_config, ml_collections.ConfigDict):
    config = configs.with_overrides(workdir_or_config, overrides)
  else:
    config = configs.load_config(str(workdir_or_config), overrides)
    if workdir is None and pathlib.Path(workdir_or_config).is_dir():
      workdir = workdir_or_config
  build.check_config(config)
  return Model(config, pathlib.Path(workdir if workdir is not None else "."))
