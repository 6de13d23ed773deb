"""The typed boundary: config sections -> SDE, data, score model, loss, optimizer, sampler.

Library packages take plain arguments; this module is the one place that reads configs.
"""
import dataclasses
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import conditioning
import configs
import data_sources
import evaluation
import models
import samplers
import sde_lib
from configs.errors import UserError, config_keys
from training import checkpoints, losses
from training.state import create_train_state, lr_schedule, make_optimizer

RNG_STREAMS = {"train": 0, "sample": 1, "likelihood": 2, "schedule": 3, "ems": 4}


def section_keys(section: str):
  """Context in which library errors about argument `a` name the config key `section.a`."""
  return config_keys(lambda argument: f"{section}.{argument}")


def sampling_keys():
  """Context in which solver errors name their config.sampling key (ALIASES)."""
  return config_keys(lambda argument: "sampling." + samplers.solvers.CONFIG_KEY.get(argument,
                                                                                   argument))


def check_config(config) -> None:
  """Rejects keys of an older layout (configs.MOVED_KEYS), naming the new key, and unknown names
  of SDE, dataset, model, parameterisation, loss and samplers, listing the valid ones, before any
  work is done."""
  configs.check_moved_keys(configs.flat_keys(config))
  check_sizes(config)
  if config.sde.name not in sde_lib.SDES:
    raise UserError(f"Unknown sde.name {config.sde.name!r}; choose one of {sorted(sde_lib.SDES)}.")
  data_sources.check_dataset_name(config.data.dataset)
  if config.model.name not in models.EXACT_SCORES:
    models.get_network_class(config.model.name)
    with section_keys("model"):
      models.get_compute_dtype(config.model.get("dtype", "float32"))
      models.parameterization_name(config.model.parameterization, config.sde.name,
                                   config.training.continuous)
  if config.training.loss not in ("dsm", "edm"):
    raise UserError(f"Unknown training.loss {config.training.loss!r}; choose 'dsm' or 'edm'.")
  s = config.sampling
  samplers.get_solver(s.method), samplers.get_grid(s.grid), samplers.get_ode_solver(s.ode_solver)
  samplers.get_predictor(s.predictor), samplers.get_corrector(s.corrector)
  samplers.get_trace_estimator(config.eval.trace_estimator)
  if config.eval.features not in FEATURES:
    raise UserError(f"Unknown eval.features {config.eval.features!r}; choose one of "
                     f"{list(FEATURES)}.")
  check_class_conditional(config)


# Counts and sizes that must be at least 1 (or 0 where noted), checked before any work is done.
POSITIVE_KEYS = ("training.batch_size", "training.n_iters", "training.log_freq",
                 "training.snapshot_freq", "training.snapshot_freq_for_preemption",
                 "training.steps_per_call", "training.max_to_keep", "sampling.batch_size",
                 "sampling.num_samples", "sampling.num_steps", "eval.batch_size",
                 "eval.num_samples", "eval.num_generated", "eval.bpd_num_repeats",
                 "classifier.n_iters", "classifier.batch_size")
NON_NEGATIVE_KEYS = ("training.sample_freq", "eval.kid_examples", "eval.reference_examples",
                     "data.num_workers", "data.prefetch")


def check_sizes(config) -> None:
  """Every count and batch size in POSITIVE_KEYS is an integer >= 1 (NON_NEGATIVE_KEYS: >= 0)."""
  for keys, least in ((POSITIVE_KEYS, 1), (NON_NEGATIVE_KEYS, 0)):
    for key in keys:
      section, name = key.split(".")
      if section not in config or name not in config[section]:
        continue
      value = config[section][name]
      if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise UserError(f"{key}={value!r} must be an integer >= {least}; set --config.{key}=N.")


