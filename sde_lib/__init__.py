"""SDEs of score-based generative modelling: VE, VP and sub-VP, with reverse SDE and probability-flow ODE."""
from sde_lib.base import SDE, ReverseSDE, ScoreFn, batch_expand, standard_normal_logp
from sde_lib.sdes import VESDE, SubVPSDE, VPSDE

SDES = {"vesde": VESDE, "vpsde": VPSDE, "subvpsde": SubVPSDE}


def get_sde(name: str, **kwargs) -> SDE:
  """Builds the SDE registered as `name` (one of SDES) with its parameters."""
  if name not in SDES:
    raise ValueError(f"Unknown SDE {name!r}; choose one of {sorted(SDES)}.")
  return SDES[name](**kwargs)


def sde_from_config(model_config, sde_name: str) -> SDE:
  """Reads the SDE parameters from a config's `model` section."""
  if sde_name == "vesde":
    return get_sde(sde_name, sigma_min=model_config.sigma_min, sigma_max=model_config.sigma_max,
                   N=model_config.num_scales)
  return get_sde(sde_name, beta_min=model_config.beta_min, beta_max=model_config.beta_max,
                 N=model_config.num_scales)


__all__ = ["SDE", "SDES", "ReverseSDE", "ScoreFn", "SubVPSDE", "VESDE", "VPSDE", "batch_expand",
           "get_sde", "sde_from_config", "standard_normal_logp"]
