"""2-D toy data x SDE: `--config=configs/toy.py:DATASET,SDE`.

DATASET: swiss_roll | checkerboard | two_moons | eight_gaussians | gmm;
SDE: vesde | vpsde | subvpsde | edm (EDM: its preconditioning, loss and 18-step Heun sampler).
Run: python main.py --config=configs/toy.py:checkerboard,vesde --workdir=workdirs/cb_ve --mode=train
"""
from configs.common import apply_sde
from configs.default_toy import get_default_configs


def get_config(arg: str = "swiss_roll,vpsde"):
  dataset, sde = (s.strip() for s in arg.split(","))
  config = get_default_configs()
  config.data.dataset = dataset
  return apply_sde(config, sde)