def check_matches_workdir(config, workdir) -> None:
  """Raises if config differs from the config.json a run recorded in workdir at a key that
  defines the model (configs.model_keys), naming the key, both values and the flags that fix it.
  A workdir without config.json (new, or the analytic model's) passes."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    return
  try:
    recorded = json.loads(path.read_text(encoding="utf-8"))
  except ValueError as err:
    raise UserError(f"{path} is not valid JSON ({err}); restore it or use a new --workdir.") from None
  difference = configs.first_model_difference(config, recorded)
  if difference:
    key, value, saved = difference
    flag_value = ",".join(map(str, saved)) if isinstance(saved, list) else saved
    raise UserError(f"{key}={value!r}, but {workdir} was trained with {saved!r}: pass "
                    f"--config={workdir} (its config) or --config.{key}={flag_value}, or use a new "
                    "--workdir.")


def check_class_conditional(config) -> None:
  """A class-conditional network must take class labels, and a mixture has one class per
  component."""
  m, d = config.model, config.data
  if "mixture" in data_sources.get_dataset(d.dataset).args and d.num_classes != len(d.gmm_weights):
    raise UserError(f"data.num_classes={d.num_classes} but the mixture has "
                     f"{len(d.gmm_weights)} components (its labels); set "
                     f"--config.data.num_classes={len(d.gmm_weights)}.")
  if m.class_conditional and m.name in models.NETWORKS:
    cls = models.get_network_class(m.name)
    if "label_classes" not in {f.name for f in dataclasses.fields(cls)}:
      raise UserError(f"model.name={m.name!r} has no class-label input; model.class_conditional "
                       "needs one of 'ncsnpp', 'ddpm', 'mlp'.")


def batch_has_labels(config) -> bool:
  """Training batches carry "label" only for class-conditional score models."""
  return bool(config.model.class_conditional)


def stream_key(config, purpose: str) -> jax.Array:
  """The base key of one purpose (RNG_STREAMS), so streams never share keys."""
  return jax.random.fold_in(jax.random.key(config.seed), RNG_STREAMS[purpose])


# --- SDE and data ---------------------------------------------------------------------------

def build_sde(config) -> sde_lib.SDE:
  """sde_lib.SDES[sde.name] from the config.sde keys that are its fields."""
  return sde_lib.build_sde(config.sde.name, config.sde)


def build_mixture(data_config) -> data_sources.GaussianMixture:
  return data_sources.GaussianMixture(
      weights=tuple(data_config.gmm_weights), means=tuple(map(tuple, data_config.gmm_means)),
      covs=tuple(tuple(map(tuple, c)) for c in data_config.gmm_covs))


def dataset_args(data_config, split: str = "train") -> dict:
  """The keyword arguments config.data's dataset takes (its Dataset.args) for `split`: the data
  keys of the same name, num_examples (num_train | num_test) and the mixture (gmm_*)."""
  d = data_config
  derived = {"num_examples": lambda: d.num_train if split == "train" else d.num_test,
             "mixture": lambda: build_mixture(d)}
  return {name: derived[name]() if name in derived else d[name]
          for name in data_sources.get_dataset(d.dataset).args}


def data_info(config) -> data_sources.DataInfo:
  return data_sources.data_info(config.data.dataset, **dataset_args(config.data))


@section_keys("data")
def load_split(config, split: str):
  """The split `split` of config.data's dataset as an indexable source."""
  return data_sources.load_split(config.data.dataset, split, **dataset_args(config.data, split))


def model_space_examples(config, split: str, count: int) -> np.ndarray:
  """The first `count` examples (at most all) of `split`, as the model sees them (no
  dequantisation)."""
  source = load_split(config, split)
  return data_sources.preprocess(source[np.arange(min(count, len(source)))],
                                 is_image=data_info(config).is_image,
                                 centered=config.data.centered, uniform_dequantization=False)


@section_keys("data")
def image_source(config, split: str):
  """Per-example source {"image", "label"} of config.data's image set (data_sources.image_source)."""
  return data_sources.image_source(config.data.dataset, split, **dataset_args(config.data, split))


@section_keys("data")
def load_labels(config, split: str):
  """Class labels (N,) int32 of load_split(config, split), in its order."""
  return data_sources.load_labels(config.data.dataset, split, **dataset_args(config.data, split))


@section_keys("data")
def build_train_input(config, process_index: int = 0, process_count: int = 1,
                      labels: bool = False):
  """This host's training batches {"image": (B / process_count, ...), ...} with get/set_state
  (data_sources.train_batches; with `labels`: also "label" (B / process_count,))."""
  d = config.data
  augment = data_sources.transforms.Augment(centered=d.centered, random_flip=d.random_flip,
                                            uniform_dequantization=d.uniform_dequantization)
  return data_sources.train_batches(
      d.dataset, labels=labels, augment=augment, seed=config.seed,
      global_batch=config.training.batch_size, process_index=process_index,
      process_count=process_count, num_workers=d.num_workers, prefetch=d.prefetch,
      **dataset_args(d, "train"))


