"""Score networks by name, parameterisations, and the wrappers that turn them into scores.

NETWORKS maps a config's `model.name` to a flax module, EXACT_SCORES (`gmm_analytic`) to a
parameter-free exact score of a Gaussian mixture (models.analytic); PARAMETERIZATIONS maps
`model.parameterization` to how a network's output becomes a score (models.parameterization).
"""
from configs.errors import UserError
from models.analytic import (EXACT_CLASSIFIERS, EXACT_SCORES, AnalyticGMMClassifier,
                             AnalyticGMMConditionalScore, AnalyticGMMScore)
from models.ddpm import DDPM
from models.layers import COMPUTE_DTYPES, get_compute_dtype
from models.mlp import MLP
from models.ncsnpp import NCSNpp
from models.ncsnv2 import NCSN, NCSNv2, NCSNv2_128, NCSNv2_256
from models.parameterization import (EDM, PARAMETERIZATIONS, DiscreteParameterization,
                                     Parameterization, Preconditioning, VEContinuous,
                                     VEDiscrete, VPContinuous, VPDiscrete, VPrediction,
                                     parameterization_name)
from models.score import NetworkScore

NETWORKS = {
    "mlp": MLP,            # low-dimensional data
    "ncsnpp": NCSNpp,      # NCSN++ and DDPM++ (Song et al. 2021)
    "ddpm": DDPM,          # Ho et al. 2020, as in the released score_sde code
    "ncsnv2": NCSNv2,      # Song & Ermon 2020, images up to 64x64
    "ncsnv2_128": NCSNv2_128,
    "ncsnv2_256": NCSNv2_256,
    "ncsn": NCSN,          # Song & Ermon 2019 (conditional on the noise index)
}
MODEL_NAMES = tuple(sorted([*NETWORKS, *EXACT_SCORES]))


def get_network_class(name: str):
  if name not in NETWORKS:
    raise UserError(f"Unknown model {name!r}; choose one of {list(MODEL_NAMES)}.")
  return NETWORKS[name]


__all__ = ["COMPUTE_DTYPES", "EDM", "EXACT_CLASSIFIERS", "EXACT_SCORES", "MODEL_NAMES", "NETWORKS",
           "PARAMETERIZATIONS", "AnalyticGMMClassifier", "AnalyticGMMConditionalScore",
           "AnalyticGMMScore", "DiscreteParameterization", "NetworkScore", "Parameterization",
           "Preconditioning", "VEContinuous", "VEDiscrete", "VPContinuous", "VPDiscrete", "VPrediction",
           "get_compute_dtype", "get_network_class", "parameterization_name"]
