"""DDPM (Ho et al. 2020) on LSUN church_outdoor 256x256: discrete VP objective, ancestral sampling.

Released code: configs/vp/ddpm/church.py.
Run: python main.py --config=configs/vp/ddpm_church.py --workdir=workdirs/church_ddpm --mode=train
"""
from configs.vp import ddpm_bedroom


def get_config():
  config = ddpm_bedroom.get_config()  # identical but for the dataset
  config.data.dataset = "lsun_church"
  return config
