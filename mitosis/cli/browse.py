"""Looking at trials: ``list``, ``show``, ``compare``, ``reproduce``, ``index``, ``serve``,
``experiments`` and ``cache``. Each parses nothing and decides nothing: it calls the library
and prints."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from mitosis.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STORAGE,
    print_json,
    say,
)
from mitosis.errors import TrialNotFoundError


def _trials_folder_of(args: argparse.Namespace) -> Path:
    if args.trials_folder:
        folder = Path(args.trials_folder)
        if not folder.exists():  # a typo would otherwise read as "no trials"
            from mitosis.errors import TrialsFolderError

            raise TrialsFolderError(f"no trials folder at {folder}; check -F.")
        return folder
    from mitosis.adapters.config import load_config

    return load_config(args.config).trials_folder


def show_command(args: argparse.Namespace) -> int:
    from mitosis.core.progress import parse_progress
    from mitosis.core.summary import summarize_record
    from mitosis.dead_runs import runner_flag
    from mitosis.liveness import read_heartbeat
    from mitosis.trials import load_trial
    from mitosis.views import page_text, trial_text

    folder = _trials_folder_of(args)
    try:
        trial = load_trial(args.id, folder)
    except TrialNotFoundError:
        return _show_legacy(args, folder)
    running = trial.status == "running"
    # Where a running trial is: its heartbeat, which its runner rewrites as it goes.
    beat = read_heartbeat(trial.folder) if running else None
    if args.json:
        print_json({**trial.record, "progress": beat} if running else trial.record)
        return EXIT_OK
    flag = runner_flag(summarize_record(trial.id, trial.record)) if running else None
    progress = parse_progress(beat) if beat is not None else None
    say(trial_text(trial.record, page_text(trial.html_path), flag, progress))
    return EXIT_OK


def _show_legacy(args: argparse.Namespace, folder: Path) -> int:
    """``show`` of a trial the original mitosis wrote; not one either: the refusal stands."""
    import dataclasses

    from mitosis.trials import load_legacy_trial
    from mitosis.views import legacy_trial_text

    legacy = dataclasses.asdict(load_legacy_trial(args.id, folder))
    legacy = {"id": legacy["key"], "status": "legacy", **legacy}
    if args.json:
        print_json(legacy)
    else:
        say(legacy_trial_text(legacy, str(folder)))
    return EXIT_OK


def list_command(args: argparse.Namespace) -> int:
    import gc
    import shutil

    from mitosis.analysis import list_selected
    from mitosis.views import trial_table

    # What is read lives until exit: the cycle collector would only walk 100,000 rows again.
    gc.disable()
    # A table needs only each trial's brief; JSON and CSV, its whole summary.
    whole = bool(args.json or args.csv)
    folder = _trials_folder_of(args)
    found = list_selected(folder, args.where, args.experiment, args.status, whole)
    for warning in found.warnings:
        say(f"mitosis-nb: warning: {warning}", file=sys.stderr)
    if args.csv:
        _print_csv(found.rows())
        return EXIT_OK
    if args.json:
        # One trial per line: grep-able, and json's fast C encoder (indent= is pure Python).
        _print_json_lines(found.json_lines())
        return EXIT_OK
    briefs = found.briefs
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    say(trial_table(briefs, width) if briefs else "no trials.")
    return EXIT_OK


def _print_json_lines(lines: Sequence[str]) -> None:
    """A JSON array of one line per item, written a thousand lines at a time: 100,000
    trials' text is never copied whole."""
    if not lines:
        print("[]")
        return
    write = sys.stdout.write
    write("[\n")
    for start in range(0, len(lines), 1000):
        write(",\n".join(lines[start : start + 1000]))
        write(",\n" if start + 1000 < len(lines) else "\n]\n")


