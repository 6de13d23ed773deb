"""The NCSN++ network (deep: 8 residual blocks per resolution) on CIFAR-10, sub-VP SDE.

Released code: configs/subvp/cifar10_ncsnpp_deep_continuous.py.
Run: python main.py --config=configs/subvp/ncsnpp_cifar10_deep_continuous.py \
  --workdir=workdirs/cifar10_ncsnpp_deep_subvp --mode=train
"""
from configs.vp import ncsnpp_cifar10_deep_continuous as vp_config


def get_config():
  config = vp_config.get_config()  # identical but for the SDE
  config.sde.name = "subvpsde"
  return config
