"""Layers of the image score networks against direct numpy implementations."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from models import layers, layerspp, up_fir_dn

RNG = np.random.default_rng(0)
_STATIC = ('k', 'factor', 'gain')
upsample_2d = jax.jit(up_fir_dn.upsample_2d, static_argnames=_STATIC)
downsample_2d = jax.jit(up_fir_dn.downsample_2d, static_argnames=_STATIC)
upsample_conv_2d = jax.jit(up_fir_dn.upsample_conv_2d, static_argnames='k')
conv_downsample_2d = jax.jit(up_fir_dn.conv_downsample_2d, static_argnames='k')


# ---------------------------------------------------------------- numpy refs
def np_upfirdn2d(x, k2d, up=1, down=1, pad=(0, 0)):
  """Zero-insert by `up`, zero-pad, true 2-D convolution with k2d, decimate."""
  b, h, w, c = x.shape
  u = np.zeros((b, h * up, w * up, c))
  u[:, ::up, ::up] = x
  u = np.pad(u, ((0, 0), pad, pad, (0, 0)))
  kh, kw = k2d.shape
  flipped = k2d[::-1, ::-1]
  out = np.zeros((b, u.shape[1] - kh + 1, u.shape[2] - kw + 1, c))
  for i in range(out.shape[1]):
    for j in range(out.shape[2]):
      out[:, i, j] = np.einsum('bhwc,hw->bc', u[:, i:i + kh, j:j + kw], flipped)
  return out[:, ::down, ::down]


def fir2d(k):
  k = np.asarray(k, np.float64)
  return np.outer(k, k) / np.sum(k) ** 2


def np_conv(x, w, b=None, stride=1, pad=((1, 1), (1, 1))):
  """Cross-correlation (flax/lax convention), x NHWC, w HWIO."""
  x = np.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
  kh, kw = w.shape[:2]
  oh = (x.shape[1] - kh) // stride + 1
  ow = (x.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], oh, ow, w.shape[-1]))
  for i in range(oh):
    for j in range(ow):
      patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
      out[:, i, j] = np.einsum('bhwc,hwco->bo', patch, w)
  return out if b is None else out + b


def np_group_norm(x, groups, scale, bias, eps=1e-6):
  b, h, w, c = x.shape
  g = x.reshape(b, h, w, groups, c // groups)
  mean = g.mean(axis=(1, 2, 4), keepdims=True)
  var = g.var(axis=(1, 2, 4), keepdims=True)
  return ((g - mean) / np.sqrt(var + eps)).reshape(x.shape) * scale + bias


def swish(x):
  return x / (1 + np.exp(-x))


def random_params(module, *args, scale=0.3, seed=1):
  """N(0, scale^2) values (1 + noise for GroupNorm scales) for module's params.

  Uses only the abstract shapes of `module.init`, so nothing is compiled.
  """
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *args)['params']
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  rng = np.random.default_rng(seed)
  new = []
  for path, leaf in leaves:
    noise = rng.normal(scale=scale, size=leaf.shape).astype(np.float32)
    new.append(noise + 1 if 'scale' in jax.tree_util.keystr(path) else noise)
  return jax.tree_util.tree_unflatten(treedef, new)


def to_np(tree):
  return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


# ---------------------------------------------------------------- FIR
@pytest.mark.parametrize('k,factor', [((1, 3, 3, 1), 2), ((1, 2, 5, 3), 2),
                                      ((1, 1), 2), ((1, 3, 3, 1), 3)])
def test_fir_upsample_downsample_match_upfirdn2d(k, factor):
  p = len(k) - factor
  x = RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)
  up = upsample_2d(x, k=k, factor=factor, gain=2.)
  ref = np_upfirdn2d(x, fir2d(k) * factor**2 * 2., up=factor,
                     pad=((p + 1) // 2 + factor - 1, p // 2))
  assert up.shape == (2, 4 * factor, 5 * factor, 3)
  np.testing.assert_allclose(up, ref, rtol=1e-5, atol=1e-5)

  x = RNG.normal(size=(2, 4 * factor, 2 * factor, 3)).astype(np.float32)
  down = downsample_2d(x, k=k, factor=factor)
  ref = np_upfirdn2d(x, fir2d(k), down=factor, pad=((p + 1) // 2, p // 2))
  assert down.shape == (2, 4, 2, 3)
  np.testing.assert_allclose(down, ref, rtol=1e-5, atol=1e-5)


def test_fir_upsample_keeps_constant_interior():
  up = upsample_2d(jnp.ones((1, 6, 6, 1)))
  np.testing.assert_allclose(up[0, 2:-2, 2:-2, 0], 1., rtol=1e-6)


@pytest.mark.parametrize('k', [(1, 3, 3, 1), (1, 2, 5, 3)])
def test_fused_upsample_conv(k):
  """Transposed conv (StyleGAN2 layout: scatter with the flipped kernel) + FIR."""
  x = RNG.normal(size=(2, 3, 4, 2)).astype(np.float32)
  w = RNG.normal(size=(3, 3, 2, 5)).astype(np.float32)
  scattered = np.zeros((2, 2 * 3 + 1, 2 * 4 + 1, 5))
  for i in range(3):
    for j in range(4):
      for a in range(3):
        for b in range(3):
          scattered[:, 2 * i + 2 - a, 2 * j + 2 - b] += x[:, i, j] @ w[a, b]
  p = len(k) - 4
  ref = np_upfirdn2d(scattered, fir2d(k) * 4, pad=((p + 1) // 2 + 1, p // 2 + 1))
  got = upsample_conv_2d(x, w, k=k)
  assert got.shape == (2, 6, 8, 5)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('k', [(1, 3, 3, 1), (1, 2, 5, 3)])
def test_fused_conv_downsample(k):
  x = RNG.normal(size=(2, 8, 6, 2)).astype(np.float32)
  w = RNG.normal(size=(3, 3, 2, 5)).astype(np.float32)
  p = len(k)
  filtered = np_upfirdn2d(x, fir2d(k), pad=((p + 1) // 2, p // 2))
  ref = np_conv(filtered, w, stride=2, pad=((0, 0), (0, 0)))
  got = conv_downsample_2d(x, w, k=k)
  assert got.shape == (2, 4, 3, 5)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_conv2d_module_params_and_modes():
  x = jnp.asarray(RNG.normal(size=(1, 4, 4, 3)), jnp.float32)
  for kw, shape in [({}, (1, 4, 4, 6)), ({'up': True}, (1, 8, 8, 6)),
                    ({'down': True}, (1, 2, 2, 6))]:
    conv = up_fir_dn.Conv2d(6, kernel=3, **kw)
    out, params = jax.eval_shape(conv.init_with_output, jax.random.PRNGKey(0),
                                 x)
    assert {k: v.shape for k, v in params['params'].items()} == {
        'weight': (3, 3, 3, 6), 'bias': (6,)}
    assert out.shape == shape


def test_naive_resampling():
  x = RNG.normal(size=(2, 4, 6, 3)).astype(np.float32)
  np.testing.assert_array_equal(up_fir_dn.naive_upsample_2d(x),
                                x.repeat(2, axis=1).repeat(2, axis=2))
  ref = x.reshape(2, 2, 2, 3, 2, 3).mean(axis=(2, 4))
  np.testing.assert_allclose(up_fir_dn.naive_downsample_2d(x), ref, rtol=1e-5,
                             atol=1e-6)


# ---------------------------------------------------------------- embeddings
@pytest.mark.parametrize('dim', [8, 9])
def test_timestep_embedding(dim):
  t = np.array([0., 1., 17.5, 999.])
  half = dim // 2
  freqs = np.exp(-np.log(10000) * np.arange(half) / (half - 1))
  ref = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs),
                        np.zeros((4, dim % 2))], axis=1)
  got = layers.get_timestep_embedding(jnp.asarray(t, jnp.float32), dim)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_fourier_projection_formula_and_frozen_weights():
  proj = layers.GaussianFourierProjection(embedding_size=8, scale=16.)
  x = jnp.asarray([-1.5, 0.3, 2.0])
  params = proj.init(jax.random.PRNGKey(0), x)['params']
  w = np.asarray(params['W'])
  assert w.shape == (8,) and 5. < w.std() < 40.
  arg = 2 * np.pi * x[:, None] * w[None, :]
  np.testing.assert_allclose(proj.apply({'params': params}, x),
                             np.concatenate([np.sin(arg), np.cos(arg)], 1),
                             rtol=1e-5, atol=1e-4)

  grads = jax.grad(lambda p: jnp.sum(proj.apply({'params': p}, x)))(params)
  np.testing.assert_array_equal(grads['W'], 0.)
  opt = optax.sgd(1.)
  updates, _ = opt.update(grads, opt.init(params))
  np.testing.assert_array_equal(optax.apply_updates(params, updates)['W'], w)


def test_default_init_and_activations():
  w = layers.default_init(0.)(jax.random.PRNGKey(0), (64, 64))
  assert 0 < float(jnp.abs(w).max()) < 1e-5
  w = layers.default_init(1.)(jax.random.PRNGKey(0), (64, 64))
  assert float(jnp.abs(w).max()) <= np.sqrt(3 / 64) + 1e-6
  assert float(layers.get_act('lrelu')(jnp.asarray(-1.))) == pytest.approx(-0.2)
  with pytest.raises(ValueError):
    layers.get_act('tanh')


# ---------------------------------------------------------------- blocks
def np_attention(x, p, skip_rescale):
  b, h, w, c = x.shape
  hn = np_group_norm(x, 1, p['GroupNorm_0']['scale'], p['GroupNorm_0']['bias'])
  q, k, v = (hn @ p[f'NIN_{i}']['W'] + p[f'NIN_{i}']['b'] for i in range(3))
  q, k, v = (a.reshape(b, h * w, c) for a in (q, k, v))
  logits = q @ k.transpose(0, 2, 1) / np.sqrt(c)
  attn = np.exp(logits - logits.max(-1, keepdims=True))
  attn /= attn.sum(-1, keepdims=True)
  out = (attn @ v).reshape(x.shape) @ p['NIN_3']['W'] + p['NIN_3']['b']
  return (x + out) / np.sqrt(2) if skip_rescale else x + out


@pytest.mark.parametrize('cls,skip_rescale', [(layers.AttnBlock, False),
                                              (layerspp.AttnBlockpp, True)])
def test_attention_block(cls, skip_rescale):
  x = RNG.normal(size=(2, 2, 3, 4)).astype(np.float32)
  block = cls(skip_rescale=skip_rescale)
  params = random_params(block, x)
  assert set(params) == {'GroupNorm_0', 'NIN_0', 'NIN_1', 'NIN_2', 'NIN_3'}
  got = jax.jit(block.apply)({'params': params}, x)
  np.testing.assert_allclose(got, np_attention(x, to_np(params), skip_rescale),
                             rtol=1e-4, atol=1e-4)


def test_attention_output_layer_starts_at_zero():
  x = jnp.asarray(RNG.normal(size=(1, 2, 2, 8)), jnp.float32)
  out, _ = jax.jit(layers.AttnBlock().init_with_output)(
      jax.random.PRNGKey(0), x)
  np.testing.assert_allclose(out, x, atol=1e-4)
  assert not np.array_equal(out, x)


def test_resnet_block_ddpm():
  x = RNG.normal(size=(2, 3, 3, 4)).astype(np.float32)
  temb = RNG.normal(size=(2, 5)).astype(np.float32)
  block = layers.ResnetBlockDDPM(out_ch=8, dropout=0.5)
  params = random_params(block, x, temb)
  apply = jax.jit(block.apply, static_argnames='train')
  got = apply({'params': params}, x, temb)
  p = to_np(params)
  h = np_conv(swish(np_group_norm(x, 1, **p['GroupNorm_0'])),
              p['Conv_0']['kernel'], p['Conv_0']['bias'])
  h = h + (swish(temb) @ p['Dense_0']['kernel'] + p['Dense_0']['bias'])[:, None, None]
  h = swish(np_group_norm(h, 2, **p['GroupNorm_1']))
  h = np_conv(h, p['Conv_1']['kernel'], p['Conv_1']['bias'])
  ref = x @ p['NIN_0']['W'] + p['NIN_0']['b'] + h
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
  # Dropout is active only with train=True and the 'dropout' rng.
  rngs = {'dropout': jax.random.PRNGKey(3)}
  assert not np.allclose(apply({'params': params}, x, temb, train=True,
                               rngs=rngs), got)


def test_resnet_block_biggan_fir_down():
  x = RNG.normal(size=(2, 4, 4, 4)).astype(np.float32)
  temb = RNG.normal(size=(2, 5)).astype(np.float32)
  block = layerspp.ResnetBlockBigGANpp(down=True, fir=True, out_ch=8,
                                       skip_rescale=True)
  params = random_params(block, x, temb)
  got = jax.jit(block.apply)({'params': params}, x, temb)
  p = to_np(params)
  down = lambda a: np_upfirdn2d(a, fir2d((1, 3, 3, 1)), down=2, pad=(1, 1))
  h = down(swish(np_group_norm(x, 1, **p['GroupNorm_0'])))
  h = np_conv(h, p['Conv_0']['kernel'], p['Conv_0']['bias'])
  h = h + (swish(temb) @ p['Dense_0']['kernel'] + p['Dense_0']['bias'])[:, None, None]
  h = swish(np_group_norm(h, 2, **p['GroupNorm_1']))
  h = np_conv(h, p['Conv_1']['kernel'], p['Conv_1']['bias'])
  skip = np_conv(down(x), p['Conv_2']['kernel'], p['Conv_2']['bias'],
                 pad=((0, 0), (0, 0)))
  np.testing.assert_allclose(got, (skip + h) / np.sqrt(2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kw,shape', [
    ({'up': True}, (1, 8, 8, 4)), ({'up': True, 'fir': True}, (1, 8, 8, 4)),
    ({'down': True}, (1, 2, 2, 4)), ({'out_ch': 12}, (1, 4, 4, 12))])
def test_resnet_block_biggan_shapes(kw, shape):
  x = jnp.zeros((1, 4, 4, 4))
  block = layerspp.ResnetBlockBigGANpp(**kw)
  out = jax.eval_shape(lambda: block.init_with_output(
      jax.random.PRNGKey(0), x)[0])
  assert out.shape == shape


@pytest.mark.parametrize('cls,kw,shape', [
    (layerspp.Upsample, dict(with_conv=True, fir=True, out_ch=6), (1, 8, 8, 6)),
    (layerspp.Upsample, dict(with_conv=True), (1, 8, 8, 4)),
    (layerspp.Upsample, dict(fir=True), (1, 8, 8, 4)),
    (layerspp.Downsample, dict(with_conv=True, fir=True, out_ch=6), (1, 2, 2, 6)),
    (layerspp.Downsample, dict(with_conv=True), (1, 2, 2, 4)),
    (layerspp.Downsample, dict(), (1, 2, 2, 4)),
    (layers.Upsample, dict(with_conv=True), (1, 8, 8, 4)),
    (layers.Downsample, dict(with_conv=True), (1, 2, 2, 4)),
])
def test_resampling_layers_shapes(cls, kw, shape):
  x = jnp.zeros((1, 4, 4, 4))
  out = jax.eval_shape(lambda: cls(**kw).init_with_output(
      jax.random.PRNGKey(0), x)[0])
  assert out.shape == shape


@pytest.mark.parametrize('method,channels', [('sum', 8), ('cat', 16)])
def test_combine(method, channels):
  x, y = jnp.ones((1, 4, 4, 3)), jnp.ones((1, 4, 4, 8))
  combine = layerspp.Combine(method=method)
  out, params = jax.eval_shape(combine.init_with_output,
                               jax.random.PRNGKey(0), x, y)
  assert out.shape == (1, 4, 4, channels)
  assert params['params']['Conv_0']['kernel'].shape == (1, 1, 3, 8)