def _print_csv(rows: Sequence[dict[str, object]]) -> None:
    import csv

    from mitosis.analysis import row_columns

    writer = csv.DictWriter(sys.stdout, fieldnames=row_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def summary_command(args: argparse.Namespace) -> int:
    from mitosis.analysis import summarize_experiment

    folder = _trials_folder_of(args)
    table = summarize_experiment(folder, args.experiment, args.over, args.where)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    elif args.csv:
        print(table.to_csv(index=False), end="")
    else:
        shown = table.to_string(index=False, float_format=lambda v: f"{v:.6g}")
        say(shown if len(table) else "no trials pass the query.")
    return EXIT_OK


def compare_command(args: argparse.Namespace) -> int:
    from mitosis.core.compare import compare_records
    from mitosis.trials import load_trial
    from mitosis.views import comparison_text

    folder = _trials_folder_of(args)
    a, b = load_trial(args.a, folder), load_trial(args.b, folder)
    comparison = compare_records(a.record, b.record, a.patch, b.patch)
    if args.json:
        print_json(comparison.as_dict())
    else:
        say(comparison_text(comparison))
    return EXIT_OK


def reproduce_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from mitosis.reproduce import reproduce_trial
    from mitosis.views import reproduction_text

    reproduction = reproduce_trial(
        args.id,
        rtol=args.rtol,
        trials_folder=args.trials_folder,
        config=args.config,
        command=shlex.join(["mitosis-nb", *argv]),
        progress=not args.json and sys.stderr.isatty(),
        ignore=args.ignore,
    )
    report = reproduction.as_dict()
    if args.json:
        print_json(report)
    else:
        say(reproduction_text(report))
    if reproduction.trial.status == "interrupted":
        return EXIT_INTERRUPTED
    if (reproduction.trial.error or {}).get("kind") == "storage":
        message = (reproduction.trial.error or {}).get("message")
        say(f"mitosis-nb: the re-run {message}", file=sys.stderr)
        return EXIT_STORAGE
    return EXIT_OK if reproduction.reproduced else EXIT_FAILED


def cancel_command(args: argparse.Namespace) -> int:
    from mitosis.executors.slurm import cancel_trials

    for trial in cancel_trials(_trials_folder_of(args), args.ids):
        say(f"cancelled: {trial.id}  {(trial.error or {}).get('message')}")
    return EXIT_OK


def index_command(args: argparse.Namespace) -> int:
    from mitosis.trials_folder import TrialsFolder

    folder = _trials_folder_of(args)
    rebuilt = TrialsFolder(folder).rebuild_index()
    for warning in rebuilt.warnings():
        say(f"mitosis-nb: warning: {warning}", file=sys.stderr)
    count = len(rebuilt.summaries)
    say(f"indexed {count} trial{'' if count == 1 else 's'}: {folder / 'index.html'}")
    return EXIT_OK


def serve_command(args: argparse.Namespace) -> int:
    from mitosis.adapters.server import ALL_INTERFACES, serve
    from mitosis.errors import TrialsFolderError
    from mitosis.trials_folder import TrialsFolder

    folder = _trials_folder_of(args)
    if not folder.is_dir():
        raise TrialsFolderError(f"no trials folder at {folder}; run a trial first or pass -F DIR.")
    trials = TrialsFolder(folder)
    trials.refresh_site()
    if args.bind in ALL_INTERFACES:
        say(
            f"mitosis-nb: warning: serving on all interfaces ({args.bind or '*'}): anyone who can "
            "reach this machine can read these trials; prefer an SSH tunnel to 127.0.0.1.",
            file=sys.stderr,
        )

    def announce(url: str) -> None:
        say(f"serving {folder} at {url}  (Ctrl-C stops)", flush=True)

    try:
        serve(
            folder,
            args.port,
            args.bind,
            announce,
            before_index=trials.refresh_site,
            idle_timeout=args.idle_timeout,
        )
    except OSError as error:
        raise TrialsFolderError(
            f"cannot listen on {args.bind}:{args.port}: {error.strerror}; try another --port."
        ) from None
    return EXIT_OK


def experiments_command(args: argparse.Namespace) -> int:
    from mitosis.adapters.config import load_config
    from mitosis.vocabulary import describe_as_text, describe_investigation

    config = load_config(args.config)
    entries = describe_investigation(config, args.trials_folder)
    if args.json:
        print_json([entry.as_dict() for entry in entries])
    else:
        say(describe_as_text(entries))
    return EXIT_OK


def cache_command(args: argparse.Namespace) -> int:
    """``cache list`` (what the step cache holds) or ``cache why ID STEP`` (why it ran)."""
    from mitosis.cache_report import list_cache
    from mitosis.cache_why import explain_step

    folder = _trials_folder_of(args)
    report = (
        list_cache(folder)
        if args.cache_command == "list"
        else explain_step(folder, args.id, args.step, args.config)
    )
    if args.json:
        print_json(report.as_dict())
    else:
        say(report.as_text())
    return EXIT_OK
