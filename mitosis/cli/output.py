"""How the command line speaks: exit codes, text for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from mitosis.core.terminal import inert

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STORAGE = 74  # sysexits.h's EX_IOERR: the disk refused a write (full, over quota, failing)
EXIT_CLOSED_PIPE = 141  # as a shell reports a process that SIGPIPE ended


def say(text: object, file: TextIO | None = None, flush: bool = False) -> None:
    """Print for a person: what records and experiments wrote is shown, never obeyed."""
    print(inert(str(text)), file=file or sys.stdout, flush=flush)


def print_json(data: Any) -> None:
    from mitosis.core.record import plain_json

    print(json.dumps(plain_json(data), indent=2, default=str, allow_nan=False))
