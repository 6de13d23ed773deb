"""2-D toy data x SDE: `--config=configs/toy.py:DATASET,SDE`.

DATASET: swiss_roll | checkerboard | two_moons | eight_gaussians | gmm;
SDE: vesde | vpsde | subvpsde | edm (EDM: its preconditioning, loss and 18-step Heun sampler).
Run: python main.py --config=configs/toy.py:checkerboard,vesde --workdir=workdirs/cb_ve --mode=train
"""
from configs.common import apply_sde
from configs.default_toy import get_default_configs
from configs.errors import UserError
from data_sources.toy import TOY_DATASETS


def get_config(arg: str = "swiss_roll,vpsde"):
  names = [s.strip() for s in arg.split(",")]
  datasets = [*TOY_DATASETS, "gmm"]
  if len(names) != 2 or names[0] not in datasets:
    raise UserError(f"configs/toy.py takes DATASET,SDE with DATASET one of {datasets}, e.g. "
                    f"--config=configs/toy.py:swiss_roll,vpsde; got {arg!r}.")
  dataset, sde = names
  config = get_default_configs()
  config.data.dataset = dataset
  return apply_sde(config, sde)
