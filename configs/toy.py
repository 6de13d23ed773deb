"""2-D toy data x SDE: `--config=configs/toy.py:DATASET,SDE`.

DATASET: swiss_roll | checkerboard | two_moons | eight_gaussians | gmm;  SDE: vesde | vpsde | subvpsde.
Run: python main.py --config=configs/toy.py:checkerboard,vesde --workdir=workdirs/cb_ve --mode=train
"""
from configs.default_toy import get_default_configs


def get_config(arg: str = "swiss_roll,vpsde"):
  dataset, sde = (s.strip() for s in arg.split(","))
  config = get_default_configs()
  config.data.dataset = dataset
  config.sde.name = sde
  if sde == "vesde":  # NCSN-style: the network sees log sigma and its output is divided by sigma
    config.model.embedding_type = "fourier"
    config.model.scale_by_sigma = True
  return config
