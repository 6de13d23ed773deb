"""An offline feature network for 8x8 digits: the "Fréchet digits distance" and a digits IS.

FID needs Inception weights that cannot be downloaded here; scikit-learn's bundled digits can
train a small CNN in seconds instead. `DigitsNet` is trained deterministically (fixed seed,
full-batch Adam, float32, CPU) on the training split of `data_sources.images.load_digits` and
gives
- `frechet_digits_distance`: the Fréchet distance between its penultimate features (64-d) of
  the images and of a reference split (default: train);
- `digits_inception_score`: the Inception Score of its 10-class softmax (at most 10).

`load_digits_net()` trains the network on first use and caches it in
`cache_dir() / CACHE_NAME` (`$SCORE_SDE_CACHE`, else `~/.cache/score_sde_jax`), written
atomically. To make the file yourself: `python -m evaluation.digits_features --out=PATH`.
"""
import argparse
from typing import Callable, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs.errors import UserError
from data_sources.images import load_digits
from evaluation import batched, cache, metrics, preprocess, stats
from fileio import write_bytes_atomic

IMAGE_SIZE = 8
NUM_CLASSES = 10
FEATURE_DIM = 64
CHANNELS = (16, 32)
TRAIN_STEPS = 300
LEARNING_RATE = 3e-3
SEED = 0
# The name changes whenever the network or its training does, so a stale cache is never read.
CACHE_NAME = (f"digits_net_c{CHANNELS[0]}-{CHANNELS[1]}_f{FEATURE_DIM}_s{TRAIN_STEPS}"
              f"_lr{LEARNING_RATE}_seed{SEED}_v1.msgpack")


class DigitsOutputs(NamedTuple):
  features: jnp.ndarray  # (B, FEATURE_DIM), penultimate layer (after ReLU)
  logits: jnp.ndarray  # (B, 10)


class DigitsNet(nn.Module):
  """(B, 8, 8, 1) in [0, 1] -> DigitsOutputs: two conv + pool stages, a 64-d layer, 10 logits."""

  @nn.compact
  def __call__(self, x):
    x = 2.0 * x - 1.0
    for features in CHANNELS:
      x = nn.avg_pool(nn.relu(nn.Conv(features, (3, 3))(x)), (2, 2), (2, 2))
    hidden = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
    return DigitsOutputs(hidden, nn.Dense(NUM_CLASSES)(hidden))


def labelled_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images (N, 8, 8, 1), labels (N,)) of the repository's digits split.

  Labels come from matching each image to scikit-learn's (its 1797 images are all distinct,
  stored as levels 0..16 that `load_digits` scales to 0..255).
  """
  from sklearn.datasets import load_digits as sklearn_digits  # pylint: disable=g-import-not-at-top
  bundled = sklearn_digits()
  label_of = {im.astype(np.uint8).tobytes(): int(label)
              for im, label in zip(bundled.images, bundled.target)}
  images = load_digits(split)
  levels = np.round(images[..., 0] * (16.0 / 255.0)).astype(np.uint8)
  return images, np.array([label_of[im.tobytes()] for im in levels])


def digits_input(images: jnp.ndarray, input_range: str) -> jnp.ndarray:
  """(B, H, W, 1) in `input_range` -> (B, 8, 8, 1) in [0, 1]; other sizes resized with torch's
  bilinear rule (16 -> 8 averages 2 x 2 blocks)."""
  if images.shape[-1] != 1:
    raise ValueError(f"digits are grey (NHWC with C = 1), got shape {images.shape}.")
  return preprocess.resize_bilinear(preprocess.to_unit_interval(images, input_range), IMAGE_SIZE)


def train_digits_net(steps: int = TRAIN_STEPS, seed: int = SEED) -> dict:
  """Variables of `DigitsNet` after `steps` full-batch Adam steps on the training split."""
  images, labels = labelled_digits("train")
  x, y = digits_input(jnp.asarray(images), "uint8"), jnp.asarray(labels)
  model, optimizer = DigitsNet(), optax.adam(LEARNING_RATE)
  params = model.init(jax.random.key(seed), x[:1])["params"]

  def loss_fn(p):
    logits = model.apply({"params": p}, x).logits
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(p, opt_state):
    grads = jax.grad(loss_fn)(p)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(p, updates), opt_state

  opt_state = optimizer.init(params)
  for _ in range(steps):  # one jitted step per call: faster than a scan on XLA:CPU
    params, opt_state = step(params, opt_state)
  return {"params": jax.device_get(params)}


def _abstract_variables() -> dict:
  return jax.eval_shape(DigitsNet().init, jax.random.key(0),
                        jax.ShapeDtypeStruct((1, IMAGE_SIZE, IMAGE_SIZE, 1), jnp.float32))


def save_digits_net(path, variables: dict) -> None:
  write_bytes_atomic(path, flax.serialization.msgpack_serialize(variables))


def read_digits_net(path) -> dict:
  """Variables from a msgpack file; raises if their tree or shapes are not `DigitsNet`'s."""
  with open(path, "rb") as f:
    variables = flax.serialization.msgpack_restore(f.read())
  expected = jax.tree.map(lambda a: a.shape, _abstract_variables())
  if jax.tree.map(np.shape, variables) != expected:
    raise UserError(f"{path} does not hold DigitsNet variables; delete it to retrain.")
  return variables


