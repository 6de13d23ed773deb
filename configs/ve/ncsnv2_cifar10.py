"""NCSNv2 (Song & Ermon 2020) on CIFAR-10: 232 scales in [0.01, 50], annealed Langevin sampling.

Released code: configs/ve/ncsnv2/cifar10.py (network 'ncsnv2_64' there).
Run: python main.py --config=configs/ve/ncsnv2_cifar10.py --workdir=workdirs/cifar10_ncsnv2 \
  --mode=train
"""
from configs.default_cifar10 import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.continuous = False

  sampling = config.sampling
  sampling.predictor = "none"
  sampling.corrector = "ald"
  sampling.n_steps_each = 5
  sampling.snr = 0.176

  model = config.model
  model.name = "ncsnv2"
  config.sde.num_scales = 232
  config.sampling.num_steps = config.sde.num_scales  # PC steps = N, as released
  model.normalization = "InstanceNorm++"
  model.nonlinearity = "elu"

  optim = config.optim
  optim.lr = 1e-4
  optim.warmup = 0
  optim.grad_clip = -1.0
  return config
