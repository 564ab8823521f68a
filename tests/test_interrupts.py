"""A stop signal is never lost, even where Python can only print its exception."""

from __future__ import annotations

import gc
import os
import signal
import sys

import pytest

from mitosis.interrupts import TrialInterrupted, sigterm_as_interrupt


class _SignalsWhileCollected:
    """Sends a signal from ``__del__``, where a raised exception is printed and dropped."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        sum(range(1000))  # the handler runs here, inside __del__


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, TrialInterrupted)],
)
def test_a_signal_swallowed_in_a_finalizer_is_raised_at_the_next_check(
    signum: int, raised: type[BaseException], monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: dropped.append(report.exc_type))
    with sigterm_as_interrupt() as stop:
        _SignalsWhileCollected(signum)  # collected at once: the exception is dropped
        gc.collect()
        assert dropped == [raised]
        with pytest.raises(raised):
            stop.raise_if_received()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_without_a_signal_nothing_is_raised() -> None:
    with sigterm_as_interrupt() as stop:
        stop.raise_if_received()
