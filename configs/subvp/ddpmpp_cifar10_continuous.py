"""DDPM++ cont. on CIFAR-10 with the sub-VP SDE, Euler-Maruyama sampling (Table 3).

Released code: configs/subvp/cifar10_ddpmpp_continuous.py.
Run: python main.py --config=configs/subvp/ddpmpp_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ddpmpp_subvp --mode=train
"""
from configs.vp import ddpmpp_cifar10_continuous as vp_config


def get_config():
  config = vp_config.get_config()  # identical but for the SDE
  config.sde.name = "subvpsde"
  return config
