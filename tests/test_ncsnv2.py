"""Tests for the NCSN / NCSNv2 RefineNets, their blocks and normalisations.

Network parameters come from jax.eval_shape plus random values (compiling flax init for a
~150-layer net takes minutes on CPU); numerics are checked block by block against numpy.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import normalization as norms
from models import refinenet_layers as rl
from models.ncsnv2 import NCSN, NCSNv2, NCSNv2_128, NCSNv2_256

EPS = 1e-5


def elu(x):
  return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def np_inpp(x, alpha, gamma, beta):
  """InstanceNorm++: gamma * ((x - mu) / s + alpha * (mu - mean_c mu) / std_c mu) + beta."""
  mu = x.mean(axis=(1, 2), keepdims=True)
  s = np.sqrt(x.var(axis=(1, 2), keepdims=True) + EPS)
  mu_plus = (mu - mu.mean(-1, keepdims=True)) / np.sqrt(mu.var(-1, keepdims=True) + EPS)
  return gamma * ((x - mu) / s + alpha * mu_plus) + beta


def np_conv(x, kernel, bias=None, dilation=1):
  """Stride-1 'SAME' (dilated) convolution of x (B, H, W, Ci) with kernel (k, k, Ci, Co)."""
  k = kernel.shape[0]
  pad = dilation * (k - 1) // 2
  xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  h, w = x.shape[1:3]
  out = sum(xp[:, i * dilation:i * dilation + h, j * dilation:j * dilation + w] @ kernel[i, j]
            for i in range(k) for j in range(k))
  return out if bias is None else out + bias


def np_pool(x):
  return (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2]) / 4


def random_params(model, *args, seed=0):
  """Random parameters (float64 numpy) with the tree structure model.init would give."""
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), *args)["params"]
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda s: rng.normal(0.0, 0.3, s.shape), shapes)


def n_params(model, size, channels=3):
  x = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
  labels = jax.ShapeDtypeStruct((1,), jnp.float32)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, labels)
  return sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(shapes))


def f32(tree):
  return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


# ---------------------------------------------------------------------------- normalisations

@pytest.fixture(scope="module")
def x_small():
  return np.random.default_rng(1).normal(1.0, 2.0, (2, 5, 6, 4))


def test_instance_norm_plus_matches_numpy(x_small):
  p = {k: np.random.default_rng(i).normal(1.0, 0.5, (1, 1, 1, 4))
       for i, k in enumerate(["alpha", "gamma", "beta"])}
  out = norms.InstanceNorm2dPlus().apply({"params": f32(p)}, jnp.asarray(x_small, jnp.float32))
  np.testing.assert_allclose(out, np_inpp(x_small, **p), rtol=1e-4, atol=1e-4)


def test_instance_norm_plus_init():
  p = jax.jit(norms.InstanceNorm2dPlus().init)(jax.random.PRNGKey(0), jnp.ones((1, 2, 2, 512)))
  p = p["params"]
  assert {k: v.shape for k, v in p.items()} == dict.fromkeys(["alpha", "gamma", "beta"],
                                                             (1, 1, 1, 512))
  for k in ["alpha", "gamma"]:
    assert abs(float(p[k].mean()) - 1.0) < 0.01 and 0.015 < float(p[k].std()) < 0.025
  assert not np.any(p["beta"])


@pytest.mark.parametrize("name", ["InstanceNorm", "VarianceNorm"])
def test_plain_norms_match_numpy(name, x_small):
  scale = np.random.default_rng(3).normal(1.0, 0.5, (1, 1, 1, 4))
  bias = np.random.default_rng(4).normal(0.0, 0.5, (1, 1, 1, 4))
  var = x_small.var(axis=(1, 2), keepdims=True) + EPS
  if name == "InstanceNorm":
    p = {"scale": scale, "bias": bias}
    want = (x_small - x_small.mean(axis=(1, 2), keepdims=True)) / np.sqrt(var) * scale + bias
  else:
    p = {"scale": scale}
    want = x_small / np.sqrt(var) * scale
  out = norms.get_normalization(name)().apply({"params": f32(p)}, jnp.asarray(x_small, jnp.float32))
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_conditional_instance_norm_plus_matches_numpy(x_small):
  layer = norms.get_normalization("InstanceNorm++", num_classes=3)()
  y = jnp.array([2, 0])
  init = jax.jit(layer.init)(jax.random.PRNGKey(0), jnp.ones((2, 2, 2, 4)), y)
  init = init["params"]["Embed_0"]
  assert init["embedding"].shape == (3, 12)
  assert not np.any(init["embedding"][:, 8:])  # beta columns start at zero
  table = np.random.default_rng(5).normal(1.0, 0.5, (3, 12))
  out = layer.apply({"params": {"Embed_0": {"embedding": f32(table)}}},
                    jnp.asarray(x_small, jnp.float32), y)
  gamma, alpha, beta = np.split(table[np.array(y)][:, None, None, :], 3, axis=-1)
  np.testing.assert_allclose(out, np_inpp(x_small, alpha, gamma, beta), rtol=1e-4, atol=1e-4)


def test_conditional_norm_only_for_instance_norm_plus():
  with pytest.raises(NotImplementedError):
    norms.get_normalization("InstanceNorm", num_classes=10)


# ---------------------------------------------------------------------------- blocks

def centre_kernel(w):
  """1-channel 3x3 kernel whose only non-zero tap is the centre: conv(x) = w x."""
  k = np.zeros((3, 3, 1, 1))
  k[1, 1] = w
  return k


X_HAND = np.array([[-1.0, 2.0, 0.5], [3.0, -4.0, 1.0], [0.0, 2.5, -0.5]])[None, :, :, None]


def test_crp_block_hand_computed():
  # relu(x) = [[0, 2, .5], [3, 0, 1], [0, 2.5, 0]]; a 5x5 max pool of a 3x3 map is its max, 3.
  # Stage 1 adds 0.5 * 3 = 1.5; stage 2 pools the constant 1.5 map and adds 2 * 1.5 = 3.
  p = {"Conv_0": {"kernel": centre_kernel(0.5)}, "Conv_1": {"kernel": centre_kernel(2.0)}}
  out = rl.CRPBlock(1, 2).apply({"params": f32(p)}, jnp.asarray(X_HAND, jnp.float32))
  np.testing.assert_allclose(out, np.maximum(X_HAND, 0) + 4.5, rtol=1e-6)


def test_rcu_block_hand_computed():
  # One block, two stages, centre-only kernels 2 and -1: x + (-1) * relu(2 * relu(x)).
  p = {"Conv_0": {"kernel": centre_kernel(2.0)}, "Conv_1": {"kernel": centre_kernel(-1.0)}}
  out = rl.RCUBlock(1, 1, 2).apply({"params": f32(p)}, jnp.asarray(X_HAND, jnp.float32))
  np.testing.assert_allclose(out, X_HAND - 2 * np.maximum(X_HAND, 0), rtol=1e-6)


def np_residual(p, x, output_dim, resample, dilation):
  """NCSNv2 ResidualBlock (InstanceNorm++, elu) written out with the released code's names."""
  def conv(name, h, tree=p):
    return np_conv(h, tree[name]["kernel"], tree[name].get("bias"), dilation)

  h = elu(np_inpp(x, **p["InstanceNorm2dPlus_0"]))
  if resample == "down":
    h = elu(np_inpp(conv("Conv_0", h), **p["InstanceNorm2dPlus_1"]))
    if dilation > 1:
      return conv("Conv_1", h) + conv("Conv_2", x)
    return (np_pool(conv("Conv_0", h, p["ConvMeanPool_0"]))
            + np_pool(conv("Conv_0", x, p["ConvMeanPool_1"])))
  names = ["Conv_0", "Conv_1"]
  shortcut = x
  if output_dim != x.shape[-1]:
    shortcut, names = conv("Conv_0", x), ["Conv_1", "Conv_2"]
  h = elu(np_inpp(conv(names[0], h), **p["InstanceNorm2dPlus_1"]))
  return conv(names[1], h) + shortcut


