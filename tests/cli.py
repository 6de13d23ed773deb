"""main.py as users run it, in real child processes that start in milliseconds: a forkserver that
has imported main.py once forks one process per command line (fresh flags, signals, exit code),
whose stdout and stderr go to files.

  with MainProcesses() as cli:
    result = cli.run("--config=configs/toy.py:swiss_roll,vpsde", "--workdir=w", "--mode=sample")
    result.returncode, result.stderr
"""
import dataclasses
import multiprocessing
import os
import pathlib
import re
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRESS = re.compile(r"\|.*\| *\d+/\d+ \[|\r")  # a tqdm bar: "desc:  5%|▌  | 1/20 [00:05<...]"


@dataclasses.dataclass
class Result:
  returncode: int
  stdout: str
  stderr: str

  @property
  def error_lines(self) -> list:
    """stderr without blank lines, progress bars and training's metric lines."""
    return [line for line in self.stderr.splitlines()
            if line.strip() and not PROGRESS.search(line) and not line.startswith("step=")]


def _child(argv: list, stdout: str, stderr: str, env: dict) -> None:
  """Runs `python main.py *argv` in this forked process (sys.exit sets the exit code)."""
  os.chdir(ROOT)
  os.environ.update(env)
  for fd, path in ((1, stdout), (2, stderr)):
    f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(f, fd)
    os.close(f)
  sys.stdout = open(1, "w", buffering=1, closefd=False)  # pylint: disable=consider-using-with
  sys.stderr = open(2, "w", buffering=1, closefd=False)  # pylint: disable=consider-using-with
  import main  # pylint: disable=import-outside-toplevel  # preloaded by the forkserver
  from absl import app  # pylint: disable=import-outside-toplevel
  sys.argv = ["main.py", *argv]
  app.run(main.main, argv=sys.argv, flags_parser=main.parse_flags)


class MainProcesses:
  """Starts children of a forkserver that preloaded main.py (its imports take seconds)."""

  def __init__(self):
    self._context = multiprocessing.get_context("forkserver")
    self._context.set_forkserver_preload(["main"])
    self._dir = tempfile.TemporaryDirectory(prefix="main_processes_")
    self._count = 0

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._dir.cleanup()

  def start(self, *argv: str, env: dict | None = None):
    """A running child and the paths of its stdout and stderr."""
    self._count += 1
    out, err = (os.path.join(self._dir.name, f"{self._count}.{name}") for name in ("out", "err"))
    process = self._context.Process(target=_child, args=(list(argv), out, err, env or {}))
    process.start()
    return process, out, err

  def run(self, *argv: str, env: dict | None = None, timeout: float = 300) -> Result:
    process, out, err = self.start(*argv, env=env)
    process.join(timeout)
    return finish(process, out, err)

  def run_until(self, text: str, *argv: str, timeout: float = 300):
    """Starts a child and waits until its stdout or stderr shows `text`: (process, out, err)."""
    process, out, err = self.start(*argv)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.is_alive():
      if any(os.path.exists(p) and text in pathlib.Path(p).read_text() for p in (out, err)):
        return process, out, err
      time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared: {finish(process, out, err)}")


def finish(process, out: str, err: str, timeout: float = 300) -> Result:
  """Waits for the child and reads what it wrote."""
  process.join(timeout)
  if process.exitcode is None:
    process.kill()
    process.join()
  read = lambda p: pathlib.Path(p).read_text() if os.path.exists(p) else ""
  return Result(process.exitcode, read(out), read(err))
