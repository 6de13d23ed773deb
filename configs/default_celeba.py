"""Default config for CelebA 64x64: the CIFAR-10 defaults with CelebA's data and noise scales.

Values follow the released score_sde code (configs/default_celeba_configs.py); every key and its
meaning is in configs/default_cifar10.py. Variants: configs/ve/*_celeba.py.
Run: python main.py --config=configs/ve/ncsnpp_celeba.py --workdir=workdirs/celeba --mode=train
Prepare from the aligned JPEGs (140 centre crop, 64x64, as released; train/ and test/ subfolders
give the splits): python main.py --config=configs/ve/ncsnpp_celeba.py --workdir=workdirs/prep \
  --mode=prepare --config.data.image_folder=img_align_celeba --config.data.data_dir=DIR
"""
from configs.default_cifar10 import get_default_configs as cifar10_defaults


def get_default_configs():
  config = cifar10_defaults()
  config.sampling.snr = 0.17
  config.eval.num_samples = 20_000              # the whole test split (19,962 images)

  data = config.data
  data.dataset = "celeba"
  data.image_size = 64

  config.sde.sigma_max = 90.0  # about the max distance between 64x64 CelebA images
  return config
