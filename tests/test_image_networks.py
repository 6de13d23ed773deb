"""NCSN++ / DDPM++ and DDPM networks: shapes, options, parameter counts."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from models.ddpm import DDPM
from models.ncsnpp import NCSNpp

TINY = dict(nf=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(4,))
SMALL = dict(nf=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,))

# Every value of every architectural option appears at least once.
COMBOS = [
    dict(resblock_type='biggan', progressive='none', progressive_input='residual',
         embedding_type='fourier', fir=True),
    dict(resblock_type='biggan', progressive='output_skip',
         progressive_input='input_skip', progressive_combine='sum',
         embedding_type='fourier', fir=True),
    dict(resblock_type='biggan', progressive='residual', progressive_input='none',
         embedding_type='positional', fir=False, nonlinearity='elu'),
    dict(resblock_type='biggan', progressive='output_skip',
         progressive_input='input_skip', progressive_combine='cat',
         embedding_type='positional', fir=False, skip_rescale=False),
    dict(resblock_type='ddpm', progressive='output_skip',
         progressive_input='input_skip', progressive_combine='cat',
         embedding_type='positional', fir=True, resamp_with_conv=False,
         nonlinearity='relu'),
    dict(resblock_type='ddpm', progressive='residual', progressive_input='residual',
         fir=False, conditional=False, nonlinearity='lrelu'),
    dict(resblock_type='ddpm', progressive='none', progressive_input='none',
         embedding_type='fourier', fir=False, resamp_with_conv=True),
]


def _inputs(batch=2, size=8, channels=3):
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(batch, size, size,
                                                         channels)), jnp.float32)
  return x, jnp.linspace(0.5, 20., batch)


@functools.lru_cache(maxsize=None)
def _abstract_init(model, size=32, channels=3):
  """(output, params) ShapeDtypeStructs of model.init_with_output; no compute.

  Cached: flax modules are hashable by their fields.
  """
  x = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
  labels = jax.ShapeDtypeStruct((1,), jnp.float32)
  return jax.eval_shape(
      functools.partial(model.init_with_output, jax.random.PRNGKey(0)), x,
      labels)


def _num_params(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))


def _flat_shapes(params):
  flat = traverse_util.flatten_dict(params['params'], sep='/')
  return {k: v.shape for k, v in flat.items()}


@pytest.mark.parametrize('index', range(len(COMBOS)))
def test_ncsnpp_output_shape(index):
  options, channels = COMBOS[index], 1 + 2 * (index % 2)
  out, params = _abstract_init(NCSNpp(**TINY, **options), size=8,
                               channels=channels)
  assert out.shape == (1, 8, 8, channels)
  assert ('GaussianFourierProjection_0' in params['params']) == (
      options.get('embedding_type', 'fourier') == 'fourier')


@pytest.mark.parametrize('field', ['resblock_type', 'progressive',
                                   'progressive_input', 'progressive_combine',
                                   'embedding_type'])
def test_ncsnpp_rejects_unknown_options(field):
  with pytest.raises(ValueError, match=field):
    _abstract_init(NCSNpp(**TINY, **{field: 'bogus'}), size=8)


def _random_params(model, x, labels, seed=0):
  """Random N(0, 0.1^2) parameters of model's shapes (init is slow to compile)."""
  _, shapes = jax.eval_shape(
      functools.partial(model.init_with_output, jax.random.PRNGKey(0)), x,
      labels)
  leaves, treedef = jax.tree_util.tree_flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(treedef, [
      rng.normal(scale=0.1, size=leaf.shape).astype(np.float32)
      for leaf in leaves])


@pytest.fixture(scope='module')
def tiny_ncsnpp():
  model = NCSNpp(**SMALL, dropout=0.5)
  x, sigmas = _inputs()
  params = _random_params(model, x, sigmas)
  apply = jax.jit(model.apply, static_argnames='train')
  return model, params, x, sigmas, apply


def test_ncsnpp_forward_and_dropout(tiny_ncsnpp):
  _, params, x, sigmas, apply = tiny_ncsnpp
  out = apply(params, x, sigmas)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(jnp.std(out)) > 1e-3
  train_out = apply(params, x, sigmas, train=True,
                    rngs={'dropout': jax.random.PRNGKey(1)})
  assert not np.allclose(train_out, out, rtol=1e-3, atol=1e-4)


