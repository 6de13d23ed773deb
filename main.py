"""Train a score model, sample from it, or compute likelihoods.

  python main.py --config=configs/toy.py:swiss_roll,vpsde --workdir=workdirs/swiss --mode=train
  python main.py --workdir=workdirs/swiss --mode=sample      # the config the workdir recorded
  python main.py --config=workdirs/swiss --workdir=workdirs/swiss --mode=likelihood
  python main.py --config=configs/ve/ncsnpp_cifar10_continuous.py --workdir=workdirs/ve \
      --mode=import --config.eval.import_path=path/to/checkpoint_24  # released weights

Any config field can be overridden, e.g. --config.training.n_iters=500; unknown fields are errors.
Bad input prints one line saying what to do; --verbose shows the traceback instead. Ctrl-C (or
SIGTERM) during training or eval saves and exits with 130 (143); rerunning resumes.
"""
import pathlib
import sys
import traceback

import tqdm
from absl import app, flags, logging
from ml_collections import config_flags

import configs
import workflows
from configs.errors import UserError
from training.interrupt import Interrupted

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues) -> None:
  """main.py's flags, in `flag_values` (FLAGS; tests parse commands in a fresh FlagValues)."""
  config_flags.DEFINE_config_file(
      "config", None, "Config file (configs/...), or a workdir holding config.json (its recorded "
      "config; the default when --workdir holds one).", flag_values=flag_values, lock_config=True)
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, samples and logs.",
                      flag_values=flag_values)
  flags.DEFINE_enum("mode", "train", list(workflows.MODES), "What to run.",
                    flag_values=flag_values)
  flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).",
                    flag_values=flag_values)
  flags.DEFINE_bool("verbose", False, "Show tracebacks of input errors.", flag_values=flag_values)
  flags.mark_flags_as_required(["workdir"], flag_values=flag_values)


define_flags(FLAGS)

# What a bad command line or config file raises while absl and ml_collections parse it.
PARSE_ERRORS = (flags.Error, ValueError, KeyError, AttributeError, OSError, TypeError)
BUG_REPORT = "This is a bug in score-sde-jax, not in your input: please report it with the traceback above."


def one_line(err: BaseException) -> str:
  """The error's message on one line (ml_collections quotes and escapes its KeyErrors; a
  UserError's detail is left to --verbose)."""
  message = str(err.args[0]) if isinstance(err, (UserError, KeyError)) and err.args else str(err)
  message = message.replace("\\n", " ").replace("\\'", "'")
  if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":
    message = message[1:-1]
  return " ".join(message.split())


def close_progress_bars() -> None:
  """Ends open tqdm bars, so that what follows starts on its own line."""
  for bar in list(getattr(tqdm.tqdm, "_instances", ())):
    bar.close()


def fail(err: BaseException):
  close_progress_bars()
  sys.exit(f"Error: {one_line(err)} (--verbose shows the traceback)")


def main(argv):
  del argv  # parse_flags rejects positional arguments
  if FLAGS.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
  logging.set_verbosity(logging.ERROR)  # orbax warns at every read-only restore
  try:
    workflows.MODES[FLAGS.mode](FLAGS.config, FLAGS.workdir)
  except Interrupted as err:
    close_progress_bars()
    print(err, file=sys.stderr)
    sys.exit(err.exit_code)
  except KeyboardInterrupt:
    close_progress_bars()
    print(f"Interrupted: --mode={FLAGS.mode} saves nothing part-way; rerun it.", file=sys.stderr)
    sys.exit(130)
  except UserError as err:
    if FLAGS.verbose:
      raise
    fail(err)
  except Exception:  # pylint: disable=broad-except
    close_progress_bars()
    traceback.print_exc()
    sys.exit(BUG_REPORT)


def recorded_config_args(argv: list) -> list:
  """argv with `--config=WORKDIR` (or no --config, when --workdir holds config.json) replaced by
  the config that workdir recorded (configs/recorded.py)."""
  values = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv[1:] if "=" in a}
  config, workdir = values.get("--config"), values.get("--workdir")
  if config is None and workdir and (pathlib.Path(workdir) / "config.json").is_file():
    return [argv[0], f"--config={configs.RECORDED}:{workdir}", *argv[1:]]  # before overrides
  if config is not None and pathlib.Path(config).is_dir():
    return [f"--config={configs.RECORDED}:{config}" if a == f"--config={config}" else a
            for a in argv]
  return argv


def parse_flags(argv):
  """absl's flag parsing with config errors (moved keys, mistyped overrides, extra arguments) on
  one line."""
  overridden = [a[len("--config."):].split("=")[0] for a in argv[1:] if a.startswith("--config.")]
  try:
    configs.check_moved_keys(overridden)
    argv = recorded_config_args(argv)
    specs = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")]
    if specs:
      configs.load_config(specs[-1])  # a missing file or a bad argument, on one line
    sys.argv = argv  # ml_collections finds the --config of the --config.* overrides there
    rest = FLAGS(argv)
    if len(rest) > 1:
      raise UserError(f"Unexpected arguments {rest[1:]}: every option is a --flag=value "
                      "(python main.py --help lists them).")
    if FLAGS.config is None:
      raise UserError(f"Pass --config=FILE (configs/...): --workdir={FLAGS.workdir} holds no "
                      "config.json to reuse.")
    configs.check_solver_overrides(FLAGS.config, overridden)
    return rest
  except PARSE_ERRORS as err:
    if "--verbose" in argv:
      raise
    fail(err)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
