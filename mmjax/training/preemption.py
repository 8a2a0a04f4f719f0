"""Preemption: SIGINT/SIGTERM become a checkpoint and a clean exit.

Inside the training steps a signal sets a flag that the loop reads between
steps (it then checkpoints and raises `Preempted`); outside them (loading
data, compiling, evaluating) it raises `Preempted` at once, since nothing
written is lost there.
"""

import contextlib
import signal

import jax


def bound_run_ahead(pending, limit):
  """Blocks until at most `limit` of the dispatched steps are unfinished.

  `pending` holds the outputs of the steps dispatched since the last flush,
  oldest first. Without a bound the loop dispatches up to the next metrics
  flush ahead of the device; signals are handled between steps, so on slow
  steps a SIGTERM would wait for dozens of steps to finish. A few steps in
  flight still hide dispatch.
  """
  if limit > 0 and len(pending) > limit:
    jax.block_until_ready(pending[-1 - limit])


class Preempted(Exception):
  """Raised on SIGINT/SIGTERM: after a checkpoint was saved when `step` is
  given (inside the training steps), else outside them (loading data,
  compiling, evaluating), where stopping loses nothing already written."""

  def __init__(self, signum, step=None):
    if step is None:
      msg = (f"stopped by signal {signum} outside the training steps; what "
             "the workdir holds is kept, re-run the same command to resume")
    else:
      msg = (f"stopped by signal {signum} at step {step}; checkpoint saved, "
             "re-run the same command to resume")
    super().__init__(msg)
    self.signum = signum


@contextlib.contextmanager
def stop_on_signals():
  """SIGINT/SIGTERM raise `Preempted` wherever the main thread is.

  Around a whole command: the training loop sets its own handler (a flag
  checked between steps, so it checkpoints first); outside it, e.g. while a
  dataset is generated or a step compiles, the default would end the process
  with no message (SIGTERM) or a traceback (SIGINT). Data generation runs in
  spawned processes, which do not inherit these handlers.
  """

  def handle(signum, frame):
    del frame
    raise Preempted(signum)

  old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, h in old.items():
      signal.signal(s, h)


class SignalFlag:
  """Turns SIGINT/SIGTERM into a flag checked between steps."""

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    for s in (signal.SIGINT, signal.SIGTERM):
      self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.received = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)
