"""The NCSN++ network on CIFAR-10 with the sub-VP SDE, Euler-Maruyama sampling.

Released code: configs/subvp/cifar10_ncsnpp_continuous.py.
Run: python main.py --config=configs/subvp/ncsnpp_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ncsnpp_subvp --mode=train
"""
from configs.vp import ncsnpp_cifar10_continuous as vp_config


def get_config():
  config = vp_config.get_config()  # identical but for the SDE
  config.sde.name = "subvpsde"
  return config