@pytest.mark.parametrize("output_dim,resample,dilation", [
    (3, None, 1), (5, None, 1), (5, None, 2), (5, "down", 1), (5, "down", 2)])
def test_residual_block_matches_numpy(output_dim, resample, dilation):
  block = rl.ResidualBlock(output_dim, norms.InstanceNorm2dPlus, resample=resample,
                           dilation=dilation)
  x = np.random.default_rng(6).normal(0.0, 1.0, (2, 6, 8, 3))
  p = random_params(block, jnp.asarray(x, jnp.float32), seed=7)
  out = jax.jit(block.apply)({"params": f32(p)}, jnp.asarray(x, jnp.float32))
  want = np_residual(p, x, output_dim, resample, dilation)
  halved = resample == "down" and dilation == 1  # a dilated "down" block keeps the size
  assert out.shape == want.shape == (2, 3 if halved else 6, 4 if halved else 8, output_dim)
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_msf_block_upsamples_and_sums():
  block = rl.MSFBlock((4, 4), 2, interpolation="nearest_neighbor")
  xs = [jnp.ones((1, 4, 4, 1)), jnp.ones((1, 2, 2, 3))]
  p = random_params(block, xs, seed=8)
  out = block.apply({"params": f32(p)}, xs)
  coarse = np_conv(np.ones((1, 2, 2, 3)), p["Conv_1"]["kernel"], p["Conv_1"]["bias"])
  want = (np_conv(np.ones((1, 4, 4, 1)), p["Conv_0"]["kernel"], p["Conv_0"]["bias"])
          + coarse.repeat(2, axis=1).repeat(2, axis=2))
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- networks

