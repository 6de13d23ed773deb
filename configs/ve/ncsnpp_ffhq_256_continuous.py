"""NCSN++ cont. on FFHQ 256x256 with the VE SDE.

Released code: configs/ve/ffhq_256_ncsnpp_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_ffhq_256_continuous.py --workdir=workdirs/ffhq_256 \
  --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  config.data.dataset = "ffhq"
  config.sde.sigma_max = 348.0
  return config
