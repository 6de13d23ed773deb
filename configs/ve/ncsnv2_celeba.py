"""NCSNv2 (Song & Ermon 2020) on CelebA 64x64: 500 scales in [0.01, 90], annealed Langevin.

Released code: configs/ve/ncsnv2/celeba.py (network 'ncsnv2_64' there).
Run: python main.py --config=configs/ve/ncsnv2_celeba.py \
  --workdir=workdirs/celeba_ncsnv2 --mode=train
"""
from configs.default_celeba import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.continuous = False

  sampling = config.sampling
  sampling.predictor = "none"
  sampling.corrector = "ald"
  sampling.n_steps_each = 5
  sampling.snr = 0.128

  model = config.model
  model.name = "ncsnv2"
  config.sde.num_scales = 500
  config.sampling.num_steps = config.sde.num_scales  # PC steps = N, as released
  model.normalization = "InstanceNorm++"
  model.nonlinearity = "elu"

  optim = config.optim
  optim.lr = 1e-4
  optim.warmup = 0
  optim.grad_clip = -1.0
  return config
