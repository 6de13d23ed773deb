"""Models with exact scores and no parameters: the oracles of every sampler and likelihood test."""
import dataclasses

from data_sources.mixture import GaussianMixture
from sde_lib import SDE


@dataclasses.dataclass(frozen=True)
class AnalyticGMMScore:
  """The exact score of `mixture` perturbed by `sde`: a score model with no parameters."""

  sde: SDE
  mixture: GaussianMixture

  def init(self, rng, example_x):
    del rng, example_x
    return {}

  def score(self, params, x, t, *, train=False, rng=None):
    """grad_x log p_t(x): (B, D), (B,) -> (B, D)."""
    del params, train, rng
    return self.mixture.score(x, *self.sde.marginal_coeffs(t))

  def log_prob(self, x, t):
    """Exact log p_t(x): (B, D), (B,) -> (B,)."""
    return self.mixture.log_prob(x, *self.sde.marginal_coeffs(t))
