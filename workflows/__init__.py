"""One function per `main.py --mode`: each takes (config, workdir); `load` is the Python API
(workflows.api) on the same code paths."""
from workflows.api import Model, load
from workflows.ems import estimate_ems
from workflows.encode import encode
from workflows.evaluate import evaluate, fid_stats
from workflows.import_released import import_checkpoint
from workflows.likelihood import likelihood
from workflows.prepare import prepare
from workflows.sample import sample
from workflows.schedule import make_schedule
from workflows.train import train
from workflows.train_classifier import train_classifier

MODES = {"train": train, "sample": sample, "likelihood": likelihood, "eval": evaluate,
         "fid_stats": fid_stats,
         "import": import_checkpoint,  # released score_sde / diffusers weights -> a workdir
         "prepare": prepare,  # datasets -> ArrayRecord files in data.data_dir
         "train_classifier": train_classifier,  # noise-conditional classifier for guidance
         "schedule": make_schedule,  # a time schedule (GITS, learned) for a solver and NFE
         "encode": encode,  # data -> latents at T along the probability-flow ODE, and back
         "ems": estimate_ems}  # DPM-Solver-v3's empirical model statistics
