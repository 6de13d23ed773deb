"""Trained weights of other code bases -> our parameter trees and train state (no pickle).

score_sde: the released score_sde JAX checkpoints (`checkpoint_N`, msgpack): params, EMA params,
  Adam state and step. diffusers_ncsnpp: diffusers' NCSN++ UNet2DModel (`google/ncsnpp-*`).
trees: the checks that imported trees fit the config's, with errors that say what to change.
`workflows.import_released` (--mode=import) is the command around them.
"""
from checkpoint_import import diffusers_ncsnpp, score_sde
from checkpoint_import.trees import check_fits, describe_network, first_difference

__all__ = ["check_fits", "describe_network", "diffusers_ncsnpp", "first_difference", "score_sde"]
