"""Turns a network's output into a score for a given SDE (Song et al. 2021, released code's get_score_fn).

Labels fed to the network:
  VP / sub-VP: 999 t (continuous) or the timestep index t (N - 1) (discrete DDPM);
  VE: sigma(t) (continuous) or the index of sigma in the descending SMLD table (discrete).
Output scaling: VP / sub-VP: score = -output / std(t); VE: score = output / sigma(t) when
`scale_by_sigma` (NCSN++, NCSNv2), else the output itself.
"""
import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from sde_lib import SDE, VESDE, VPSDE, SubVPSDE, batch_expand


def noise_labels(sde: SDE, t, continuous: bool):
  """Noise-level labels (B,) given to the network at times t (B,)."""
  if isinstance(sde, VESDE):
    if continuous:
      return sde.marginal_prob(jnp.zeros((t.shape[0], 1)), t)[1]
    return (sde.N - 1 - sde.timestep_index(t)).astype(t.dtype)
  if continuous or isinstance(sde, SubVPSDE):
    return 999.0 * t
  return sde.timestep_index(t).astype(t.dtype)


def output_scale(sde: SDE, t, continuous: bool, scale_by_sigma: bool):
  """Per-example factor (B,) that maps the network output to the score."""
  if isinstance(sde, VESDE):
    if not scale_by_sigma:
      return jnp.ones_like(t)
    sigma = sde.marginal_prob(jnp.zeros((t.shape[0], 1)), t)[1] if continuous else (
        sde.discrete_sigmas[sde.timestep_index(t)])
    return 1.0 / sigma
  if isinstance(sde, VPSDE) and not continuous and not isinstance(sde, SubVPSDE):
    std = jnp.sqrt(1.0 - sde.alphas_cumprod[sde.timestep_index(t)])
  else:
    std = sde.marginal_prob(jnp.zeros((t.shape[0], 1)), t)[1]
  return -1.0 / std


@dataclasses.dataclass(frozen=True)
class NetworkScore:
  """Score model s_theta(x, t) = output_scale(t) * network(x, noise_labels(t))."""

  sde: SDE
  network: nn.Module
  continuous: bool = True
  scale_by_sigma: bool = False

  def init(self, rng, example_x):
    """Parameters for inputs shaped like example_x (B, ...)."""
    labels = jnp.ones((example_x.shape[0],), example_x.dtype)
    return self.network.init({"params": rng, "dropout": rng}, example_x, labels)["params"]

  def score(self, params, x, t, *, train=False, rng=None):
    """Score (B, ...) at x (B, ...), t (B,); `rng` drives dropout when train."""
    labels = noise_labels(self.sde, t, self.continuous)
    rngs = {"dropout": rng} if train and rng is not None else {}
    out = self.network.apply({"params": params}, x, labels, train=train, rngs=rngs)
    return batch_expand(output_scale(self.sde, t, self.continuous, self.scale_by_sigma), out) * out
