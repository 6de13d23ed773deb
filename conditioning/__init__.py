"""Controllable generation (Song et al. 2021, Sec. 5, App. I): conditions transform the model
every solver queries (conditioning.conditions), so every solver runs every condition."""
from conditioning import conditions, guidance, linear, masks, posterior, replacement
from conditioning.conditions import CONDITIONS, Condition, build_condition, compose
from conditioning.linear import (COLOR_BASIS, AveragePoolObservation, GrayObservation,
                                 MaskObservation, check_observation_shape, couple, decouple)
from conditioning.masks import MASKS, make_mask
from conditioning.posterior import posterior_guided_score
from conditioning.replacement import replacement_project
