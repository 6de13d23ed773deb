"""NCSN++ cont. on FFHQ 1024x1024 with the VE SDE (nf = 16, 8 resolutions).

Released code: configs/ve/ffhq_ncsnpp_continuous.py (a stand-alone file there).
Run: python main.py --config=configs/ve/ncsnpp_ffhq_1024_continuous.py \
  --workdir=workdirs/ffhq_1024 --mode=train
"""
from configs.default_lsun import get_default_configs


def get_config():
  config = get_default_configs()
  training = config.training
  training.batch_size = 8
  training.reduce_mean = True

  config.sampling.snr = 0.15
  # Global batches, sized for one 16 GB accelerator (multiply by the device count). Measured by
  # `python benchmarks/memory.py --configs ffhq_1024` (XLA's compiled memory, float32): one score
  # evaluation (a PC / solver step) peaks at 1.18 / 3.53 / 12.96 GiB at batch 1 / 4 / 16, i.e.
  # 0.39 GiB of params + 0.79 GiB per image, so 16 images take 13 GiB and 20 would take 16.1.
  # The likelihood's VJP keeps a forward pass's activations: the train step at batch 8 needs
  # 62.3 GiB of temporaries, ~7.8 GiB per image, so one image per 16 GB device.
  # (The released code used 1024 for both, on TPU pods.)
  config.sampling.batch_size = 16
  config.eval.batch_size = 1

  config.data.dataset = "ffhq"
  config.data.image_size = 1024

  model = config.model
  config.sde.sigma_max = 1348.0
  config.training.ema_rate = 0.9999
  model.nf = 16
  model.ch_mult = (1, 2, 4, 8, 16, 32, 32, 32)  # 1024 -> 8
  model.num_res_blocks = 1
  return config
