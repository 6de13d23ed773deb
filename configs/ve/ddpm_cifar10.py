"""The DDPM network (Ho et al. 2020) trained with the discrete SMLD objective (VE) on CIFAR-10.

Released code: configs/ve/cifar10_ddpm.py.
Run: python main.py --config=configs/ve/ddpm_cifar10.py --workdir=workdirs/cifar10_ddpm_smld \
  --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.continuous = False
  model = config.model
  model.name = "ddpm"
  model.num_res_blocks = 2
  return config