def test_ncsnpp_centered_skips_input_rescaling(tiny_ncsnpp):
  model, params, x, sigmas, apply = tiny_ncsnpp
  centered = jax.jit(model.clone(centered=True).apply)
  np.testing.assert_allclose(centered(params, 2 * x - 1, sigmas),
                             apply(params, x, sigmas), rtol=1e-5, atol=1e-5)


def test_ddpm_forward():
  model = DDPM(nf=8, ch_mult=(1, 2), attn_resolutions=(4,), centered=True)
  x, _ = _inputs()
  t = jnp.asarray([3., 999.])
  params = _random_params(model, x, t)
  assert set(params['params']) >= {'Dense_0', 'Dense_1', 'AttnBlock_0',
                                   'Downsample_0', 'Upsample_0'}
  out = jax.jit(model.apply)(params, x, t)
  assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(jnp.std(out)) > 1e-3


# Parameter counts of the released score_sde networks for CIFAR-10 (32x32x3),
# checked against the released code's module structure.
CIFAR10_NCSNPP = dict(nf=128, ch_mult=(1, 2, 2, 2), num_res_blocks=4,
                      attn_resolutions=(16,), resamp_with_conv=True,
                      conditional=True, fir=True, fir_kernel=(1, 3, 3, 1),
                      skip_rescale=True, resblock_type='biggan',
                      progressive='none', progressive_input='residual',
                      progressive_combine='sum', embedding_type='fourier',
                      fourier_scale=16., init_scale=0.)
CIFAR10_DDPMPP = dict(CIFAR10_NCSNPP, fir=False, progressive_input='none',
                      embedding_type='positional')
CIFAR10_COUNTS = [
    # configs/vp/ddpm/cifar10.py
    (DDPM, dict(nf=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                attn_resolutions=(16,), resamp_with_conv=True,
                conditional=True), 35_218_947),
    # configs/ve/cifar10_ncsnpp_continuous.py
    (NCSNpp, CIFAR10_NCSNPP, 62_758_915),
    # configs/vp/cifar10_ddpmpp_continuous.py
    (NCSNpp, CIFAR10_DDPMPP, 61_804_419),
    # progressive output_skip / input_skip (the high-resolution NCSN++ configs)
    (NCSNpp, dict(CIFAR10_NCSNPP, progressive='output_skip',
                  progressive_input='input_skip'), 61_894_924),
    # the remaining options: DDPM-style blocks, residual output pyramid, 'cat'
    (NCSNpp, dict(CIFAR10_NCSNPP, resblock_type='ddpm', progressive='residual',
                  progressive_input='input_skip', progressive_combine='cat'),
     63_112_195),
]


@pytest.mark.parametrize('cls,config,expected', CIFAR10_COUNTS)
def test_cifar10_parameter_counts(cls, config, expected):
  _, params = _abstract_init(cls(**config))
  assert _num_params(params) == expected


@pytest.mark.parametrize('config,expected', [
    (dict(CIFAR10_NCSNPP, num_res_blocks=8), 107_587_075),  # ve/.._deep_continuous
    (dict(CIFAR10_DDPMPP, num_res_blocks=8), 106_632_579),  # vp/.._deep_continuous
])
def test_cifar10_deep_parameter_counts(config, expected):
  _, params = _abstract_init(NCSNpp(**config))
  assert _num_params(params) == expected


def test_ncsnpp_param_names_follow_released_code():
  _, params = _abstract_init(NCSNpp(**CIFAR10_NCSNPP))
  shapes = _flat_shapes(params)
  expected = {
      'GaussianFourierProjection_0/W': (128,),
      'Dense_0/kernel': (256, 512),
      'Conv_0/kernel': (3, 3, 3, 128),
      'ResnetBlockBigGANpp_0/GroupNorm_0/scale': (128,),
      'ResnetBlockBigGANpp_4/Conv_2/kernel': (1, 1, 128, 128),  # down block
      'Downsample_0/Conv2d_0/weight': (3, 3, 3, 128),  # input pyramid
      'AttnBlockpp_0/NIN_3/W': (256, 256),
      'Conv_1/kernel': (3, 3, 128, 3),
  }
  assert {k: shapes.get(k) for k in expected} == expected
  assert 'Conv_2/kernel' not in shapes
