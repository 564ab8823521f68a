"""Threads that run jupyter_client's and papermill's coroutines, each in a loop of its own,
and the turns this process's threads take to import."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

# Held while a thread imports what it needs in the background (jupyter_client to drive a
# kernel, papermill and nbconvert ahead of the trials, planning's modules): threads that
# import at once can fail. CPython raises _DeadlockError when one thread imports a package
# while another imports one of its submodules by name (3.11 did so on importlib.resources,
# which both jupyter_client and papermill import), and the GIL runs one import at a time
# anyway.
importing = threading.RLock()


def import_in_turn(module: str) -> None:
    """Import ``module`` holding ``importing``, unless it is imported already: a thread that
    needs nothing new never waits for another's imports."""
    if module not in sys.modules:
        with importing:
            importlib.import_module(module)


def in_own_loop(target: Callable[..., None]) -> Callable[..., None]:
    """``target`` for a thread of its own, which closes the event loop that jupyter_core's
    ``run_sync`` made for the thread. Left open, each loop keeps three descriptors until
    the garbage collector happens upon it, and a long sweep makes several per trial."""

    def run(*args: Any) -> None:
        # Imported here, in the thread: the runner's first kernel starts before asyncio is.
        import_in_turn("asyncio")
        import asyncio

        try:
            target(*args)
        finally:
            with contextlib.suppress(RuntimeError):  # the thread never made one
                loop = asyncio.get_event_loop_policy().get_event_loop()
                if not loop.is_running():
                    loop.close()

    return run
