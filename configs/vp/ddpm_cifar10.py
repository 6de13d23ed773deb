"""DDPM (Ho et al. 2020) on CIFAR-10: discrete VP objective, ancestral sampling (Table 3).

Released code: configs/vp/ddpm/cifar10.py. 35.7M parameters in Ho et al.; 35,218,947 here and
in the released JAX code.
Run: python main.py --config=configs/vp/ddpm_cifar10.py --workdir=workdirs/cifar10_ddpm --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  config.sde.name = "vpsde"
  training.continuous = False
  training.reduce_mean = True

  sampling = config.sampling
  sampling.predictor = "ancestral_sampling"
  sampling.corrector = "none"
  sampling.eps = 1e-3

  config.data.centered = True

  model = config.model
  model.name = "ddpm"
  model.scale_by_sigma = False
  config.training.ema_rate = 0.9999
  model.num_res_blocks = 2
  return config
