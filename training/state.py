"""The train state pytree (params, optimizer state, EMA params, step) and the optimizer."""
import flax.struct
import jax
import jax.numpy as jnp
import optax

from configs.errors import UserError


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  opt_state: optax.OptState
  ema_params: dict


def lr_schedule(lr: float, warmup: int):
  """Linear warm-up from 0 to `lr` over `warmup` steps, then constant: step -> learning rate."""
  return optax.linear_schedule(0.0, lr, warmup) if warmup > 0 else optax.constant_schedule(lr)


def make_optimizer(*, optimizer: str, lr: float, warmup: int, beta1: float, eps: float,
                   weight_decay: float, grad_clip: float) -> optax.GradientTransformation:
  """Adam(W) on lr_schedule(lr, warmup) with optional global-norm clipping."""
  schedule = lr_schedule(lr, warmup) if warmup > 0 else lr
  if optimizer == "adam":
    opt = optax.adam(schedule, b1=beta1, eps=eps)
  elif optimizer == "adamw":
    opt = optax.adamw(schedule, b1=beta1, eps=eps, weight_decay=weight_decay)
  else:
    raise UserError(f"Unknown optimizer {optimizer!r}; choose 'adam' or 'adamw'.")
  return optax.chain(optax.clip_by_global_norm(grad_clip), opt) if grad_clip >= 0 else opt


def create_train_state(params, optimizer: optax.GradientTransformation) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                    ema_params=jax.tree.map(jnp.copy, params))
