"""DDPM++ cont. (deep: 8 residual blocks per resolution) on CIFAR-10, sub-VP SDE (Tables 2-3).

Released code: configs/subvp/cifar10_ddpmpp_deep_continuous.py.
Run: python main.py --config=configs/subvp/ddpmpp_cifar10_deep_continuous.py \
  --workdir=workdirs/cifar10_ddpmpp_deep_subvp --mode=train
"""
from configs.vp import ddpmpp_cifar10_deep_continuous as vp_config


def get_config():
  config = vp_config.get_config()  # identical but for the SDE
  config.sde.name = "subvpsde"
  return config
