"""Score networks by name and the wrappers that turn them into scores.

NETWORKS maps a config's `model.name` to a flax module; `gmm_analytic` is the parameter-free exact
score of a Gaussian mixture (models.gmm).
"""
import dataclasses

from models.ddpm import DDPM
from models.gmm import AnalyticGMMScore, GaussianMixture
from models.mlp import MLP
from models.ncsnpp import NCSNpp
from models.ncsnv2 import NCSN, NCSNv2, NCSNv2_128, NCSNv2_256
from models.score import NetworkScore, noise_labels, output_scale

NETWORKS = {
    "mlp": MLP,            # low-dimensional data
    "ncsnpp": NCSNpp,      # NCSN++ and DDPM++ (Song et al. 2021)
    "ddpm": DDPM,          # Ho et al. 2020, as in the released score_sde code
    "ncsnv2": NCSNv2,      # Song & Ermon 2020, images up to 64x64
    "ncsnv2_128": NCSNv2_128,
    "ncsnv2_256": NCSNv2_256,
    "ncsn": NCSN,          # Song & Ermon 2019 (conditional on the noise index)
}
ANALYTIC = "gmm_analytic"
MODEL_NAMES = tuple(sorted([*NETWORKS, ANALYTIC]))


def get_network_class(name: str):
  if name not in NETWORKS:
    raise ValueError(f"Unknown model {name!r}; choose one of {list(MODEL_NAMES)}.")
  return NETWORKS[name]


def network_from_config(model_config, **data_kwargs):
  """Builds network `model_config.name` from the config keys that are its fields.

  data_kwargs (e.g. centered) fill fields the model section does not hold.
  """
  cls = get_network_class(model_config.name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  kwargs = {k: v for k, v in data_kwargs.items() if k in fields}
  for key in fields & set(model_config.keys()):
    value = model_config[key]
    kwargs[key] = tuple(value) if isinstance(value, list) else value
  return cls(**kwargs)


__all__ = ["ANALYTIC", "AnalyticGMMScore", "GaussianMixture", "MODEL_NAMES", "NETWORKS",
           "NetworkScore", "get_network_class", "network_from_config", "noise_labels", "output_scale"]
