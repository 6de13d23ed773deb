"""The exact score of a 2-D Gaussian mixture (no training): samplers and likelihood vs ground truth.

`--config=configs/gmm_analytic.py:SDE` with SDE in vesde | vpsde | subvpsde | edm.
Run: python main.py --config=configs/gmm_analytic.py:vpsde --workdir=workdirs/gmm --mode=sample
"""
from configs.common import apply_sde
from configs.default_toy import get_default_configs


def get_config(sde: str = "vpsde"):
  config = get_default_configs()
  config.data.dataset = "gmm"
  config.model.name = "gmm_analytic"
  return apply_sde(config, sde)
