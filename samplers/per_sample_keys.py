"""Per-sample keys: randomness that does not depend on batch size or device count
(docs/design.md, principle 3).

Sample j owns the key fold_in(base_key, j); the noise it sees at step s is drawn from
fold_in(key_j, s). So sample j is the same whether it is drawn alone, in a batch of 8 or
sharded over devices, and a long sampling job can be split or resumed.

For jax's default threefry keys the per-step functions compute exactly jax.random's values with
the hash unrolled (samplers.threefry), which XLA:CPU fuses into the step instead of running two
rolled loops per step; other keys (raw uint32 keys, other PRNG implementations) go through
jax.random itself.
"""
import jax

from samplers import threefry


def _threefry_data(keys: jax.Array):
  """The (B, 2) uint32 data of typed threefry keys that samplers.threefry reproduces, else None."""
  if (jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
      and str(jax.random.key_impl(keys)) == "threefry2x32"
      and jax.config.jax_threefry_partitionable):
    return jax.random.key_data(keys)
  return None


def sample_keys(base_key: jax.Array, indices: jax.Array) -> jax.Array:
  """Per-sample keys from global sample indices: (B,) int -> (B, key)."""
  return jax.vmap(lambda i: jax.random.fold_in(base_key, i))(indices)


def step_keys(keys: jax.Array, step) -> jax.Array:
  """Each sample's key for step `step` (an int or a traced scalar): (B, key) -> (B, key)."""
  data = _threefry_data(keys)
  if data is None:
    return jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
  return jax.random.wrap_key_data(threefry.fold_in(data, step), impl=jax.random.key_impl(keys))


def per_sample_normal(keys: jax.Array, step, shape: tuple) -> jax.Array:
  """Standard normal noise (B, *shape), sample j drawn from fold_in(keys[j], step)."""
  data = _threefry_data(keys)
  if data is None:
    return jax.vmap(lambda k: jax.random.normal(k, shape))(step_keys(keys, step))
  return threefry.normal(threefry.fold_in(data, step), tuple(shape))


def per_sample_uniform(keys: jax.Array, step) -> jax.Array:
  """U[0, 1) draws (B,), sample j drawn from fold_in(keys[j], step)."""
  data = _threefry_data(keys)
  if data is None:
    return jax.vmap(lambda k: jax.random.uniform(k))(step_keys(keys, step))
  return threefry.uniform(threefry.fold_in(data, step), ())


def per_sample_prior(sde, keys: jax.Array, step, shape: tuple) -> jax.Array:
  """Prior samples x_T ~ p_T (B, *shape), sample j drawn from fold_in(keys[j], step)."""
  draw = lambda k: sde.prior_sampling(k, (1,) + tuple(shape))[0]
  return jax.vmap(draw)(step_keys(keys, step))
