"""The NCSN++ network on CIFAR-10 with the continuous VP SDE, Euler-Maruyama sampling.

Released code: configs/vp/cifar10_ncsnpp_continuous.py.
Run: python main.py --config=configs/vp/ncsnpp_cifar10_continuous.py \
  --workdir=workdirs/cifar10_ncsnpp_vp --mode=train
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
  model.scale_by_sigma = False
  config.training.ema_rate = 0.9999
  model.embedding_type = "positional"
  return config
