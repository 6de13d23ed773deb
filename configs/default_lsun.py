"""Default config for 256x256 (and 1024x1024) images: LSUN bedroom / church, FFHQ, CelebA-HQ.

The CIFAR-10 defaults (every key and its meaning: configs/default_cifar10.py) with the released
score_sde code's configs/default_lsun_configs.py values; the model is the 256x256 NCSN++ of
configs/ve/ncsnpp_bedroom_continuous.py. The 1024x1024 configs (ncsnpp_{ffhq,celebahq}_1024_*)
start from here too, where the released code wrote them out in full.
Run: python main.py --config=configs/ve/ncsnpp_bedroom_continuous.py --workdir=workdirs/bedroom \
  --mode=train
Prepare from a folder of images (LSUN exported from its LMDB, FFHQ or CelebA-HQ PNGs), cropped
and resized as released, e.g. python main.py --config=configs/ve/ncsnpp_ffhq_256_continuous.py \
  --workdir=workdirs/prep --mode=prepare --config.data.image_folder=ffhq --config.data.data_dir=DIR
"""
from configs.default_cifar10 import get_default_configs as cifar10_defaults


def get_default_configs():
  config = cifar10_defaults()

  training = config.training
  training.batch_size = 64
  training.n_iters = 2_400_000
  training.snapshot_freq_for_preemption = 5000

  config.sampling.snr = 0.075
  config.sampling.batch_size = 512
  config.eval.num_samples = 50_000              # capped at the test split's size
  config.eval.batch_size = 512

  data = config.data
  data.dataset = "lsun_bedroom"
  data.image_size = 256

  model = config.model
  config.sde.sigma_max = 378.0  # about the max distance between 256x256 bedrooms
  config.sde.num_scales = 2000
  config.sampling.num_steps = config.sde.num_scales  # PC steps = N, as released
  model.dropout = 0.0
  model.ch_mult = (1, 1, 2, 2, 2, 2, 2)         # 256 -> 4
  model.num_res_blocks = 2
  model.progressive = "output_skip"
  model.progressive_input = "input_skip"
  return config