def example_batch(config, batch_size: int = 1):
  """Zeros shaped like a batch of data: (batch_size, ...)."""
  return jnp.zeros((batch_size, *data_info(config).shape), jnp.float32)


# --- models --------------------------------------------------------------------------------

@section_keys("model")
def build_network(model_config, **data_kwargs):
  """Network `model_config.name` built from the config keys that are its fields.

  data_kwargs (e.g. centered, remat) fill fields the model section does not hold; model.dtype
  ('float32' | 'bfloat16', models.COMPUTE_DTYPES) becomes the network's computation dtype.
  """
  cls = models.get_network_class(model_config.name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  kwargs = {k: v for k, v in data_kwargs.items() if k in fields}
  for key in fields & set(model_config.keys()):
    value = model_config[key]
    kwargs[key] = tuple(value) if isinstance(value, list) else value
  if "dtype" in model_config:
    dtype = models.get_compute_dtype(model_config.dtype)
    if "dtype" in fields:
      kwargs["dtype"] = dtype
    elif dtype != jnp.float32:
      raise UserError(f"model.name={model_config.name!r} computes in float32 only; set "
                       "model.dtype='float32'.")
  if data_kwargs.get("remat") and "remat" not in fields:
    raise UserError(f"model.name={model_config.name!r} has no residual blocks to recompute; set "
                     "training.remat=False.")
  return cls(**kwargs)


@section_keys("model")
def build_parameterization(config, sde):
  """models.PARAMETERIZATIONS[model.parameterization] ('score_sde': the released convention)."""
  m = config.model
  name = models.parameterization_name(m.parameterization, config.sde.name,
                                      config.training.continuous)
  cls = models.PARAMETERIZATIONS[name]
  embedding = cls.network_embedding
  if embedding and m.get("embedding_type", embedding) != embedding:
    raise UserError(f"model.parameterization={name!r} feeds the network c_noise that needs the "
                    f"{embedding!r} embedding; set model.embedding_type={embedding!r}.")
  fields = {f.name for f in dataclasses.fields(cls)} - {"sde"}
  return cls(sde, **{k: m[k] for k in fields if k in m})


def exact_mixture(config, key: str) -> data_sources.GaussianMixture:
  """The mixture of config.data, whose exact model config's `key` (e.g. model.name) names."""
  if "mixture" not in data_sources.get_dataset(config.data.dataset).args:
    raise UserError(f"{key}={config[key.split('.')[0]].name!r} is the exact model of a Gaussian "
                    f"mixture (data.dataset='gmm'); got data.dataset={config.data.dataset!r}.")
  return build_mixture(config.data)


def build_score_model(config, sde: sde_lib.SDE):
  """models.NetworkScore of network model.name, or the exact model models.EXACT_SCORES[model.name]
  of the data's mixture (class-conditional with model.class_conditional)."""
  m = config.model
  if m.name in models.EXACT_SCORES:
    return models.EXACT_SCORES[m.name](sde, exact_mixture(config, "model.name"),
                                       m.class_conditional)
  label_classes = config.data.num_classes if config.model.class_conditional else 0
  network = build_network(config.model, centered=config.data.centered,
                          label_classes=label_classes,
                          remat=config.training.get("remat", False))
  return models.NetworkScore(sde, network, build_parameterization(config, sde))


# --- training ------------------------------------------------------------------------------

def build_loss(config, sde, score_model):
  t = config.training
  if not 0.0 <= t.label_dropout < 1.0:
    raise UserError(f"training.label_dropout={t.label_dropout} must lie in [0, 1).")
  cond = dict(label_dropout=t.label_dropout, label_classes=config.data.num_classes)
  if t.loss == "edm":
    return losses.edm_loss(sde, score_model, reduce_mean=t.reduce_mean,
                           sigma_data=config.model.sigma_data, p_mean=t.edm_p_mean,
                           p_std=t.edm_p_std, **cond)
  if t.likelihood_weighting and t.output_weighting:
    raise UserError("training.likelihood_weighting and training.output_weighting are two "
                    "weightings of the DSM loss; set one of them.")
  if t.importance_sampling and not (t.likelihood_weighting and t.continuous):
    raise UserError("training.importance_sampling draws t for the likelihood weighting: set "
                    "training.likelihood_weighting=True (continuous training) or turn it off.")
  if t.continuous:
    return losses.continuous_dsm_loss(sde, score_model, reduce_mean=t.reduce_mean,
                                      likelihood_weighting=t.likelihood_weighting, eps=t.eps,
                                      output_weighting=t.output_weighting,
                                      importance_sampling=t.importance_sampling, **cond)
  if t.output_weighting:
    raise UserError("output_weighting needs continuous training (training.continuous=True).")
  if t.likelihood_weighting:
    raise UserError("likelihood_weighting needs continuous training (training.continuous=True).")
  return losses.discrete_dsm_loss(sde, score_model, reduce_mean=t.reduce_mean, **cond)


def build_lr_schedule(config):
  return lr_schedule(config.optim.lr, config.optim.warmup)


def build_optimizer(config):
  o = config.optim
  return make_optimizer(optimizer=o.optimizer, lr=o.lr, warmup=o.warmup, beta1=o.beta1, eps=o.eps,
                        weight_decay=o.weight_decay, grad_clip=o.grad_clip)


def state_initializer(config, score_model, optimizer):
  """key -> TrainState with freshly initialised params."""
  example = example_batch(config)

  @section_keys("model")
  def init(key):
    return create_train_state(score_model.init(key, example), optimizer)

  return init


def load_score_params(config, workdir, score_model, sharding, step: int | None = None):
  """EMA params of checkpoint `step` (default: the newest) in workdir, placed with `sharding`
  ({} for a model without parameters)."""
  if not score_model.has_parameters:
    return {}
  check_matches_workdir(config, workdir)
  manager = checkpoints.require_checkpoint(workdir)
  init = state_initializer(config, score_model, build_optimizer(config))
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                          jax.eval_shape(init, jax.random.key(0)))
  try:
    return checkpoints.restore_latest(manager, abstract, step).ema_params
  finally:
    manager.close()


