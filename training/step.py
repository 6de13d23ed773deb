"""One optimisation step (or several fused in a lax.scan) as a pure function of the train state."""
import jax
import jax.numpy as jnp
import optax

from training.state import TrainState


def make_train_step(loss_fn, optimizer: optax.GradientTransformation, ema_rate: float):
  """Returns step(state, batch (B, ...), base_key) -> (state, metrics).

  The step's randomness is fold_in(base_key, state.step), so it does not depend on how steps are
  grouped into calls or on restarts.
  """

  def step(state: TrainState, batch, base_key):
    rng = jax.random.fold_in(base_key, state.step)
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, rng)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optax.incremental_update(params, state.ema_params, step_size=1.0 - ema_rate)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema)
    return new_state, {"loss": loss, "grad_norm": optax.global_norm(grads)}

  return step


def fuse_steps(step_fn):
  """step over a stack of batches (K, B, ...) in one lax.scan; metrics averaged over the K steps.

  On XLA:CPU a scanned conv-net step can be much slower than K separate calls: measure first.
  """

  def fused(state, batches, base_key):
    state, metrics = jax.lax.scan(lambda s, b: step_fn(s, b, base_key), state, batches)
    return state, jax.tree.map(jnp.mean, metrics)

  return fused
