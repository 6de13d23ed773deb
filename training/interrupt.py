"""Stopping long loops cleanly on SIGINT (Ctrl-C) and SIGTERM (how schedulers pre-empt jobs).

Inside `stop_requests()` the first signal only sets a flag: the loop finishes its unit of work
(a training step, an eval shard), saves, and raises `Interrupted`, whose exit code is what
schedulers expect (130 for SIGINT, 143 for SIGTERM). A second Ctrl-C aborts at once.
"""
import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
  """A loop stopped on a signal after saving its work; str() says what was saved."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class StopRequest:
  """The signal received inside `stop_requests()`, if any."""

  def __init__(self):
    self.signum = None

  def __bool__(self):
    return self.signum is not None

  def raise_if_set(self, message: str) -> None:
    """Raises Interrupted("Interrupted {message}; ...") if a signal came."""
    if self:
      raise Interrupted(f"Interrupted {message}; rerun the same command to resume.", self.signum)


@contextlib.contextmanager
def stop_requests():
  """Yields a StopRequest set by SIGINT / SIGTERM while the block runs (main thread only; the
  previous handlers are restored on exit). After the first signal, SIGINT raises
  KeyboardInterrupt again, so a second Ctrl-C stops without saving."""
  request = StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield request
    return

  def handle(signum, _):
    request.signum = signum
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"\n{signal.Signals(signum).name}: stopping after this step and saving "
          "(Ctrl-C again to stop without saving).", flush=True)

  previous = {s: signal.signal(s, handle) for s in SIGNALS}
  try:
    yield request
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
