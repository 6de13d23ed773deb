"""The typed boundary: config sections -> SDE, data, score model, loss, optimizer, sampler.

Library packages take plain arguments; this module is the one place that reads configs.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

import configs
import data_sources
import models
import samplers
import sde_lib
from training import checkpoints, losses
from training.state import create_train_state, make_optimizer

RNG_STREAMS = {"train": 0, "sample": 1, "likelihood": 2}


def check_config(config) -> None:
  """Rejects keys of an older layout (configs.MOVED_KEYS) with the name of the new key."""
  configs.check_moved_keys(configs.flat_keys(config))


def stream_key(config, purpose: str) -> jax.Array:
  """The base key of one purpose (RNG_STREAMS), so streams never share keys."""
  return jax.random.fold_in(jax.random.key(config.seed), RNG_STREAMS[purpose])


# --- SDE and data ---------------------------------------------------------------------------

def build_sde(config) -> sde_lib.SDE:
  s = config.sde
  if s.name in ("vesde", "edm"):
    return sde_lib.get_sde(s.name, sigma_min=s.sigma_min, sigma_max=s.sigma_max, N=s.num_scales)
  return sde_lib.get_sde(s.name, beta_min=s.beta_min, beta_max=s.beta_max, N=s.num_scales)


def build_mixture(data_config) -> data_sources.GaussianMixture:
  return data_sources.GaussianMixture(
      weights=tuple(data_config.gmm_weights), means=tuple(map(tuple, data_config.gmm_means)),
      covs=tuple(tuple(map(tuple, c)) for c in data_config.gmm_covs))


def _mixture_or_none(data_config):
  return build_mixture(data_config) if data_config.dataset == "gmm" else None


def data_info(config) -> data_sources.DataInfo:
  d = config.data
  return data_sources.data_info(d.dataset, image_size=d.get("image_size", 0),
                                num_channels=d.get("num_channels", 0), mixture=_mixture_or_none(d))


def load_split(config, split: str):
  """The split `split` of config.data's dataset as an indexable source."""
  d = config.data
  if data_sources.is_low_dimensional(d.dataset):
    return data_sources.load_split(d.dataset, split, data_seed=d.data_seed,
                                   num_examples=d.num_train if split == "train" else d.num_test,
                                   mixture=_mixture_or_none(d))
  return data_sources.load_split(d.dataset, split, image_size=d.image_size,
                                 data_dir=d.get("data_dir", ""))


def example_batch(config, batch_size: int = 1):
  """Zeros shaped like a batch of data: (batch_size, ...)."""
  return jnp.zeros((batch_size, *data_info(config).shape), jnp.float32)


# --- models --------------------------------------------------------------------------------

