"""Wall-clock deadlines: one for the whole push (`--timeout`), one for each request within it.

A socket's timeout bounds each read, not a request: a registry that sends one byte every few
seconds never trips it, and holds the push for good. So the time is kept here, and an interval
timer (SIGALRM) interrupts whatever blocks when it runs out: connecting, sending, waiting for
headers, reading a body. Signals reach the main thread only, which is where the push runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator


class Stalled(Exception):
    """A request got no complete answer within its own deadline: worth another attempt."""


class OutOfTime(Exception):
    """The push's deadline passed: nothing more is sent."""


class _Rang(BaseException):
    """The timer ran out. A BaseException, so that no library's `except Exception` on the
    way up swallows it; it never leaves this module."""


def _ring(signum: int, frame: object) -> None:
    raise _Rang


@contextlib.contextmanager
def _timer(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Deadline:
    """The push's deadline, `seconds` from now; `within` bounds one step of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def expired(self) -> str:
        """What a push that ran out of time says."""
        return f"the push ran out of time (--timeout {self.seconds:g} s)"

    @contextlib.contextmanager
    def within(self, seconds: float | None = None) -> Iterator[None]:
        """Runs the block for at most `seconds` (None: until the push's deadline). Raises
        Stalled when those run out first, OutOfTime when the push's deadline does (or has)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("deadlines use SIGALRM: the push must run in the main thread")
        remaining = self.remaining()
        if remaining <= 0:
            raise OutOfTime(self.expired())
        step_first = seconds is not None and seconds < remaining
        try:
            with _timer(seconds if step_first else remaining):
                yield
        except _Rang:
            if step_first:
                raise Stalled(f"no complete answer within {seconds:g} s") from None
            raise OutOfTime(self.expired()) from None
