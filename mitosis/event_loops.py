"""Threads that run jupyter_client's and papermill's coroutines, each in a loop of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


def in_own_loop(target: Callable[..., None]) -> Callable[..., None]:
    """``target`` for a thread of its own, which closes the event loop that jupyter_core's
    ``run_sync`` made for the thread. Left open, each loop keeps three descriptors until
    the garbage collector happens upon it, and a long sweep makes several per trial."""

    def run(*args: Any) -> None:
        # Imported here, in the thread: the runner's first kernel starts before asyncio is.
        import asyncio

        try:
            target(*args)
        finally:
            with contextlib.suppress(RuntimeError):  # the thread never made one
                loop = asyncio.get_event_loop_policy().get_event_loop()
                if not loop.is_running():
                    loop.close()

    return run
