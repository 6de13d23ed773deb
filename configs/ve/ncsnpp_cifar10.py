"""NCSN++ on CIFAR-10 with the discrete SMLD objective (VE, N = 1000 noise scales; Table 3).

Released code: configs/ve/cifar10_ncsnpp.py.
Run: python main.py --config=configs/ve/ncsnpp_cifar10.py --workdir=workdirs/cifar10_ncsnpp_smld \
  --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.continuous = False
  config.model.embedding_type = "positional"    # labels are noise-scale indices
  return config
