"""How the ``mitosis-nb`` and ``mitosis`` programs end: promptly, once their work is done.

A run has imported papermill, nbconvert, Pygments, Jinja2, pyzmq and more. Python's normal
exit frees every one of their objects, one by one: about 0.2 s after the last file was
written, which every command and every script that calls one waits for (mypy ends the same
way, for the same reason). The exit handlers still run and the output is flushed first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_promptly(code: int) -> NoReturn:
    """End the process with ``code``: run the exit handlers, flush the output, then leave
    without tearing the interpreter down. While a thread that is not a daemon still runs,
    Python's normal exit waits for it instead."""
    current = threading.current_thread()
    if any(t is not current and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that left says so in `code` already
            stream.flush()
    os._exit(code)
