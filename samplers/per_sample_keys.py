"""Per-sample keys: randomness that does not depend on batch size or device count
(ARCHITECTURE.md, principle 8).

Sample j owns the key fold_in(base_key, j); the noise it sees at step s is drawn from
fold_in(key_j, s). So sample j is the same whether it is drawn alone, in a batch of 8 or
sharded over devices, and a long sampling job can be split or resumed.
"""
import jax


def sample_keys(base_key: jax.Array, indices: jax.Array) -> jax.Array:
  """Per-sample keys from global sample indices: (B,) int -> (B, key)."""
  return jax.vmap(lambda i: jax.random.fold_in(base_key, i))(indices)


def step_keys(keys: jax.Array, step) -> jax.Array:
  """Each sample's key for step `step` (an int or a traced scalar): (B, key) -> (B, key)."""
  return jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)


def per_sample_normal(keys: jax.Array, step, shape: tuple) -> jax.Array:
  """Standard normal noise (B, *shape), sample j drawn from fold_in(keys[j], step)."""
  return jax.vmap(lambda k: jax.random.normal(k, shape))(step_keys(keys, step))


def per_sample_uniform(keys: jax.Array, step) -> jax.Array:
  """U[0, 1) draws (B,), sample j drawn from fold_in(keys[j], step)."""
  return jax.vmap(lambda k: jax.random.uniform(k))(step_keys(keys, step))


def per_sample_prior(sde, keys: jax.Array, step, shape: tuple) -> jax.Array:
  """Prior samples x_T ~ p_T (B, *shape), sample j drawn from fold_in(keys[j], step)."""
  draw = lambda k: sde.prior_sampling(k, (1,) + tuple(shape))[0]
  return jax.vmap(draw)(step_keys(keys, step))
