"""SDEs of score-based generative modelling: VE, VP, sub-VP and EDM's, with reverse SDE and
probability-flow ODE.

A new process is one frozen dataclass subclassing SDE in sde_lib/sdes.py (its parameters are its
fields) and one line in SDES; `build_sde` then builds it from a config's sde section.
"""
import dataclasses

from configs.errors import UserError
from sde_lib.base import (SDE, DiscreteLevels, ReverseSDE, ScoreFn, batch_expand,
                          standard_normal_logp)
from sde_lib.sdes import EDMSDE, VESDE, SubVPSDE, VPSDE

SDES = {"vesde": VESDE, "vpsde": VPSDE, "subvpsde": SubVPSDE, "edm": EDMSDE}
FIELD_ALIASES = {"num_scales": "N"}  # config key -> SDE field


def _sde_class(name: str) -> type:
  if name not in SDES:
    raise UserError(f"Unknown SDE {name!r}; choose one of {sorted(SDES)}.")
  return SDES[name]


def get_sde(name: str, **kwargs) -> SDE:
  """Builds the SDE registered as `name` (one of SDES) with its parameters."""
  return _sde_class(name)(**kwargs)


def build_sde(name: str, params: dict) -> SDE:
  """Builds SDES[name] from the entries of `params` (e.g. a config's sde section) that are its
  dataclass fields, config keys renamed by FIELD_ALIASES (num_scales -> N); others are ignored."""
  cls = _sde_class(name)
  fields = {field.name for field in dataclasses.fields(cls) if field.init}
  kwargs = {FIELD_ALIASES.get(key, key): value for key, value in params.items()}
  return cls(**{key: value for key, value in kwargs.items() if key in fields})


__all__ = ["DiscreteLevels", "EDMSDE", "FIELD_ALIASES", "SDE", "SDES", "ReverseSDE", "ScoreFn",
           "SubVPSDE", "VESDE", "VPSDE", "batch_expand", "build_sde", "get_sde",
           "standard_normal_logp"]
