"""Digits with a small NCSN++ (VE), DDPM++ (VP, sub-VP) or EDM-preconditioned DDPM++ (edm):
`--config=configs/digits.py:SDE`.

Run: python main.py --config=configs/digits.py:vpsde --workdir=workdirs/digits_vp --mode=train
"""
from configs.common import apply_sde
from configs.default_digits import get_default_configs


def get_config(sde: str = "vpsde"):
  config = apply_sde(get_default_configs(), sde)
  if sde == "vesde":  # NCSN++: FIR resampling and the progressive skip paths
    config.model.fir = True
    config.model.progressive = "output_skip"
    config.model.progressive_input = "input_skip"
  return config
