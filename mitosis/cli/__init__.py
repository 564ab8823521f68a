"""The ``mitosis-nb`` command line: parse arguments, call the library, print.

``parser`` is its grammar, ``program`` what it does with the arguments, ``run`` and
``browse`` its commands, ``output`` how it speaks. This module imports nothing more until
``command`` has started the first kernel of a run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["command", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mitosis-nb``; returns the exit code."""
    from mitosis.cli import program

    return program.main(argv)


def command() -> NoReturn:
    """The ``mitosis-nb`` program: ``main``, then a prompt exit with its code. A run's first
    kernel starts before anything else, to boot while this process imports what it needs
    and reads its arguments."""
    if starts_a_kernel(sys.argv[1:]):
        from mitosis.adapters.kernels.spawn import start_first_kernel

        start_first_kernel()
    from mitosis.cli.ending import exit_promptly

    exit_promptly(main())


def starts_a_kernel(argv: Sequence[str]) -> bool:
    """Whether ``argv`` asks for ``run`` in this interpreter's kernel, as far as one look
    tells: not for help, and naming no kernel with ``--kernel`` (or an abbreviation of it).
    The arguments are parsed later; a kernel started for a run that does not happen is
    killed as the process exits."""
    words = list(argv)
    while words and words[0] == "--verbose":
        words.pop(0)
    if not words or words[0] != "run":
        return False
    return not any(word in ("-h", "--help") or word.startswith("--k") for word in words)
