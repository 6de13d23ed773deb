"""Every `python main.py ...` command in README.md parses: its flags and config keys exist, its
config file loads and passes the config checks (an inverse problem's too), and a command without --config names a workdir
that an earlier command trains."""
import pathlib
import re
import shlex
import sys

import pytest
from absl import flags

import main
from workflows import build, inverse

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMAND = re.compile(r"python main\.py((?:(?!&&)[^\"\n])*)")


def readme_commands() -> list:
  """The argument lists of the README's main.py commands, in order."""
  text = (ROOT / "README.md").read_text(encoding="utf-8")
  commands = []
  for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
    for line in block.replace("\\\n", " ").splitlines():
      commands += [shlex.split(args, comments=True) for args in COMMAND.findall(line)]
  return commands


COMMANDS = readme_commands()


def parse(args: list) -> flags.FlagValues:
  """main.py's flags parsed from args in a fresh FlagValues (sys.argv too: ml_collections reads
  the --config of --config.* overrides there)."""
  values, saved = flags.FlagValues(), sys.argv
  main.define_flags(values)
  sys.argv = ["main.py", *args]
  try:
    assert values(sys.argv) == ["main.py"], args
  finally:
    sys.argv = saved
  return values


def test_the_readme_has_commands_for_every_mode():
  modes = {a.split("=", 1)[1] for args in COMMANDS for a in args if a.startswith("--mode=")}
  assert len(COMMANDS) >= 20 and modes >= {"sample", "likelihood", "eval", "import", "prepare",
                                            "train_classifier"}, modes


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[-60:] for a in COMMANDS])
def test_readme_command_parses(args, monkeypatch):
  monkeypatch.chdir(ROOT)
  if not any(a.startswith("--config=") for a in args):  # the config the workdir recorded
    workdir = next(a for a in args if a.startswith("--workdir="))
    earlier = COMMANDS[:COMMANDS.index(args)]
    assert any(workdir in a and any(b.startswith("--config=") for b in a) for a in earlier), args
    return
  config = parse(args).config
  build.check_config(config)
  if config.sampling.task in ("inpaint", "colorize", "super_resolution") and "--mode=sample" in args:
    inverse.check_inverse_config(config)
