"""DDPM network on CIFAR-10 trained with the continuous VP SDE, Euler-Maruyama sampling (Table 3).

Released code: configs/vp/ddpm/cifar10_continuous.py.
Run: python main.py --config=configs/vp/ddpm_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ddpm_vp --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  config.sde.name = "vpsde"
  training.reduce_mean = True

  sampling = config.sampling
  sampling.predictor = "euler_maruyama"
  sampling.corrector = "none"
  sampling.eps = 1e-3

  config.data.centered = True

  model = config.model
  model.name = "ddpm"
  model.scale_by_sigma = False
  config.training.ema_rate = 0.9999
  model.num_res_blocks = 2
  return config
