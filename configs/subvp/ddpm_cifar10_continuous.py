"""The DDPM network on CIFAR-10 with the sub-VP SDE, Euler-Maruyama sampling (Table 3).

Released code: configs/subvp/cifar10_ddpm_continuous.py.
Run: python main.py --config=configs/subvp/ddpm_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ddpm_subvp --mode=train
"""
from configs.vp import ddpm_cifar10_continuous as vp_config


def get_config():
  config = vp_config.get_config()  # identical but for the SDE
  config.sde.name = "subvpsde"
  return config
