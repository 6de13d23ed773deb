"""DDPM (Ho et al. 2020) on CelebA-HQ 256x256: discrete VP objective, ancestral sampling.

Released code: configs/vp/ddpm/celebahq.py.
Run: python main.py --config=configs/vp/ddpm_celebahq.py \
  --workdir=workdirs/celebahq_ddpm --mode=train
"""
from configs.vp import ddpm_bedroom


def get_config():
  config = ddpm_bedroom.get_config()  # identical but for the dataset
  config.data.dataset = "celebahq"
  return config