@pytest.mark.parametrize("model,size,channels", [
    (NCSNv2(nf=8), 32, 3), (NCSNv2(nf=8), 28, 1), (NCSNv2_128(nf=8), 16, 3),
    (NCSNv2_256(nf=8), 16, 3), (NCSN(num_classes=10, nf=8), 32, 3)])
def test_output_shapes(model, size, channels):
  x = jax.ShapeDtypeStruct((2, size, size, channels), jnp.float32)
  labels = jax.ShapeDtypeStruct((2,), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, labels)
  out = jax.eval_shape(model.apply, params, x, labels)
  assert out.shape == x.shape and out.dtype == jnp.float32


@pytest.fixture(scope="module")
def images():
  """The same two 8x8 images twice: (4, 8, 8, 3), so one call can compare two label sets."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 8, 8, 3))
  return jnp.concatenate([x, x])


def test_ncsnv2_forward_ignores_labels_and_centres_inputs(images):
  model, centred = NCSNv2(nf=4), NCSNv2(nf=4, centered=True)
  labels = jnp.array([0.0, 5.0, 7.0, 1.0])
  params = {"params": f32(random_params(model, images, labels, seed=9))}
  out = jax.jit(model.apply)(params, images, labels)
  assert out.shape == images.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(jnp.std(out)) > 1e-3
  np.testing.assert_array_equal(out[:2], out[2:])
  np.testing.assert_allclose(jax.jit(centred.apply)(params, 2 * images - 1, labels), out,
                             rtol=1e-5, atol=1e-5)


def test_ncsn_forward_depends_on_noise_index(images):
  model = NCSN(num_classes=4, nf=4)
  labels = jnp.array([0.0, 3.0, 3.0, 0.0])
  params = {"params": f32(random_params(model, images, labels, seed=10))}
  out = jax.jit(model.apply)(params, images, labels)
  assert out.shape == images.shape and bool(jnp.all(jnp.isfinite(out)))
  assert float(jnp.max(jnp.abs(out[:2] - out[2:]))) > 1e-3


# ---------------------------------------------------------------------------- parameter counts

def _conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def expected_count_64(nf, channels, norm):
  """Closed-form count of NCSNv2 (norm(c) = 3c) or NCSN v1 (norm(c) = 3c * num_classes).

  NCSN v1 also normalises inside every RCU stage, CRP stage and MSF input.
  """
  cond = norm(1) > 3

  def res(cin, cout, resample=None, dilation=1):
    if resample == "down":
      shortcut = _conv(3 if dilation > 1 else 1, cin, cout)
      return 2 * norm(cin) + _conv(3, cin, cin) + _conv(3, cin, cout) + shortcut
    shortcut = 0 if cin == cout else _conv(3 if dilation > 1 else 1, cin, cout)
    return norm(cin) + norm(cout) + _conv(3, cin, cout) + _conv(3, cout, cout) + shortcut

  def rcu(c, n_blocks):
    return n_blocks * 2 * (_conv(3, c, c, False) + (norm(c) if cond else 0))

  def refine(ins, f, start=False, end=False):
    msf = 0 if start else sum(_conv(3, c, f) + (norm(c) if cond else 0) for c in ins)
    crp = 2 * (_conv(3, f, f, False) + (norm(f) if cond else 0))
    return sum(rcu(c, 2) for c in ins) + msf + crp + rcu(f, 3 if end else 1)

  n2 = 2 * nf
  backbone = (2 * res(nf, nf) + res(nf, n2, "down") + res(n2, n2)
              + sum(res(n2, n2, "down", d) + res(n2, n2, None, d) for d in (2, 4)))
  refines = (refine([n2], n2, start=True) + 2 * refine([n2, n2], n2)
             + refine([nf, n2], nf, end=True))
  return _conv(3, channels, nf) + backbone + refines + norm(nf) + _conv(3, nf, channels)


def test_param_count_cifar10_ncsnv2():
  # configs/ve/ncsnv2/cifar10.py: nf=128, InstanceNorm++, elu, 32x32x3. The released JAX
  # code's third RefineBlock has 2 nf channels (ermongroup/ncsnv2 uses nf: 29,694,083).
  assert expected_count_64(128, 3, lambda c: 3 * c) == 33_970_563
  assert n_params(NCSNv2(nf=128), 32) == 33_970_563


def test_param_count_cifar10_ncsn():
  # configs/ve/ncsn/cifar10.py: nf=128, num_scales=10 noise levels.
  assert expected_count_64(128, 3, lambda c: 30 * c) == 34_428_675
  assert n_params(NCSN(num_classes=10, nf=128), 32) == 34_428_675


@pytest.mark.parametrize("model,size,count", [
    (NCSNv2_128(nf=128), 128, 83_445_379), (NCSNv2_256(nf=128), 256, 94_132_611)])
def test_param_count_large_variants(model, size, count):
  # Counts of the released code's ncsnv2_128 (configs/ve/ncsnv2/bedroom.py) and ncsnv2_256.
  assert n_params(model, size) == count


def test_param_tree_matches_released_layout():
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  params = jax.eval_shape(NCSNv2(nf=8).init, jax.random.PRNGKey(0), x, jnp.zeros(1))["params"]
  assert set(params) == ({"Conv_0", "Conv_1", "InstanceNorm2dPlus_0"}
                         | {f"ResidualBlock_{i}" for i in range(8)}
                         | {f"RefineBlock_{i}" for i in range(4)})
  assert set(params["RefineBlock_0"]) == {"RCUBlock_0", "CRPBlock_0", "RCUBlock_1"}
  assert set(params["RefineBlock_3"]) == {"RCUBlock_0", "RCUBlock_1", "MSFBlock_0", "CRPBlock_0",
                                          "RCUBlock_2"}
  assert params["ResidualBlock_2"]["ConvMeanPool_1"]["Conv_0"]["kernel"].shape == (1, 1, 8, 16)