def checkpoint_steps(config, workdir) -> list:
  """Steps of the kept checkpoints within [eval.begin_ckpt, eval.end_ckpt] (-1: no end); [0] for
  a model without parameters, which has none. Checks that config fits the workdir's model first."""
  if not build_score_model(config, build_sde(config)).has_parameters:
    return [0]
  check_matches_workdir(config, workdir)
  manager = checkpoints.require_checkpoint(workdir)
  steps = sorted(manager.all_steps())
  manager.close()
  end = config.eval.end_ckpt
  return [s for s in steps if s >= config.eval.begin_ckpt and (end < 0 or s <= end)]


# --- sampling ------------------------------------------------------------------------------

def model_fns(sde, score_model, params) -> samplers.ModelFns:
  return samplers.ModelFns(sde, functools.partial(score_model.score, params))


def check_solver_fits(name: str, conditions, score: bool = True) -> None:
  """One line where solver `name` cannot run the conditions (a projection on a solver without
  projections) or the model (a denoiser-only model on a solver that needs a score)."""
  solver = samplers.get_solver(name)
  if not solver.projects and any(c.projects for c in conditions):
    raise UserError(f"sampling.method={name!r} solves without a grid and cannot project the "
                    "state after each step (inpainting's replacement); use a grid solver (pc, "
                    "ddim, heun, dpm_solver_2m, ...) or posterior guidance (inverse.method=pigdm).")
  if solver.needs_score and not score:
    raise UserError(f"sampling.method={name!r} needs the model's score, and this model gives "
                    "only a denoiser; use a denoiser solver (heun, euler, ddim, dpm_solver_2m, "
                    "unipc).")


# sampling keys that may name a file of the workdir: (folder, suffix)
WORKDIR_FILES = {"grid_path": ("schedules", ".json"), "ems": ("ems", ".npz")}


def with_workdir_files(config, workdir):
  """config with sampling.grid_path (when sampling.grid is 'file') and sampling.ems given as a
  NAME (no folder, no suffix) read as the workdir's schedules/NAME.json and ems/NAME.npz."""
  s, overrides = config.sampling, {}
  for key, (folder, suffix) in WORKDIR_FILES.items():
    name = s[key] if key != "grid_path" or s.grid == "file" else ""
    if name and "/" not in name and not name.endswith(suffix):
      overrides[f"sampling.{key}"] = str(pathlib.Path(workdir) / folder / f"{name}{suffix}")
  return configs.with_overrides(config, overrides) if overrides else config


