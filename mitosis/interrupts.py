"""Ctrl-C and SIGTERM, as the runner turns them into the end of a trial."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class TrialInterrupted(BaseException):
    """Ctrl-C or SIGTERM reached the runner while a trial was executing."""


class StopSignal:
    """The stop signal that reached the block, kept after its exception is raised.

    Python runs a signal's handler wherever the main thread happens to be, and an exception
    raised inside a weakref callback or a ``__del__`` is printed and dropped ("Exception
    ignored in ..."). A loop that asks ``raise_if_received`` each turn still stops.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def raise_if_received(self) -> None:
        """Raise what the signal's handler raised, in case that exception was swallowed."""
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is not None:
            raise TrialInterrupted(signal.Signals(self.received).name)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[StopSignal]:
    """In the main thread, turn SIGTERM into ``TrialInterrupted`` for the block's duration.

    Ctrl-C still raises ``KeyboardInterrupt`` (unless someone installed a handler of their
    own); both are remembered in the yielded ``StopSignal``.
    """
    stop = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        stop.received = signum
        stop.raise_if_received()

    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
