"""The NCSN++ network on CIFAR-10 with the discrete VP (DDPM) objective, reverse-diffusion sampling.

Released code: configs/vp/cifar10_ncsnpp.py.
Run: python main.py --config=configs/vp/ncsnpp_cifar10.py --workdir=workdirs/cifar10_ncsnpp_ddpm \
  --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  config.sde.name = "vpsde"
  training.continuous = False
  training.reduce_mean = True

  sampling = config.sampling
  sampling.corrector = "none"
  sampling.eps = 1e-3

  config.data.centered = True

  model = config.model
  model.scale_by_sigma = False
  config.training.ema_rate = 0.9999
  model.embedding_type = "positional"
  return config
