"""Digits with a small NCSN++ (VE) or DDPM++ (VP, sub-VP): `--config=configs/digits.py:SDE`.

Run: python main.py --config=configs/digits.py:vpsde --workdir=workdirs/digits_vp --mode=train
"""
from configs.default_digits import get_default_configs


def get_config(sde: str = "vpsde"):
  config = get_default_configs()
  config.sde.name = sde
  if sde == "vesde":  # NCSN++: Fourier features of log sigma, output divided by sigma
    config.model.embedding_type = "fourier"
    config.model.scale_by_sigma = True
    config.model.fir = True
    config.model.progressive = "output_skip"
    config.model.progressive_input = "input_skip"
  return config
