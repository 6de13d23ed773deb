"""FID Inception forward: ours (flax, jitted) vs pytorch-fid's (torch), and the time of FID itself.

  python benchmarks/inception_throughput.py --batch 50 --repeats 5 --fid-images 50000

Both networks hold the same random weights (pytorch-fid's `fid_inception_v3` built offline by
tests/torch_reference.py, converted with our loader) and get the same batch of 299 x 299
images in [0, 1] (NHWC for us, NCHW for torch), each through its own resize + [-1, 1] input
path, on CPU with the same number of threads. Timed: median over --repeats rounds after two
untimed warm-up calls (jit compilation); each round runs both, interleaved, so load drift hits
both alike. Printed: images/s each and the ratio.

FID timing: --fid-images feature vectors of --fid-dim (random, generated outside the timer) are
accumulated batch by batch into float64 statistics (`FeatureStats`), then the Fréchet distance
to a second set of statistics is computed (`frechet_distance`); with --scipy, also pytorch-fid's
`calculate_frechet_distance` (scipy `sqrtm`) on the same statistics.
Needs the `bench` extra (torch, torchvision, pytorch-fid).
"""
import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # Before torch loads (see ncsnpp_vs_torch).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))  # torch_reference

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position

import torch_reference  # pylint: disable=wrong-import-position
from evaluation import inception, inception_weights, metrics, stats  # pylint: disable=wrong-import-position
from timing import interleaved_seconds  # pylint: disable=wrong-import-position




def inception_throughput(batch: int, size: int, repeats: int) -> None:
  inception3, wrapper = torch_reference.random_pytorch_fid_inception(seed=0)
  variables = inception_weights.torch_to_flax_variables(torch_reference.state_dict_numpy(inception3))
  ours = inception.make_inception_fn(variables, "unit")
  images = np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32)
  images_torch = torch_reference.nhwc_to_torch(images)

  def run_torch():
    with torch.no_grad():
      return wrapper(images_torch)[0].flatten(1).numpy()

  reference = run_torch()
  error = np.abs(ours(images).pool - reference).max() / np.abs(reference).max()
  seconds = interleaved_seconds({"ours": lambda: ours(images), "torch": run_torch}, repeats)
  print(f"Inception forward, batch {batch}, {size}x{size} -> 299x299 "
        f"(max relative difference of the pool features {error:.1e}):")
  for name, s in seconds.items():
    print(f"  {name:<6} {batch / s:8.1f} images/s  ({1e3 * s:8.1f} ms per batch)")
  print(f"  ratio ours/torch throughput: {seconds['torch'] / seconds['ours']:.2f} "
        "(> 1: ours is faster)")


def fid_timing(num: int, dim: int, batch: int, with_scipy: bool) -> None:
  rng = np.random.default_rng(0)
  accumulated, accumulate_s = stats.FeatureStats(dim), 0.0
  for start in range(0, num, batch):
    features = np.abs(rng.standard_normal((min(batch, num - start), dim), np.float32))
    t0 = time.perf_counter()
    accumulated.update(features)
    accumulate_s += time.perf_counter() - t0
  mu, sigma = accumulated.mu, accumulated.sigma
  mu_ref, sigma_ref = mu + 0.1, sigma * 1.1 + np.diag(rng.uniform(0, 0.1, dim))
  t0 = time.perf_counter()
  fid = metrics.frechet_distance(mu, sigma, mu_ref, sigma_ref)
  frechet_s = time.perf_counter() - t0
  print(f"FID of {num} x {dim} features (batches of {batch}): statistics {accumulate_s:.1f} s "
        f"+ Fréchet distance {frechet_s:.1f} s = {accumulate_s + frechet_s:.1f} s (FID {fid:.6f})")
  if with_scipy:
    calculate = torch_reference.pytorch_fid_module("fid_score").calculate_frechet_distance
    t0 = time.perf_counter()
    theirs = calculate(mu, sigma, mu_ref, sigma_ref)
    scipy_s = time.perf_counter() - t0
    print(f"  pytorch-fid's calculate_frechet_distance (scipy sqrtm): {scipy_s:.1f} s "
          f"(FID {theirs:.6f}); ratio scipy/ours {scipy_s / frechet_s:.2f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=50)
  parser.add_argument("--size", type=int, default=299, help="input side, resized to 299")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--fid-images", type=int, default=50_000)
  parser.add_argument("--fid-dim", type=int, default=2048)
  parser.add_argument("--fid-batch", type=int, default=500)
  parser.add_argument("--scipy", action="store_true", help="also time pytorch-fid's formula")
  args = parser.parse_args()
  threads = len(os.sched_getaffinity(0))  # XLA:CPU uses every visible core.
  torch.set_num_threads(threads)
  print(f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, "
        f"threads {threads}, load average {os.getloadavg()[0]:.2f}")
  inception_throughput(args.batch, args.size, args.repeats)
  fid_timing(args.fid_images, args.fid_dim, args.fid_batch, args.scipy)
  print(f"load average after run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
