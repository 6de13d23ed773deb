"""SDEs of score-based generative modelling: VE, VP, sub-VP and EDM's, with reverse SDE and
probability-flow ODE."""
from configs.errors import UserError
from sde_lib.base import (SDE, DiscreteLevels, ReverseSDE, ScoreFn, batch_expand,
                          standard_normal_logp)
from sde_lib.sdes import EDMSDE, VESDE, SubVPSDE, VPSDE

SDES = {"vesde": VESDE, "vpsde": VPSDE, "subvpsde": SubVPSDE, "edm": EDMSDE}


def get_sde(name: str, **kwargs) -> SDE:
  """Builds the SDE registered as `name` (one of SDES) with its parameters."""
  if name not in SDES:
    raise UserError(f"Unknown SDE {name!r}; choose one of {sorted(SDES)}.")
  return SDES[name](**kwargs)


__all__ = ["DiscreteLevels", "EDMSDE", "SDE", "SDES", "ReverseSDE", "ScoreFn", "SubVPSDE", "VESDE",
           "VPSDE", "batch_expand", "get_sde", "standard_normal_logp"]
