"""DDPM on CIFAR-10 without noise-level conditioning (NCSNv2 technique 3), discrete VP objective.

Released code: configs/vp/ddpm/cifar10_unconditional.py.
Run: python main.py --config=configs/vp/ddpm_cifar10_unconditional.py \
  --workdir=workdirs/cifar10_ddpm_uncond --mode=train
"""
from configs.vp import ddpm_cifar10


def get_config():
  config = ddpm_cifar10.get_config()  # identical but for the conditioning
  config.model.conditional = False
  return config
