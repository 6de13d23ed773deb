"""NCSN++ cont. (deep: 8 residual blocks per resolution) on CIFAR-10, VE SDE (Tables 2-3).

Released code: configs/ve/cifar10_ncsnpp_deep_continuous.py.
Run: python main.py --config=configs/ve/ncsnpp_cifar10_deep_continuous.py \
  --workdir=workdirs/cifar10_ncsnpp_deep_ve --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.n_iters = 950_000
  config.model.num_res_blocks = 8
  return config
