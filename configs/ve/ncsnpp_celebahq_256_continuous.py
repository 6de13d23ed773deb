"""NCSN++ cont. on CelebA-HQ 256x256 with the VE SDE.

Released code: configs/ve/celebahq_256_ncsnpp_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_celebahq_256_continuous.py \
  --workdir=workdirs/celebahq_256 --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  config.data.dataset = "celebahq"
  config.sde.sigma_max = 348.0
  return config
