"""One function per `main.py --mode`: each takes (config, workdir)."""
from workflows.train import train

MODES = {"train": train}
