"""DDPM (Ho et al. 2020) on LSUN bedroom 256x256: discrete VP objective, ancestral sampling.

Released code: configs/vp/ddpm/bedroom.py.
Run: python main.py --config=configs/vp/ddpm_bedroom.py --workdir=workdirs/bedroom_ddpm --mode=train
"""
from configs.default_lsun import get_default_configs


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

  config.data.dataset = "lsun_bedroom"
  config.data.centered = True

  model = config.model
  model.name = "ddpm"
  model.scale_by_sigma = False
  config.sde.num_scales = 1000
  config.training.ema_rate = 0.9999
  model.ch_mult = (1, 1, 2, 2, 4, 4)            # 256 -> 8

  config.optim.lr = 2e-5
  return config
