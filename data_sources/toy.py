"""2-D toy distributions: each `sample(rng, n) -> (n, 2) float32` with a numpy Generator."""
import numpy as np


def swiss_roll(rng: np.random.Generator, n: int) -> np.ndarray:
  """Swiss roll in the plane, scaled to roughly unit variance."""
  theta = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
  x = np.stack([theta * np.cos(theta), theta * np.sin(theta)], axis=1)
  return (x / 7.5 + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


def checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
  """Uniform over the dark squares of a 4x4 checkerboard on [-2, 2]^2."""
  x1 = rng.uniform(-2, 2, size=n)
  x2 = rng.uniform(0, 1, size=n) + rng.integers(0, 2, size=n) * 2.0 - 2.0
  x2 = x2 + (np.floor(x1) % 2)
  return np.stack([x1, x2], axis=1).astype(np.float32)


def two_moons(rng: np.random.Generator, n: int) -> np.ndarray:
  """Two interleaved half circles with small Gaussian noise, centred."""
  upper = rng.uniform(size=n) < 0.5
  angle = np.pi * rng.uniform(size=n)
  x = np.where(upper, np.cos(angle), 1 - np.cos(angle))
  y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
  pts = np.stack([x - 0.5, y - 0.25], axis=1) * 1.5
  return (pts + 0.05 * rng.standard_normal((n, 2))).astype(np.float32)


def eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
  """Eight Gaussians (std 0.1) evenly spaced on a circle of radius 2."""
  angle = 2 * np.pi * rng.integers(0, 8, size=n) / 8
  centres = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
  return (centres + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


TOY_DATASETS = {
    "swiss_roll": swiss_roll,
    "checkerboard": checkerboard,
    "two_moons": two_moons,
    "eight_gaussians": eight_gaussians,
}
