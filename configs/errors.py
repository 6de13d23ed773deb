"""The project's user-error types: bad input that main.py reports on one line.

Raise them at the config boundary and wherever input is validated (an unknown name, a mistyped or
out-of-range setting, a missing file, a checkpoint that does not fit). Any other exception is a
bug: main.py shows its traceback and asks for a report.
"""
import contextlib


class UserError(ValueError):
  """Bad input. `message` says what to do on one line; `detail` (e.g. the paths searched) is
  shown only with --verbose."""

  def __init__(self, message: str, detail: str = ""):
    super().__init__(message)
    self.detail = detail

  def __str__(self):
    return f"{self.args[0]} {self.detail}".strip()


class MissingFileError(UserError, FileNotFoundError):
  """A file or folder the input names does not exist (a dataset, weights, a checkpoint)."""


class NonFiniteLossError(UserError, FloatingPointError):
  """Training diverged; the message names the last good checkpoint and what to change."""


class UserKeyError(UserError, KeyError):
  """A key the input lacks: a config key (mistyped, or moved), an array in a weights file."""


class ArgumentError(UserError):
  """A bad value of a library function's argument `argument`. The message names it as {arg}:
  plain calls show the argument's name, and the config boundary (config_keys) the config key
  that sets it."""

  def __init__(self, argument: str, message: str, detail: str = ""):
    super().__init__(message.replace("{arg}", argument), detail)
    self.argument, self.template = argument, message


class MissingFileArgumentError(ArgumentError, MissingFileError):
  """The file or folder that argument `argument` names (or would name) does not exist."""


@contextlib.contextmanager
def config_keys(key_of):
  """Inside, an ArgumentError becomes a UserError (a MissingFileError if it was one) naming the
  config key key_of(argument) and the flag that sets it (key_of: a function or a dict; None or
  absent: the error is left as is)."""
  try:
    yield
  except ArgumentError as err:
    key = key_of(err.argument) if callable(key_of) else key_of.get(err.argument)
    if key is None:
      raise
    message = f"{err.template.replace('{arg}', key)} Set --config.{key}=..."
    kind = MissingFileError if isinstance(err, MissingFileError) else UserError
    raise kind(message, err.detail) from err