def load_digits_net(path=None) -> dict:
  """Variables from `path` (default: the cache file), training and saving them if it is absent."""
  path = path or cache.cache_dir() / CACHE_NAME
  try:
    return read_digits_net(path)
  except FileNotFoundError:
    variables = train_digits_net()
    save_digits_net(path, variables)
    return variables


def make_digits_fn(variables: dict, input_range: str,
                   parallel=None) -> Callable[[np.ndarray], DigitsOutputs]:
  """images (B, H, W, 1) numpy in `input_range` -> DigitsOutputs (numpy), jitted, data-parallel."""
  preprocess.check_input_range(input_range)  # fail before compiling
  return batched.sharded_apply(
      lambda v, x: DigitsNet().apply(v, digits_input(x, input_range)), variables, parallel)


def digits_outputs(images: np.ndarray, input_range: str, variables: dict | None = None,
                   batch_size: int = 512) -> DigitsOutputs:
  """DigitsOutputs (numpy) of all images (N, H, W, 1); variables default to `load_digits_net()`."""
  fn = make_digits_fn(variables or load_digits_net(), input_range)
  return batched.map_in_batches(fn, np.asarray(images), batch_size)


def digits_accuracy(variables: dict | None = None, split: str = "test") -> float:
  images, labels = labelled_digits(split)
  logits = digits_outputs(images, "uint8", variables).logits
  return float(np.mean(np.argmax(logits, axis=1) == labels))


def frechet_digits_distance(images: np.ndarray, input_range: str, variables: dict | None = None,
                            reference_split: str = "train") -> float:
  """Fréchet distance of DigitsNet features: images (N, H, W, 1) vs a digits split."""
  variables = variables or load_digits_net()
  sample, reference = (
      stats.FeatureStats(FEATURE_DIM).update(digits_outputs(x, r, variables).features)
      for x, r in ((images, input_range), (load_digits(reference_split), "uint8")))
  return metrics.frechet_distance(sample.mu, sample.sigma, reference.mu, reference.sigma)


def digits_inception_score(images: np.ndarray, input_range: str, variables: dict | None = None,
                           num_splits: int = 10) -> tuple[float, float]:
  """(mean, std) Inception Score of DigitsNet's softmax over images (N, H, W, 1)."""
  logits = digits_outputs(images, input_range, variables).logits
  return metrics.inception_score(np.exp(metrics.log_softmax(logits)), num_splits)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(cache.cache_dir() / CACHE_NAME),
                      help="where to write the msgpack file (default: the cache file)")
  args = parser.parse_args(argv)
  variables = train_digits_net()
  save_digits_net(args.out, variables)
  print(f"Wrote {args.out}; test accuracy {digits_accuracy(variables):.4f}")


if __name__ == "__main__":
  main()
