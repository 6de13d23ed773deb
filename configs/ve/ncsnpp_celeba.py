"""NCSN++ on CelebA 64x64 with the discrete SMLD objective (VE, N = 1000 scales up to sigma 90).

Released code: configs/ve/celeba_ncsnpp.py.
Run: python main.py --config=configs/ve/ncsnpp_celeba.py \
  --workdir=workdirs/celeba_ncsnpp --mode=train
"""
from configs.default_celeba import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.continuous = False
  config.model.embedding_type = "positional"    # labels are noise-scale indices
  return config
