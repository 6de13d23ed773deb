"""Turns a network into a score model through a parameterisation (models.parameterization)."""
import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from configs.errors import UserError
from models.parameterization import (DiscreteParameterization, Parameterization, network_input,
                                     preconditioned_score)
from sde_lib import SDE


@dataclasses.dataclass(frozen=True)
class NetworkScore:
  """Score model s_theta(x, t) of `network` under `parameterization` (e.g. models.VPContinuous)."""

  sde: SDE
  network: nn.Module
  parameterization: Parameterization
  has_parameters = True

  def init(self, rng, example_x):
    """Parameters for inputs shaped like example_x (B, ...)."""
    labels = jnp.ones((example_x.shape[0],), example_x.dtype)
    return self.network.init({"params": rng, "dropout": rng}, example_x, labels)["params"]

  def network_output(self, params, x, p, *, labels=None, train=False, rng=None):
    """The raw network output F(c_in x~, c_noise) (B, ...) under preconditioning p, in x's dtype
    (float32 also when the network computes in bfloat16); labels (B,) int: class labels of a
    class-conditional network (None: none, or its null label)."""
    rngs = {"dropout": rng} if train and rng is not None else {}
    extra = {} if labels is None else {"class_labels": labels}
    out = self.network.apply({"params": params}, network_input(p, x), p.c_noise, train=train,
                             rngs=rngs, **extra)
    return out.astype(x.dtype)

  def score(self, params, x, t, *, labels=None, train=False, rng=None):
    """Score (B, ...) at x (B, ...), t (B,) (given class labels (B,) int, if any); `rng` drives
    dropout when train."""
    p = self.parameterization.precondition(t)
    return preconditioned_score(p, x, self.network_output(params, x, p, labels=labels,
                                                          train=train, rng=rng))

  def score_at_level(self, params, x, level, *, labels=None, train=False, rng=None):
    """Score at the SDE's discrete noise levels (B,) int (discrete parameterisations only)."""
    if not isinstance(self.parameterization, DiscreteParameterization):
      raise UserError(f"{type(self.parameterization).__name__} is a continuous-time "
                       "parameterisation; discrete (table-level) training needs "
                       "'vp_discrete' or 've_discrete' (the released VP / VE conventions).")
    p = self.parameterization.precondition_level(level)
    return preconditioned_score(p, x, self.network_output(params, x, p, labels=labels,
                                                          train=train, rng=rng))
