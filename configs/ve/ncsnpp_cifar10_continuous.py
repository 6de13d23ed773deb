"""NCSN++ (cont.) on CIFAR-10 with the VE SDE (Song et al. 2021, Table 3): the CIFAR-10 defaults.

Released code: configs/ve/cifar10_ncsnpp_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ncsnpp_ve --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  return get_default_configs()  # the default is this config: continuous VE, NCSN++, PC sampling
