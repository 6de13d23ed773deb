"""Train a score model, sample from it, or compute likelihoods.

  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=train
  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=sample
  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=likelihood
  python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py --workdir=workdirs/ve \
      --mode=import --config.eval.import_path=path/to/checkpoint_24  # released weights

Any config field can be overridden, e.g. --config.training.n_iters=500; unknown fields are errors.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

import configs
import workflows

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/...).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, samples and logs.")
flags.DEFINE_enum("mode", "train", list(workflows.MODES), "What to run.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
  logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO
  workflows.MODES[FLAGS.mode](FLAGS.config, FLAGS.workdir)


def parse_flags(argv):
  """absl's parser, after rejecting config keys that moved (configs.MOVED_KEYS) by name."""
  overridden = [a[len("--config."):].split("=")[0] for a in argv[1:] if a.startswith("--config.")]
  try:
    configs.check_moved_keys(overridden)
  except KeyError as err:
    sys.exit(f"Error: {err.args[0]}")
  return app.parse_flags_with_usage(argv)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
