"""jax.random's default generator (Threefry-2x32: Salmon et al. 2011, "Parallel Random Numbers: As
Easy as 1, 2, 3", 20 rounds) written out in jnp, for the noise that samplers draw at every step.

jax lowers its threefry hash on CPU as a rolled loop of 5 iterations (jax/_src/random/
threefry2x32.py, `use_rolled_loops=True`, to save compile time). Inside a sampler's scan that is
two nested while loops per step (fold_in, then the bits), each iteration a few tiny kernels.
Unrolled here, the 20 rounds fuse into the step's elementwise kernel: per step, 3.8 us instead
of 13.9 us for 256 two-dimensional samples, 1.2 ms instead of 1.8 ms for 64 of 3 x 32 x 32
(benchmarks/sampler_overhead.py, 2 CPU cores). The results are jax.random's bit for bit under
its default `jax_threefry_partitionable=True` (tests/test_samplers.py compares them):

  fold_in(key, d)     = hash_key(0, d) for a uint32 d;
  bits(key, shape)    = for each flat index i, the two words of hash_key(0, i), XORed (32-bit)
                        or concatenated high | low (64-bit);
  uniform, normal     = jax.random.uniform's mantissa map of the bits, and normal as
                        sqrt(2) erfinv(uniform on [nextafter(-1, 0), 1)).
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = np.uint32(0x1BD11BDA)


def threefry_2x32(k0, k1, x0, x1):
  """The hash of the counter words (x0, x1) under the key words (k0, k1), uint32 arrays that
  broadcast together: two uint32 arrays (jax's threefry2x32 primitive)."""
  ks = (k0, k1, k0 ^ k1 ^ _KEY_PARITY)
  x0, x1 = x0 + ks[0], x1 + ks[1]
  for i in range(5):  # 5 x 4 rounds, the key injected after each 4
    for r in _ROTATIONS[i % 2]:
      x0 = x0 + x1
      x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0
    x0 = x0 + ks[(i + 1) % 3]
    x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
  return x0, x1


@jax.jit
def fold_in(key_data, data):
  """jax.random.fold_in of threefry key data (..., 2) uint32 with an integer scalar: (..., 2)."""
  k0, k1 = threefry_2x32(key_data[..., 0], key_data[..., 1], np.uint32(0),
                         jnp.asarray(data).astype(jnp.uint32))
  return jnp.stack([k0, k1], axis=-1)


def _bits(key_data, shape: tuple, width: int):
  """jax.random.bits of each key (..., 2): (..., *shape) of uint`width` (32 or 64)."""
  size = key_data.shape[:-1] + (math.prod(shape),)
  index = jax.lax.broadcasted_iota(jnp.uint32, size, len(size) - 1)
  k0, k1 = (jnp.broadcast_to(key_data[..., i, None], size) for i in (0, 1))
  hi, lo = threefry_2x32(k0, k1, np.uint32(0), index)
  if width == 32:
    bits = hi ^ lo
  else:
    bits = (hi.astype(jnp.uint64) << np.uint64(32)) | lo.astype(jnp.uint64)
  return bits.reshape(key_data.shape[:-1] + tuple(shape))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def uniform(key_data, shape: tuple, minval: float = 0.0, maxval: float = 1.0):
  """jax.random.uniform(key, shape, minval=, maxval=) of each key (..., 2) in the default float
  dtype: (..., *shape)."""
  dtype = jnp.result_type(float)
  info = jnp.finfo(dtype)
  uint = jnp.uint32 if info.bits == 32 else jnp.uint64
  minval, maxval = np.asarray(minval, dtype), np.asarray(maxval, dtype)
  mantissa = _bits(key_data, shape, info.bits) >> uint(info.bits - info.nmant)
  one = np.array(1.0, dtype).view(uint)
  floats = jax.lax.bitcast_convert_type(mantissa | one, dtype) - np.array(1.0, dtype)
  return jnp.maximum(minval, floats * (maxval - minval) + minval)


@functools.partial(jax.jit, static_argnums=1)
def normal(key_data, shape: tuple):
  """jax.random.normal(key, shape) of each key (..., 2) in the default float dtype."""
  dtype = jnp.result_type(float)
  lowest = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
  return np.array(np.sqrt(2), dtype) * jax.lax.erf_inv(uniform(key_data, shape, float(lowest)))
