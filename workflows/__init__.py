"""One function per `main.py --mode`: each takes (config, workdir)."""
from workflows.likelihood import likelihood
from workflows.prepare import prepare
from workflows.sample import sample
from workflows.train import train

MODES = {"train": train, "sample": sample, "likelihood": likelihood, "prepare": prepare}
