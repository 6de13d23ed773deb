"""Linear observations y = A x of the inverse problems (Song et al. 2021, App. I.2-I.3), each
with its pseudo-inverse A^+ and the orthogonal projection P = A^+ A onto A's row space.

Replacement conditioning (conditioning.replacement) writes x <- (I - P) x + A^+ y_t: for a mask
P keeps the observed pixels, for colorization the gray axis of the decoupling basis, for
super-resolution the block-constant part of the image. A A^T is a multiple of I for all three,
so A^+ = A^T (A A^T)^{-1} is A^T scaled, and P z of white noise z is the observed part of the
forward noise. Every function takes a batch x (B, *shape).
"""
import dataclasses

import jax.numpy as jnp
import numpy as np

from configs.errors import ArgumentError, UserError

# The fixed orthogonal matrix of the paper's colorization (App. I.3, as the released code's
# `get_colorization_fns`): column 0 is the gray axis (1, 1, 1) / sqrt(3), columns 1-2 span the
# colour directions orthogonal to it. decouple(x) = x @ M, couple(u) = u @ M^T.
COLOR_BASIS = np.array([[3**-0.5, -(2 / 3)**0.5, 0.0],
                        [3**-0.5, 6**-0.5, 2**-0.5],
                        [3**-0.5, 6**-0.5, -2**-0.5]])


@dataclasses.dataclass(frozen=True)
class MaskObservation:
  """y = m * x for a 0/1 mask m broadcastable to one example (observed where m = 1); y keeps
  x's shape (zeros where unobserved), and A = A^+ = P."""

  mask: np.ndarray  # bool, one example's shape (or broadcastable to it)

  def _batch_mask(self, x):
    return jnp.asarray(self.mask)[None]  # (1, *example shape): explicit rank for the batch

  def observe(self, x):
    return jnp.where(self._batch_mask(x), x, jnp.zeros_like(x))

  def lift(self, y):
    return self.observe(y)

  def project(self, x):
    return self.observe(x)

  def replace(self, x, observed):
    """x with its observed part set to `observed` (B, *shape) exactly: (I - P) x + P observed."""
    return jnp.where(self._batch_mask(x), observed, x)


def decouple(x):
  """RGB (..., 3) -> the decoupled basis (gray axis, two colour axes): x @ M."""
  return jnp.einsum("...i,ij->...j", x, jnp.asarray(COLOR_BASIS, x.dtype))


def couple(u):
  """The decoupled basis (..., 3) -> RGB: u @ M^T (M orthogonal)."""
  return jnp.einsum("...j,ij->...i", u, jnp.asarray(COLOR_BASIS, u.dtype))


@dataclasses.dataclass(frozen=True)
class GrayObservation:
  """y = mean of the channels (B, H, W, 1) of RGB images (B, H, W, 3): the gray image, i.e. the
  decoupled gray coordinate / sqrt(3); replacement runs in the decoupled basis."""

  def observe(self, x):
    return jnp.mean(x, axis=-1, keepdims=True)

  def lift(self, y):
    """A^+ y: the gray image on all three channels (gray coordinate sqrt(3) y, colours 0)."""
    return jnp.broadcast_to(y, y.shape[:-1] + (3,))

  def project(self, x):
    gray_axis = jnp.asarray([1.0, 0.0, 0.0], x.dtype).reshape((1,) * (x.ndim - 1) + (3,))
    return couple(decouple(x) * gray_axis)

  def replace(self, x, observed):
    """x's colour coordinates with the gray coordinate of `observed` (B, H, W, 3)."""
    u, v = decouple(x), decouple(observed)
    return couple(jnp.concatenate([v[..., :1], u[..., 1:]], axis=-1))


@dataclasses.dataclass(frozen=True)
class AveragePoolObservation:
  """y = the mean over factor x factor blocks (B, H / f, W / f, C) of images (B, H, W, C);
  A^+ y repeats each pooled pixel over its block, P = A^+ A makes x block-constant."""

  factor: int

  def observe(self, x):
    b, h, w, c = x.shape
    f = self.factor
    return jnp.mean(x.reshape(b, h // f, f, w // f, f, c), axis=(2, 4))

  def lift(self, y):
    return jnp.repeat(jnp.repeat(y, self.factor, axis=1), self.factor, axis=2)

  def project(self, x):
    return self.lift(self.observe(x))

  def replace(self, x, observed):
    """(I - P) x + P observed: x's block means set to those of `observed` (B, H, W, C)."""
    return x - self.project(x) + self.project(observed)


def check_observation_shape(observation, shape: tuple) -> None:
  """Raises ValueError when `observation` cannot act on examples of `shape` (H, W, C)."""
  if isinstance(observation, GrayObservation) and (len(shape) != 3 or shape[-1] != 3):
    raise UserError(f"Colorization needs RGB images (H, W, 3); the data has shape {shape}. "
                     "Use a 3-channel dataset (e.g. cifar10) or task=inpaint.")
  if isinstance(observation, AveragePoolObservation):
    f = observation.factor
    if len(shape) != 3 or f < 1 or shape[0] % f or shape[1] % f:
      raise ArgumentError("factor", f"{{arg}}={f} must be >= 1 and divide the image size "
                          f"{shape[:2]} (super-resolution pools images (H, W, C)).")
  if isinstance(observation, MaskObservation):
    mask_shape = np.shape(observation.mask)
    if len(mask_shape) != len(shape) or any(m not in (1, n) for m, n in zip(mask_shape, shape)):
      raise UserError(f"The mask has shape {mask_shape}, which does not fit examples of shape "
                       f"{tuple(shape)}; give a mask of shape {tuple(shape)} (or with size-1 "
                       "axes, e.g. (H, W, 1)).")
