"""DDPM on CIFAR-10 without noise-level conditioning (NCSNv2 technique 3), discrete VP objective.

Released code: configs/vp/ddpm/cifar10_unconditional.py.
Run: python main.py --config=configs/vp/ddpm_cifar10_unconditional.py \
  --workdir=workdirs/cifar10_ddpm_uncond --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  training.sde = "vpsde"
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
  model.ema_rate = 0.9999
  model.num_res_blocks = 2
  model.conditional = False
  return config
