"""Controllable generation (Song et al. 2021, Sec. 5, App. I): conditioning transforms the score
or projects the state after each solver step, so every solver runs every condition."""
from conditioning import guidance, linear, masks, methods, posterior, repaint, replacement
from conditioning.linear import (COLOR_BASIS, AveragePoolObservation, GrayObservation,
                                 MaskObservation, check_observation_shape, couple, decouple)
from conditioning.masks import MASKS, make_mask
from conditioning.methods import INVERSE_METHODS, check_inverse_settings, get_inverse_method
from conditioning.posterior import posterior_guided_score, with_posterior_guidance
from conditioning.repaint import repaint_nfe, repaint_sample
from conditioning.replacement import replacement_project, with_replacement
