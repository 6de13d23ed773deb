"""The FID Inception-v3 in flax: TF's 2015-12-05 graph as ported by pytorch-fid.

This is `pytorch_fid.inception.fid_inception_v3` (torchvision's Inception-v3 with its
`FIDInceptionA/C/E_1/E_2` blocks and a 1008-class head), re-written in flax.linen, NHWC. Module
names are torch's attribute names, so a torch state dict maps onto the parameters by name
(`evaluation.inception_weights`). Where the FID graph differs from torchvision's network:

- the 3x3 average pools inside blocks A, C and E_1 exclude the zero padding from the mean
  (TF's `avg_pool` semantics; torchvision counts it);
- block E_2 (`Mixed_7c`) max-pools its pool branch instead of average-pooling it;
- the head has 1008 outputs (TF's label map: 0 = background, 1..1000 = ImageNet classes,
  1001..1007 unused).

Outputs, `InceptionOutputs`:
- `pool`: (B, 2048) global average of `Mixed_7c` ("pool_3"), the FID / KID features;
- `logits`: (B, 1008) `fc(pool)`, the head exactly as pytorch-fid ports it (weights and bias);
- `logits_unbiased`: (B, 1008) `pool @ fc.kernel`. The Inception Score's reference code (Salimans
  et al. 2016, openai/improved-gan) multiplies pool_3 by the softmax weights only and takes the
  softmax over all 1008 classes; torch-fidelity keeps this as its default ('logits_unbiased') to
  reproduce published scores. We follow it: the Inception Score of a sample is
  `metrics.inception_score(np.exp(metrics.log_softmax(outputs.logits_unbiased)))`. Keeping all
  1008 classes instead of slicing 1000 changes the score only through the small mass on the
  unused classes, but a different choice would no longer be the published metric.

`make_inception_fn` wraps the network with pytorch-fid's preprocessing: to [0, 1] from a named
input range, bilinear resize to 299 x 299 with torch's rule (no antialiasing), then 2x - 1.
"""
import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from evaluation import batched, preprocess

INPUT_SIZE = 299
NUM_CLASSES = 1008
RESIZE_RULE = f"torch-bilinear-align_corners=False-antialias=False-{INPUT_SIZE}"


class InceptionOutputs(NamedTuple):
  pool: jnp.ndarray  # (B, 2048)
  logits: jnp.ndarray  # (B, 1008)
  logits_unbiased: jnp.ndarray  # (B, 1008)


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, running statistics) -> ReLU, torch's `BasicConv2d`."""
  features: int
  kernel: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    pointwise = self.kernel == (1, 1) and self.strides == 1 and self.padding == (0, 0)
    x = nn.Conv(self.features, self.kernel, self.strides, use_bias=False,
                padding=[(p, p) for p in self.padding], name="conv",
                conv_general_dilated=_pointwise_conv if pointwise else None)(x)
    return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x))


def _pointwise_conv(lhs, rhs, *unused_args, **unused_kwargs):
  """A 1x1, stride-1, unpadded conv as a matmul over channels: NHWC (B, H, W, I), HWIO (1, 1, I, O)
  -> (B, H, W, O). XLA:CPU runs it 2-5x faster than as a convolution at Inception's sizes."""
  return jnp.einsum("bhwi,io->bhwo", lhs, rhs[0, 0])


def _avg_pool_3x3(x):
  """3x3, stride 1, pad 1, mean over the real (unpadded) pixels only, as TF pools."""
  return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, strides=1, pad=1):
  return nn.max_pool(x, (3, 3), (strides, strides), padding=((pad, pad), (pad, pad)))


def _chain(x, convs):
  for conv in convs:
    x = conv(x)
  return x


class InceptionA(nn.Module):
  """35x35 block (`Mixed_5b..d`), FID variant: padding-excluding average pool."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        BasicConv(64, name="branch1x1")(x),
        _chain(x, [BasicConv(48, name="branch5x5_1"),
                   BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")]),
        _chain(x, [BasicConv(64, name="branch3x3dbl_1"),
                   BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2"),
                   BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")]),
        BasicConv(self.pool_features, name="branch_pool")(_avg_pool_3x3(x)),
    ], axis=-1)


class InceptionB(nn.Module):
  """35x35 -> 17x17 reduction (`Mixed_6a`)."""

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        BasicConv(384, (3, 3), strides=2, name="branch3x3")(x),
        _chain(x, [BasicConv(64, name="branch3x3dbl_1"),
                   BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2"),
                   BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")]),
        _max_pool_3x3(x, strides=2, pad=0),
    ], axis=-1)


class InceptionC(nn.Module):
  """17x17 block with factorised 7x7 convs (`Mixed_6b..e`), FID variant: padding-excluding pool."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
    return jnp.concatenate([
        BasicConv(192, name="branch1x1")(x),
        _chain(x, [BasicConv(c7, name="branch7x7_1"), BasicConv(c7, **row, name="branch7x7_2"),
                   BasicConv(192, **col, name="branch7x7_3")]),
        _chain(x, [BasicConv(c7, name="branch7x7dbl_1"),
                   BasicConv(c7, **col, name="branch7x7dbl_2"),
                   BasicConv(c7, **row, name="branch7x7dbl_3"),
                   BasicConv(c7, **col, name="branch7x7dbl_4"),
                   BasicConv(192, **row, name="branch7x7dbl_5")]),
        BasicConv(192, name="branch_pool")(_avg_pool_3x3(x)),
    ], axis=-1)