def sampling_times(config, sde):
  """The grid (num_steps,) of config.sampling, T to eps; errors name sampling.num_steps,
  sampling.eps or the grid's option sampling.grid_<option>."""
  s = config.sampling
  with config_keys(lambda a: f"sampling.{a}" if a in ("num_steps", "eps") else f"sampling.grid_{a}"):
    return samplers.make_grid(sde, s.grid, s.num_steps, s.eps, **samplers.grid_options(s.grid, s))


def build_sampler(config, sde, score_model, conditions=()):
  """(params {"score": ..., ...}, keys (B, key), data {"labels": (B,), "y": (B, ...), "latents":
  (B, ...)}, each optional) ->
  (samples (B, ...), nfe (B,) int32): samplers.SOLVERS[sampling.method] with the config.sampling
  keys its signature names, on the model with `conditions` (conditioning.Condition) applied in
  order. Solvers that solve each sample alone (the adaptive ODE) get each sample's data."""
  s = config.sampling
  solver = samplers.get_solver(s.method)
  options = samplers.solver_options(s.method, s)
  check_solver_fits(s.method, conditions)
  times = sampling_times(config, sde) if solver.uses_grid else None
  shape, condition = data_info(config).shape, conditioning.compose(conditions)

  def run(params, keys, data):
    fns = condition(model_fns(sde, score_model, params["score"]), params, data, keys)
    if "latents" in data:  # decode given latents (--mode=encode's) instead of prior draws
      fns = fns.with_start(lambda keys, shape: data["latents"])
    with sampling_keys():  # the solver checks its options as it is traced
      x, nfe = solver.sample(fns, times, keys, shape, **options)
    return x, jnp.broadcast_to(jnp.asarray(nfe, jnp.int32), (keys.shape[0],))

  if not (conditions and solver.solves_each_sample(options)):
    return run

  def each_sample(params, keys, data):
    one = lambda k, d: run(params, k[None], jax.tree.map(lambda v: v[None], d))
    return jax.tree.map(lambda v: v[:, 0], jax.vmap(one)(keys, data))

  return each_sample


# --- evaluation ----------------------------------------------------------------------------

FEATURES = ("identity", "digits", "inception")


def model_input_range(config) -> str:
  """How samples in model space are scaled, for the feature networks."""
  return "symmetric" if config.data.centered else "unit"


def feature_network(config, input_range: str, parallel=None):
  """(fn, embed) of eval.features: 'identity' (the points themselves: low-dimensional data),
  'digits' (the offline digits CNN) or 'inception' (the FID Inception-v3, weights from
  eval.inception_weights). fn: x (B, ...) numpy -> (features (B, F) float, logits (B, K) or
  None), jitted over `parallel`; embed: x (B, ...) jax -> features (B, F), differentiable in x
  (schedule.loss=features)."""
  name = config.eval.features
  if name == "identity":
    return (lambda x: (np.asarray(x, np.float64).reshape(len(x), -1), None),
            lambda x: x.reshape(x.shape[0], -1))
  if name == "digits":
    variables = evaluation.load_digits_net()
    fn = evaluation.make_digits_fn(variables, input_range, parallel)
    return (lambda x: tuple(fn(x)), lambda x: evaluation.DigitsNet().apply(
        variables, evaluation.digits_input(x, input_range)).features)
  if name == "inception":
    with config_keys({"path": "eval.inception_weights"}):
      variables = evaluation.load_inception_variables(config.eval.inception_weights or None)
    fn = evaluation.make_inception_fn(variables, input_range, parallel)
    return (lambda x: (lambda out: (out.pool, out.logits_unbiased))(fn(x)),
            lambda x: evaluation.FIDInceptionV3().apply(
                variables, evaluation.inception_input(x, input_range)).pool)
  raise UserError(f"Unknown eval.features {name!r}; choose one of {list(FEATURES)}.")


def build_feature_fn(config, input_range: str, parallel):
  """feature_network's numpy fn: x (B, ...) -> (features (B, F), logits (B, K) or None)."""
  return feature_network(config, input_range, parallel)[0]
