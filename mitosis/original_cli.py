"""The original mitosis's command line, unchanged: ``mitosis STEP ... -p -e -d -F --config -m``.

Its users have run scripts full of these lines. Each becomes the same request as
``mitosis-nb run``, and runs through the same code: the same trial, record, page, exit codes
and messages. mitosis-nb's own run options (``--note``, ``--workers``, ...) work here too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from mitosis import __version__
from mitosis.cli.ending import exit_promptly
from mitosis.cli.output import EXIT_USAGE
from mitosis.cli.parser import add_run_options
from mitosis.cli.program import handle
from mitosis.cli.run import run_command
from mitosis.core.steps import StepConfig
from mitosis.errors import ParameterError

PROGRAM = "mitosis"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, exit 2
        self.exit(EXIT_USAGE, f"{PROGRAM}: {message}; see {PROGRAM} --help.\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description="Run experiment steps as reproducible trials (the original mitosis's "
        "command line, run by mitosis-nb; `mitosis-nb --help` for browsing trials).",
    )
    parser.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        help="steps registered in [tool.mitosis.steps] of pyproject.toml, run in order",
    )
    parser.add_argument(
        "-m",
        "--module",
        metavar="MODULE",
        help="run MODULE's `run` with its `lookup_dict` as one step named after the module's "
        "last part (e.g. -m my_experiments.sho -p noise=low)",
    )
    parser.add_argument(
        "--version", action="version", version=f"mitosis (mitosis-nb) {__version__}"
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    add_run_options(parser)
    return parser


def module_step(module: str) -> StepConfig:
    """The step ``-m MODULE`` runs: ``MODULE:run`` with ``MODULE:lookup_dict``, as the original.

    ``MODULE`` may name an object in a module (``pkg.mod:Experiment``), whose ``run`` and
    ``lookup_dict`` are used. The step is named after the last part, which must be an
    identifier.
    """
    name, _, qualname = module.partition(":")
    inside = f"{qualname}." if qualname else ""
    step = (qualname or name).rpartition(".")[2]
    if not step.isidentifier() or not all(p.isidentifier() for p in name.split(".")):
        raise ParameterError(
            f"-m {module!r} is not an importable module name; give it as package.module, "
            "e.g. -m my_experiments.sho."
        )
    return StepConfig(name=step, run=f"{name}:{inside}run", lookup=f"{name}:{inside}lookup_dict")


def _without_step_prefix(option: str) -> str:
    """``-p [+]ANY.PREFIX.ARG=V`` as ``[+]ARG=V``: a module's one step takes every parameter,
    named with the module's prefix or without, as the original did."""
    flag = "+" if option.startswith("+") else ""
    name, sep, value = option.removeprefix("+").partition("=")
    return f"{flag}{name.rpartition('.')[2]}{sep}{value}"


def command() -> NoReturn:
    """The ``mitosis`` program (and ``python -m mitosis``): ``main``, then a prompt exit."""
    exit_promptly(main())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mitosis`` and ``python -m mitosis``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    args.program = PROGRAM

    def run() -> int:
        if bool(args.steps) == bool(args.module):
            raise ParameterError(
                "name the steps to run (registered in pyproject.toml) or one module with "
                "-m MODULE, not both and not neither; e.g. mitosis sine -p frequency=fast."
            )
        if args.module:
            step = module_step(args.module)
            args.steps, args.extra_steps = [step.name], [step]
            args.lookups = [_without_step_prefix(text) for text in args.lookups]
            args.literals = [_without_step_prefix(text) for text in args.literals]
        return run_command(args, argv)

    return handle(args, run)
