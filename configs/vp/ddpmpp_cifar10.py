"""DDPM++ on CIFAR-10 with the discrete VP (DDPM) objective, ancestral sampling (Table 3).

DDPM++ is the NCSN++ network without FIR resampling or progressive input, with positional
(timestep) embeddings. Released code: configs/vp/cifar10_ddpmpp.py.
Run: python main.py --config=configs/vp/ddpmpp_cifar10.py --workdir=workdirs/cifar10_ddpmpp \
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
  sampling.predictor = "ancestral_sampling"
  sampling.corrector = "none"
  sampling.eps = 1e-3

  config.data.centered = True

  model = config.model
  model.scale_by_sigma = False
  config.training.ema_rate = 0.9999
  model.fir = False
  model.progressive_input = "none"
  model.embedding_type = "positional"
  return config
