"""NCSN++ cont. on LSUN church_outdoor 256x256 with the VE SDE.

Released code: configs/ve/church_ncsnpp_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_church_continuous.py --workdir=workdirs/church \
  --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  config.data.dataset = "lsun_church"
  config.sde.sigma_max = 380.0
  return config
