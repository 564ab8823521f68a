"""Ctrl-C and SIGTERM, as the runner turns them into the end of a trial."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class TrialInterrupted(BaseException):
    """Ctrl-C or SIGTERM reached the runner while a trial was executing."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, turn SIGTERM into ``TrialInterrupted`` for the block's duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise TrialInterrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
