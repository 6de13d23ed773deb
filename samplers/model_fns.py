"""What every solver queries: a score function and, through Tweedie's formula, the denoiser
D(x, t) = E[x0 | x(t) = x] and the noise prediction eps, for one SDE.

Conditioning transforms the score (guidance adds grad log p_t(y | x), ...), and D and eps follow
from it, so every solver runs every condition. Constraints that act on the state (inpainting's
replacement of the observed pixels) are a `project` hook that grid solvers apply after every
update: project(x (B, ...), t (B,) or None, step) -> x, where t is the time x is at (None: clean
data, after the final denoising step) and step an int that keys the hook's per-sample noise.
"""
import dataclasses
from typing import Callable

from sde_lib import SDE, ScoreFn, batch_expand


@dataclasses.dataclass(frozen=True)
class ModelFns:
  """score(x (B, ...), t (B,)) -> (B, ...) of the perturbed data under `sde`."""

  sde: SDE
  score: ScoreFn
  project: Callable | None = None

  def denoise(self, x, t):
    """D = (x + s^2 score) / a (Tweedie): (B, ...), (B,) -> (B, ...)."""
    a, s = self.sde.marginal_coeffs(t)
    return (x + batch_expand(s**2, x) * self.score(x, t)) / batch_expand(a, x)

  def eps(self, x, t):
    """eps = -s score, the noise in x = a x0 + s eps: (B, ...), (B,) -> (B, ...)."""
    return -batch_expand(self.sde.marginal_coeffs(t)[1], x) * self.score(x, t)

  def predictions(self, x, t):
    """(D, eps) from one score evaluation: (B, ...), (B,) -> (B, ...), (B, ...)."""
    a, s = self.sde.marginal_coeffs(t)
    score = self.score(x, t)
    return (x + batch_expand(s**2, x) * score) / batch_expand(a, x), -batch_expand(s, x) * score

  def constrain(self, x, t, step):
    """The project hook applied to x at time t (B,) (None: clean data); identity without one."""
    return x if self.project is None else self.project(x, t, step)

  def with_score(self, score: ScoreFn) -> "ModelFns":
    return dataclasses.replace(self, score=score)
