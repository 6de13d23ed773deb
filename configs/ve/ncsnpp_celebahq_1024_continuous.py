"""NCSN++ cont. on CelebA-HQ 1024x1024 with the VE SDE (nf = 16, 8 resolutions; Fig. 1).

Released code: configs/ve/celebahq_ncsnpp_continuous.py (a stand-alone file there).
Run: python main.py --config=configs/ve/ncsnpp_celebahq_1024_continuous.py \
  --workdir=workdirs/celebahq_1024 --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  config.training.batch_size = 8

  config.sampling.snr = 0.15
  # The FFHQ 1024 network: configs/ve/ncsnpp_ffhq_1024_continuous.py has the memory arithmetic.
  config.sampling.batch_size = 16
  config.eval.batch_size = 1

  config.data.dataset = "celebahq"
  config.data.image_size = 1024

  model = config.model
  config.sde.sigma_max = 1348.0
  config.training.ema_rate = 0.9999
  model.nf = 16
  model.ch_mult = (1, 2, 4, 8, 16, 32, 32, 32)  # 1024 -> 8
  model.num_res_blocks = 1
  return config
