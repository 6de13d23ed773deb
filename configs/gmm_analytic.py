"""The exact score of a 2-D Gaussian mixture (no training): samplers and likelihood vs ground truth.

`--config=configs/gmm_analytic.py:SDE` with SDE in vesde | vpsde | subvpsde | edm. The label of a
point is its component: the classifier is the exact perturbed one (responsibilities) and, with
model.class_conditional, the score is the exact class-conditional one, so classifier guidance
and CFG also run against ground truth with no training.
Run: python main.py --config=configs/gmm_analytic.py:vpsde --workdir=workdirs/gmm --mode=sample
  python main.py --config=configs/gmm_analytic.py:vpsde --workdir=workdirs/gmm --mode=sample \
    --config.sampling.guidance.method=classifier --config.sampling.guidance.class_label=1
"""
from configs.common import apply_sde
from configs.default_toy import get_default_configs


def get_config(sde: str = "vpsde"):
  config = get_default_configs()
  config.data.dataset = "gmm"
  config.model.name = "gmm_analytic"
  config.classifier.name = "gmm_analytic"
  config.data.num_classes = len(config.data.gmm_weights)
  return apply_sde(config, sde)
