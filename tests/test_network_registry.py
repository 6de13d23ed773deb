"""Every models.NETWORKS entry, built from config.model keys by workflows.build.build_network:
output shape and dtype equal the input's, and each example's output depends on that example
only. A new network fails here until it has its tiny settings in TINY."""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from models import NETWORKS
from workflows.build import build_network

# name -> (config.model keys of a tiny instance, input shape (B, ...), noise inputs (B,))
SIGMAS, INDICES = (0.5, 20.0), (1.0, 7.0)
TINY = {
    "mlp": (dict(nf=16, num_layers=2, embedding_type="fourier"), (2, 3), SIGMAS),
    "ncsnpp": (dict(nf=8, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[4]), (2, 8, 8, 3),
               SIGMAS),
    "ddpm": (dict(nf=8, ch_mult=[1, 2], attn_resolutions=[4]), (2, 8, 8, 1), (3.0, 900.0)),
    "ncsnv2": (dict(nf=4), (2, 8, 8, 3), SIGMAS),
    "ncsnv2_128": (dict(nf=4), (2, 16, 16, 1), SIGMAS),
    "ncsnv2_256": (dict(nf=4), (2, 16, 16, 3), SIGMAS),
    "ncsn": (dict(nf=4, num_classes=10), (2, 8, 8, 3), INDICES),
}


def tiny_network(name):
  assert name in TINY, f"add the tiny settings of network {name!r} to TINY"
  settings, shape, noise = TINY[name]
  return build_network(ml_collections.ConfigDict({"name": name, **settings})), shape, noise


def random_params(network, x, noise):
  """N(0, 0.1^2) parameters of the network's shapes (init is slow to compile)."""
  shapes = jax.eval_shape(functools.partial(network.init, jax.random.PRNGKey(0)), x, noise)
  leaves, treedef = jax.tree_util.tree_flatten(shapes)
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(scale=0.1, size=leaf.shape).astype(leaf.dtype) for leaf in leaves])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_config_keys_are_the_networks_fields_and_outputs_have_the_inputs_shape(name):
  network, shape, noise = tiny_network(name)
  for key, value in TINY[name][0].items():
    assert getattr(network, key) == (tuple(value) if isinstance(value, list) else value), key
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  params = jax.eval_shape(network.init, jax.random.PRNGKey(0), x, jnp.asarray(noise))
  out = jax.eval_shape(network.apply, params, x, jnp.asarray(noise))
  assert out.shape == shape and out.dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_each_examples_output_depends_on_that_example_only(name, compile_without_llvm_optimisation):
  network, shape, noise = tiny_network(name)
  x = jax.random.uniform(jax.random.PRNGKey(1), shape)
  params = random_params(network, x, jnp.asarray(noise))
  apply = jax.jit(network.apply)
  out = apply(params, x, jnp.asarray(noise))
  other = apply(params, x.at[1].set(1.0 - x[1]), jnp.asarray(noise[:1] * 2))  # one compilation
  np.testing.assert_allclose(other[0], out[0], rtol=1e-5, atol=1e-6)  # example 1 changed only
  assert np.all(np.isfinite(out)) and np.abs(other[1] - out[1]).max() > 1e-4
