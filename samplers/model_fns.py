"""What every solver queries: the score, the denoiser D(x, t) = E[x0 | x(t) = x] and the noise
prediction eps of one model under one SDE.

A ModelFns is built from a score (D and eps follow by Tweedie's formula, sde_lib.tweedie) or from
a denoiser alone (`ModelFns.from_denoiser`): then `score` is None and the solvers that need a
score (samplers.solvers.Solver.needs_score) refuse it. Non-Gaussian kernels (PFGM++) give only D.

Conditions (conditioning.conditions) transform a ModelFns: guidance adds a score term (`plus`),
which shifts D by s^2 / a times the term; constraints on the state (inpainting's replacement) are
the `project` hook that grid solvers apply after every update: project(x (B, ...), t (B,) or
None, step) -> x, t being the time x is at (None: clean data, after the final denoising step)
and step an int that keys the hook's per-sample noise.

A solver's state at times[0] is `initial(keys, shape)`: the prior sample from key step 0, or the
`start` hook's state (given latents to decode; data to encode along an increasing grid; a
teacher's state for a one-step cost).
"""
import dataclasses
from typing import Callable

from samplers.per_sample_keys import per_sample_prior
from sde_lib import SDE, ScoreFn, batch_expand
from sde_lib.tweedie import denoiser_from_score, eps_from_denoiser


@dataclasses.dataclass(frozen=True)
class ModelFns:
  """score(x (B, ...), t (B,)) -> (B, ...) of the perturbed data under `sde` (None: denoiser
  only); denoiser(x, t) -> (B, ...) where the model gives D directly (None: Tweedie)."""

  sde: SDE
  score: ScoreFn | None
  project: Callable | None = None
  denoiser: Callable | None = None
  start: Callable | None = None  # (keys (B, key), shape) -> x (B, *shape) at times[0]

  @classmethod
  def from_denoiser(cls, sde: SDE, denoiser: Callable) -> "ModelFns":
    """A model known by its denoiser D(x (B, ...), t (B,)) -> (B, ...) only."""
    return cls(sde, None, denoiser=denoiser)

  def denoise(self, x, t):
    """D(x, t): (B, ...), (B,) -> (B, ...)."""
    if self.denoiser is not None:
      return self.denoiser(x, t)
    return denoiser_from_score(x, self.score(x, t), *self.sde.marginal_coeffs(t))

  def eps(self, x, t):
    """eps, the noise in x = a x0 + s eps: (B, ...), (B,) -> (B, ...)."""
    return self.predictions(x, t)[1]

  def predictions(self, x, t):
    """(D, eps) from one model evaluation: (B, ...), (B,) -> (B, ...), (B, ...)."""
    a, s = self.sde.marginal_coeffs(t)
    if self.denoiser is not None:
      denoised = self.denoiser(x, t)
      return denoised, eps_from_denoiser(x, denoised, a, s)
    score = self.score(x, t)
    return denoiser_from_score(x, score, a, s), -batch_expand(s, x) * score

  def initial(self, keys, shape):
    """The state (B, *shape) at the grid's first time: start(keys, shape), or without a start
    hook the prior sample from key step 0."""
    if self.start is None:
      return per_sample_prior(self.sde, keys, 0, shape)
    return self.start(keys, shape)

  def with_start(self, start: Callable) -> "ModelFns":
    """This model with the start hook (keys, shape) -> x at times[0]."""
    return dataclasses.replace(self, start=start)

  def constrain(self, x, t, step):
    """The project hook applied to x at time t (B,) (None: clean data); identity without one."""
    return x if self.project is None else self.project(x, t, step)

  def with_score(self, score: ScoreFn) -> "ModelFns":
    """This model with another score (and D from it by Tweedie)."""
    return dataclasses.replace(self, score=score, denoiser=None)

  def with_project(self, project: Callable) -> "ModelFns":
    """This model with the projection hook `project` (one hook: conditions apply in order)."""
    if self.project is not None:
      raise ValueError("One projection per model: compose the hooks before setting them.")
    return dataclasses.replace(self, project=project)

  def plus(self, term: ScoreFn) -> "ModelFns":
    """The model whose score is score + term(x, t) (guidance): D moves by s^2 / a times term."""
    score = None if self.score is None else (lambda x, t: self.score(x, t) + term(x, t))
    denoiser = None
    if self.denoiser is not None:
      def denoiser(x, t):
        a, s = self.sde.marginal_coeffs(t)
        return self.denoiser(x, t) + batch_expand(s * s / a, x) * term(x, t)
    return dataclasses.replace(self, score=score, denoiser=denoiser)
