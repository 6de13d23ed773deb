"""The typed boundary: config sections -> SDE, score model, loss, optimizer (plain objects)."""
import jax
import jax.numpy as jnp

import data_sources
import models
import sde_lib
from training import checkpoints, losses
from training.state import create_train_state, make_optimizer


RNG_STREAMS = {"train": 0, "sample": 1, "likelihood": 2}


def stream_key(config, purpose: str) -> jax.Array:
  """The base key of one purpose (RNG_STREAMS), so streams never share keys."""
  return jax.random.fold_in(jax.random.key(config.seed), RNG_STREAMS[purpose])


def build_sde(config) -> sde_lib.SDE:
  return sde_lib.sde_from_config(config.model, config.training.sde)


def build_score_model(config, sde: sde_lib.SDE):
  """NetworkScore for a network name, AnalyticGMMScore for `gmm_analytic`."""
  if config.model.name == models.ANALYTIC:
    if config.data.dataset != "gmm":
      raise ValueError("model.name='gmm_analytic' is the exact score of data.dataset='gmm'; "
                       f"got data.dataset={config.data.dataset!r}.")
    return models.AnalyticGMMScore(sde, data_sources.mixture_from_config(config.data))
  network = models.network_from_config(config.model, centered=config.data.centered)
  return models.NetworkScore(sde, network, continuous=config.training.continuous,
                             scale_by_sigma=config.model.scale_by_sigma)


def build_loss(config, sde, score_model):
  t = config.training
  return losses.get_loss_fn(sde, score_model, continuous=t.continuous, reduce_mean=t.reduce_mean,
                            likelihood_weighting=t.likelihood_weighting, eps=t.eps)


def build_optimizer(config):
  o = config.optim
  return make_optimizer(optimizer=o.optimizer, lr=o.lr, warmup=o.warmup, beta1=o.beta1, eps=o.eps,
                        weight_decay=o.weight_decay, grad_clip=o.grad_clip)


def example_batch(config, batch_size: int = 1):
  """Zeros shaped like a batch of data: (batch_size, ...)."""
  return jnp.zeros((batch_size, *data_sources.data_info(config.data).shape), jnp.float32)


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
