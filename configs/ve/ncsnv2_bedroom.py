"""NCSNv2 (Song & Ermon 2020) on LSUN bedroom 128x128: 1086 scales in [0.01, 190].

Released code: configs/ve/ncsnv2/bedroom.py (its `training.continuouse` typo left training
continuous there; the discrete NCSNv2 objective is meant and set here).
Run: python main.py --config=configs/ve/ncsnv2_bedroom.py --workdir=workdirs/bedroom_ncsnv2 \
  --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.batch_size = 128
  config.training.continuous = False

  sampling = config.sampling
  sampling.predictor = "none"
  sampling.corrector = "ald"
  sampling.n_steps_each = 3
  sampling.snr = 0.095

  config.data.image_size = 128

  model = config.model
  model.name = "ncsnv2_128"
  config.sde.sigma_max = 190.0
  config.sde.num_scales = 1086
  config.sampling.num_steps = config.sde.num_scales  # PC steps = N, as released
  config.training.ema_rate = 0.9999
  model.normalization = "InstanceNorm++"
  model.nonlinearity = "elu"

  optim = config.optim
  optim.lr = 1e-4
  optim.warmup = 0
  optim.grad_clip = -1.0
  return config
