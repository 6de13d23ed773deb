"""Every `python main.py ...` command in README.md parses: its flags and config keys exist (no
moved key), its solver options belong to its sampling method, its config file loads and passes
the config checks (a sampling command's task, guidance and inverse-problem settings too), and a
command without --config names a workdir that an earlier command trains."""
import pathlib
import re
import shlex
import sys

import pytest
from absl import flags

import configs
import main
from workflows import build
from workflows.sample import check_task

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
                                            "train_classifier", "schedule", "encode", "ems"}, modes


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[-60:] for a in COMMANDS])
def test_readme_command_parses(args, monkeypatch):
  monkeypatch.chdir(ROOT)
  if not any(a.startswith("--config=") for a in args):  # the config the workdir recorded
    workdir = next(a for a in args if a.startswith("--workdir="))
    earlier = COMMANDS[:COMMANDS.index(args)]
    assert any(workdir in a and any(b.startswith("--config=") for b in a) for a in earlier), args
    return
  overridden = [a[len("--config."):].split("=")[0] for a in args if a.startswith("--config.")]
  configs.check_moved_keys(overridden)
  config = parse(args).config
  configs.check_solver_overrides(config, overridden)
  build.check_config(config)
  if "--mode=sample" in args:
    check_task(config)  # the task, guidance and inverse-problem settings


KEY = re.compile(r"`(?:--config\.)?((?:data|model|sde|training|optim|sampling|eval|classifier)"
                 r"\.[\w.]*\w)")  # a config key in backticks, or the start of an override


def test_readme_names_only_current_config_keys():
  """Every config key the README names in `backticks` (prose too) is a key or section of the toy,
  digits or CIFAR-10 configs; an old key only where the README says what it became."""
  text = (ROOT / "README.md").read_text(encoding="utf-8")
  keys = set()
  for spec in ("configs/toy.py:swiss_roll,vpsde", "configs/digits.py:vpsde",
               "configs/ve/ncsnpp_cifar10_continuous.py"):
    keys |= configs.flat_keys(configs.load_config(str(ROOT / spec)))
  sections = {k.rsplit(".", 1)[0] for k in keys} | {k.split(".")[0] for k in keys}
  named = set(KEY.findall(text))
  assert len(named) >= 50 and "sampling.guidance.scale" in named, sorted(named)
  moved = {k for k in named if k in configs.MOVED_KEYS and not re.search(
      rf"`{re.escape(k)}` is\s+`{re.escape(configs.MOVED_KEYS[k])}`", text)}
  unknown = {k for k in named - keys - sections if k not in configs.MOVED_KEYS}
  assert not moved and not unknown, (sorted(moved), sorted(unknown))