def build_network(model_config, **data_kwargs):
  """Network `model_config.name` built from the config keys that are its fields.

  data_kwargs (e.g. centered) fill fields the model section does not hold.
  """
  cls = models.get_network_class(model_config.name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  kwargs = {k: v for k, v in data_kwargs.items() if k in fields}
  for key in fields & set(model_config.keys()):
    value = model_config[key]
    kwargs[key] = tuple(value) if isinstance(value, list) else value
  return cls(**kwargs)


def build_parameterization(config, sde):
  """models.PARAMETERIZATIONS[model.parameterization] ('score_sde': the released convention)."""
  m = config.model
  name = models.parameterization_name(m.parameterization, config.sde.name,
                                      config.training.continuous)
  if name == "edm" and m.get("embedding_type", "positional") != "positional":
    raise ValueError("model.parameterization='edm' feeds the network c_noise = ln(sigma) / 4; set "
                     "model.embedding_type='positional' (the 'fourier' embedding takes log(label)).")
  if name.startswith("ve_"):
    return models.PARAMETERIZATIONS[name](sde, scale_by_sigma=m.scale_by_sigma)
  if name == "edm":
    return models.EDM(sde, sigma_data=m.sigma_data)
  return models.PARAMETERIZATIONS[name](sde)


def build_score_model(config, sde: sde_lib.SDE):
  """NetworkScore for a network name, AnalyticGMMScore for `gmm_analytic`."""
  if config.model.name == models.ANALYTIC:
    if config.data.dataset != "gmm":
      raise ValueError("model.name='gmm_analytic' is the exact score of data.dataset='gmm'; "
                       f"got data.dataset={config.data.dataset!r}.")
    return models.AnalyticGMMScore(sde, build_mixture(config.data))
  network = build_network(config.model, centered=config.data.centered)
  return models.NetworkScore(sde, network, build_parameterization(config, sde))


# --- training ------------------------------------------------------------------------------

def build_loss(config, sde, score_model):
  t = config.training
  if t.loss == "edm":
    return losses.edm_loss(sde, score_model, reduce_mean=t.reduce_mean,
                           sigma_data=config.model.sigma_data, p_mean=t.edm_p_mean,
                           p_std=t.edm_p_std)
  if t.loss != "dsm":
    raise ValueError(f"Unknown training.loss {t.loss!r}; choose 'dsm' or 'edm'.")
  if t.continuous:
    return losses.continuous_dsm_loss(sde, score_model, reduce_mean=t.reduce_mean,
                                      likelihood_weighting=t.likelihood_weighting, eps=t.eps)
  if t.likelihood_weighting:
    raise ValueError("likelihood_weighting needs continuous training (training.continuous=True).")
  return losses.discrete_dsm_loss(sde, score_model, reduce_mean=t.reduce_mean)


def build_optimizer(config):
  o = config.optim
  return make_optimizer(optimizer=o.optimizer, lr=o.lr, warmup=o.warmup, beta1=o.beta1, eps=o.eps,
                        weight_decay=o.weight_decay, grad_clip=o.grad_clip)


def state_initializer(config, score_model, optimizer):
  """key -> TrainState with freshly initialised params."""
  example = example_batch(config)
  return lambda key: create_train_state(score_model.init(key, example), optimizer)


def load_score_params(config, workdir, score_model, sharding):
  """EMA params of the newest checkpoint in workdir, placed with `sharding` ({} for analytic)."""
  if config.model.name == models.ANALYTIC:
    return {}
  manager = checkpoints.require_checkpoint(workdir)
  init = state_initializer(config, score_model, build_optimizer(config))
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                          jax.eval_shape(init, jax.random.key(0)))
  state = checkpoints.restore_latest(manager, abstract)
  manager.close()
  return state.ema_params


# --- sampling ------------------------------------------------------------------------------

def model_fns(sde, score_model, params) -> samplers.ModelFns:
  return samplers.ModelFns(sde, functools.partial(score_model.score, params))


def solver_options(config, sde) -> dict:
  """The keyword arguments of samplers.SOLVERS[sampling.method] from config.sampling."""
  s = config.sampling
  churn = dict(s_churn=s.s_churn, s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise,
               denoise=s.noise_removal)
  multistep = dict(lower_order_final=s.lower_order_final, denoise=s.noise_removal)
  options = {
      "pc": dict(predictor=s.predictor, corrector=s.corrector, snr=s.snr, n_steps=s.n_steps_each,
                 probability_flow=s.probability_flow, denoise=s.noise_removal,
                 # The released tables go with the uniform grid of the SDE's N steps.
                 use_tables=s.grid == "uniform" and s.num_steps == sde.N),
      "ode": dict(rtol=s.rtol, atol=s.atol, method=s.ode_solver, eps=s.eps,
                  denoise=s.noise_removal, whole_batch=s.ode_whole_batch),
      "ddim": dict(eta=s.eta, denoise=s.noise_removal),
      "heun": churn,
      "euler": churn,
      "dpm_solver_2m": multistep,
      "dpm_solver_3m": multistep,
      "dpm_solver_sde_2m": multistep,
      "unipc": dict(order=s.solver_order, **multistep),
  }
  samplers.get_solver(s.method)
  return options[s.method]


def build_sampler(config, sde, score_model):
  """(params, keys (B, key)) -> (samples (B, ...), nfe (B,) int32) for config.sampling."""
  s = config.sampling
  solver = samplers.get_solver(s.method)
  options = solver_options(config, sde)
  times = samplers.make_grid(sde, s.grid, s.num_steps, s.eps, s.grid_rho) if solver.uses_grid else None
  shape = data_info(config).shape

  def sample_fn(params, keys):
    x, nfe = solver.sample(model_fns(sde, score_model, params), times, keys, shape, **options)
    return x, jnp.broadcast_to(jnp.asarray(nfe, jnp.int32), (keys.shape[0],))

  return sample_fn
