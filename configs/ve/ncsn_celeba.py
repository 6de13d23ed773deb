"""NCSN v1 (Song & Ermon 2019) on CelebA 64x64, and the NCSNv2 technique ablations.

`--config=configs/ve/ncsn_celeba.py[:TECHNIQUES]`, TECHNIQUES (NCSNv2 paper, Sec. 3-4):
  ""   : NCSN v1 as published: 10 scales in [0.01, 1], annealed Langevin with 100 steps each;
  "5"  : + EMA of the parameters (technique 5);
  "124": 500 scales up to sigma_max = 90, 5 Langevin steps each (techniques 1, 2, 4);
  "1245": techniques 1, 2, 4 and 5.
Released code: configs/ve/ncsn/celeba{,_5,_124,_1245}.py; scale_by_sigma stays False as there.
Run: python main.py --config=configs/ve/ncsn_celeba.py:1245 --workdir=workdirs/celeba_ncsn \
  --mode=train
"""
from configs.default_celeba import get_default_configs
from configs.errors import UserError


def get_config(techniques: str = ""):
  if techniques not in ("", "5", "124", "1245"):
    raise UserError(f"Unknown NCSN technique set {techniques!r}; choose '', '5', '124' or '1245'.")
  config = get_default_configs()
  config.training.continuous = False

  sampling = config.sampling
  sampling.predictor = "none"
  sampling.corrector = "ald"                    # annealed Langevin dynamics
  sampling.n_steps_each = 5 if "124" in techniques else 100
  sampling.snr = 0.128 if "124" in techniques else 0.316

  model = config.model
  model.name = "ncsn"
  model.scale_by_sigma = False
  config.sde.num_scales = 500 if "124" in techniques else 10
  config.sampling.num_steps = config.sde.num_scales  # PC steps = N, as released
  config.sde.sigma_max = 90.0 if "124" in techniques else 1.0
  config.training.ema_rate = 0.999 if "5" in techniques else 0.0
  model.normalization = "InstanceNorm++"
  model.nonlinearity = "elu"

  optim = config.optim
  optim.lr = 1e-3
  optim.warmup = 0
  optim.grad_clip = -1.0
  return config
