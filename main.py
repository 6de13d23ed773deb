"""Train a score model, sample from it, or compute likelihoods.

  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=train
  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=sample
  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=likelihood
  python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py --workdir=workdirs/ve \
      --mode=import --config.eval.import_path=path/to/checkpoint_24  # released weights

Any config field can be overridden, e.g. --config.training.n_iters=500; unknown fields are errors.
Bad input prints one line saying what to do; --verbose shows the traceback instead.
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
flags.DEFINE_bool("verbose", False, "Show tracebacks of input errors.")
flags.mark_flags_as_required(["config", "workdir"])

# What bad input raises (unknown names, mistyped keys, missing files, mismatched checkpoints).
USER_ERRORS = (ValueError, KeyError, AttributeError, OSError, FloatingPointError)


def one_line(err: BaseException) -> str:
  """The error's message on one line (ml_collections quotes and escapes its KeyErrors)."""
  message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
  message = message.replace("\\n", " ").replace("\\'", "'")
  if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
    message = message[1:-1]
  return " ".join(message.split())


def fail(err: BaseException):
  sys.exit(f"Error: {one_line(err)} (--verbose shows the traceback)")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
  logging.set_verbosity(logging.ERROR)  # orbax warns at every read-only restore
  try:
    workflows.MODES[FLAGS.mode](FLAGS.config, FLAGS.workdir)
  except USER_ERRORS as err:
    if FLAGS.verbose:
      raise
    fail(err)


def parse_flags(argv):
  """absl's flag parsing with config errors (moved keys, mistyped overrides) on one line."""
  overridden = [a[len("--config."):].split("=")[0] for a in argv[1:] if a.startswith("--config.")]
  try:
    configs.check_moved_keys(overridden)
    return FLAGS(argv)
  except (flags.Error, *USER_ERRORS) as err:
    if "--verbose" in argv:
      raise
    fail(err)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
