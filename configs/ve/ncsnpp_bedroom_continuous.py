"""NCSN++ cont. on LSUN bedroom 256x256 with the VE SDE: the 256x256 defaults (Fig. 1, App. H).

Released code: configs/ve/bedroom_ncsnpp_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_bedroom_continuous.py --workdir=workdirs/bedroom \
  --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  return get_default_configs()  # the default is this config
