"""Tweedie's formula for a Gaussian kernel x = a x0 + s z (Efron 2011; Karras et al. 2022, Eq. 3):

  D(x) = E[x0 | x] = (x + s^2 grad log p(x)) / a,   grad log p(x) = (a D(x) - x) / s^2,

and the noise prediction eps = (x - a D) / s = -s grad log p(x). One place for the three.
"""
from sde_lib.base import batch_expand


def denoiser_from_score(x, score, a, s):
  """D = (x + s^2 score) / a: x, score (B, ...), a, s (B,) -> (B, ...)."""
  return (x + batch_expand(s * s, x) * score) / batch_expand(a, x)


def score_from_denoiser(x, denoised, a, s):
  """score = (a D - x) / s^2: x, D (B, ...), a, s (B,) -> (B, ...)."""
  return (batch_expand(a, x) * denoised - x) / batch_expand(s * s, x)


def eps_from_denoiser(x, denoised, a, s):
  """eps = (x - a D) / s: x, D (B, ...), a, s (B,) -> (B, ...)."""
  return (x - batch_expand(a, x) * denoised) / batch_expand(s, x)