class InceptionD(nn.Module):
  """17x17 -> 8x8 reduction (`Mixed_7a`)."""

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _chain(x, [BasicConv(192, name="branch3x3_1"),
                   BasicConv(320, (3, 3), strides=2, name="branch3x3_2")]),
        _chain(x, [BasicConv(192, name="branch7x7x3_1"),
                   BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2"),
                   BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3"),
                   BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")]),
        _max_pool_3x3(x, strides=2, pad=0),
    ], axis=-1)


class InceptionE(nn.Module):
  """8x8 block with split 1x3/3x1 outputs (`Mixed_7b`: pool 'avg', `Mixed_7c`: pool 'max')."""
  pool: str

  def _split(self, x, prefix):
    return jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(x),
                            BasicConv(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(x)], axis=-1)

  @nn.compact
  def __call__(self, x):
    pools = {"avg": _avg_pool_3x3, "max": _max_pool_3x3}
    if self.pool not in pools:
      raise ValueError(f"pool={self.pool!r}; expected one of {sorted(pools)}.")
    branch3x3 = BasicConv(384, name="branch3x3_1")(x)
    branch3x3dbl = _chain(x, [BasicConv(448, name="branch3x3dbl_1"),
                              BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")])
    return jnp.concatenate([
        BasicConv(320, name="branch1x1")(x),
        self._split(branch3x3, "branch3x3_2"),
        self._split(branch3x3dbl, "branch3x3dbl_3"),
        BasicConv(192, name="branch_pool")(pools[self.pool](x)),
    ], axis=-1)


class FIDInceptionV3(nn.Module):
  """(B, 299, 299, 3) in [-1, 1] -> InceptionOutputs. Any input size >= 75 runs (global pool)."""

  @nn.compact
  def __call__(self, x):
    x = _chain(x, [BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3"),
                   BasicConv(32, (3, 3), name="Conv2d_2a_3x3"),
                   BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")])
    x = _max_pool_3x3(x, strides=2, pad=0)
    x = _chain(x, [BasicConv(80, name="Conv2d_3b_1x1"),
                   BasicConv(192, (3, 3), name="Conv2d_4a_3x3")])
    x = _max_pool_3x3(x, strides=2, pad=0)
    x = _chain(x, [InceptionA(32, name="Mixed_5b"), InceptionA(64, name="Mixed_5c"),
                   InceptionA(64, name="Mixed_5d"), InceptionB(name="Mixed_6a"),
                   InceptionC(128, name="Mixed_6b"), InceptionC(160, name="Mixed_6c"),
                   InceptionC(160, name="Mixed_6d"), InceptionC(192, name="Mixed_6e"),
                   InceptionD(name="Mixed_7a"), InceptionE("avg", name="Mixed_7b"),
                   InceptionE("max", name="Mixed_7c")])
    pool = jnp.mean(x, axis=(1, 2))
    fc = nn.Dense(NUM_CLASSES, name="fc")
    logits = fc(pool)
    return InceptionOutputs(pool, logits, pool @ fc.variables["params"]["kernel"])


def inception_input(images: jnp.ndarray, input_range: str) -> jnp.ndarray:
  """pytorch-fid's preprocessing: (B, H, W, C in {1, 3}) -> (B, 299, 299, 3) in [-1, 1].

  Grey images (C = 1) are repeated to RGB, as PIL's `convert('RGB')` in pytorch-fid's loader does.
  """
  if images.shape[-1] not in (1, 3):
    raise ValueError(f"Inception takes 1 or 3 channels (NHWC), got shape {images.shape}.")
  x = preprocess.to_unit_interval(images, input_range)
  x = jnp.broadcast_to(x, x.shape[:-1] + (3,))
  return 2.0 * preprocess.resize_bilinear(x, INPUT_SIZE) - 1.0


@functools.cache
def abstract_variables() -> dict:
  """Shapes and dtypes of the network's variables ('params', 'batch_stats'), without computing
  (traced once per process; treat as read-only)."""
  return jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                        jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))


def make_inception_fn(variables: dict, input_range: str,
                      parallel=None) -> Callable[[np.ndarray], InceptionOutputs]:
  """images (B, H, W, C) numpy in `input_range` -> InceptionOutputs (numpy float32).

  Jitted, data-parallel over `parallel` (default: all devices; variables replicated, batch
  split; B is padded to a multiple of the device count). Each input shape compiles once.
  """
  preprocess.check_input_range(input_range)  # fail before compiling
  return batched.sharded_apply(
      lambda v, x: FIDInceptionV3().apply(v, inception_input(x, input_range)), variables, parallel)
