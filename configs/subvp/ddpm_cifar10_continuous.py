"""The DDPM network on CIFAR-10 with the sub-VP SDE, Euler-Maruyama sampling (Table 3).

Released code: configs/subvp/cifar10_ddpm_continuous.py.
Run: python main.py --config=configs/subvp/ddpm_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ddpm_subvp --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  training.sde = "subvpsde"
  training.reduce_mean = True

  sampling = config.sampling
  sampling.predictor = "euler_maruyama"
  sampling.corrector = "none"
  sampling.eps = 1e-3

  config.data.centered = True

  model = config.model
  model.name = "ddpm"
  model.scale_by_sigma = False
  model.ema_rate = 0.9999
  model.num_res_blocks = 2
  return config
