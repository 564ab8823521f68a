"""The variant registry: claims made once, never rewritten, safe names, one winner per race."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import RunCli, git, make_investigation, trial_dirs
from hypothesis import given, settings
from hypothesis import strategies as st

from mitosis.adapters import registry
from mitosis.adapters.registry import Claim, claim_path, encode_name, read_claim
from mitosis.core.params import parse_option
from mitosis.core.request import TrialRequest
from mitosis.errors import VariantConflictError
from mitosis.lock_in import check_lock_in
from mitosis.pipeline import run_plan
from mitosis.session import Session

SAFE_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789_-%ABCDEF~")


def _claim(value: str, variant: str = "fast", step: str = "sine", arg: str = "frequency") -> Claim:
    digest = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return Claim(step, arg, variant, digest, value, f"trial-{value}")


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder below ``folder`` (hidden ones too) with size, mtime and content."""
    seen: dict[str, tuple[int, int, str]] = {}
    for directory, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(directory, name)
            stat = path.stat()
            content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            seen[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns, content)
    return seen


# --- claim files -----------------------------------------------------------------------------


def test_a_claim_is_created_once_and_never_rewritten(tmp_path: Path) -> None:
    assert registry.claim(tmp_path, _claim("10")) is True
    path = claim_path(tmp_path, "sine", "frequency", "fast")
    before = (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes())

    assert registry.claim(tmp_path, _claim("10")) is False  # same value: agreed, untouched
    with pytest.raises(VariantConflictError) as conflict:
        registry.claim(tmp_path, _claim("11"))

    assert (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes()) == before
    assert read_claim(path) == _claim("10")
    message = conflict.value.message
    for part in ("'fast'", "'sine'", "'frequency'", "locked to 10", "trial-10", "now means 11"):
        assert part in message


def test_a_conflict_between_equal_renderings_shows_the_fingerprints(tmp_path: Path) -> None:
    shown = "array(float64, shape=(3,))"
    registry.claim(tmp_path, Claim("s", "a", "v", "sha256:aaa", shown, "t1"))
    with pytest.raises(VariantConflictError) as conflict:
        registry.claim(tmp_path, Claim("s", "a", "v", "sha256:bbb", shown, "t2"))
    assert "sha256:aaa" in conflict.value.message
    assert "sha256:bbb" in conflict.value.message


def test_an_unreadable_claim_is_refused_not_ignored(tmp_path: Path) -> None:
    path = claim_path(tmp_path, "sine", "frequency", "fast")
    path.parent.mkdir(parents=True)
    path.write_text("{not: [valid")
    with pytest.raises(VariantConflictError, match="cannot be read") as refused:
        registry.claim(tmp_path, _claim("10"))
    assert "\n" not in refused.value.message  # one sentence, though YAML's report has lines
    assert path.read_text() == "{not: [valid"


# --- names -----------------------------------------------------------------------------------

NASTY_NAMES = [
    "fast",
    "Fast",  # must not share a file with "fast" on a case-insensitive disk
    "FAST",
    "..",
    ".",
    "../../../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "nul\0byte",
    "\u202eright-to-left\u200f",
    "caf\u00e9",  # NFC
    "cafe\u0301",  # NFD of the same word: a different name
    "日本語",
    "\U0001f9ec",
    "%41",
    "A",
    "~",
    "a" * 10_000,
    "a" * 10_000 + "b",
    "\udcff",  # a lone surrogate, as Python decodes undecodable argv bytes
    " ",
    "",
]


def test_any_name_becomes_one_distinct_file_inside_variants(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    for index, name in enumerate(NASTY_NAMES):
        registry.claim(trials, Claim(name, name, name, f"sha256:{index}", repr(name), "t"))

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == len(NASTY_NAMES)
    root = (trials / registry.REGISTRY_DIR).resolve()
    for path in files:
        assert root in path.resolve().parents
        assert len(path.name) <= 255
    for index, name in enumerate(NASTY_NAMES):
        stored = read_claim(claim_path(trials, name, name, name))
        assert stored is not None
        assert (stored.step, stored.arg, stored.variant) == (name, name, name)
        assert stored.fingerprint == f"sha256:{index}"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_encoded_names_are_safe_and_distinct_even_ignoring_case(first: str, second: str) -> None:
    encoded = encode_name(first)
    assert set(encoded) <= SAFE_CHARACTERS
    assert 0 < len(encoded) <= 120
    assert not encoded.startswith(".")
    if first != second:
        assert encoded.lower() != encode_name(second).lower()


# --- races between real processes ------------------------------------------------------------

# Imports only the registry, waits until the parent closes the round's pipe (so that all
# eight start at one moment), then claims or takes an iteration and prints the outcome.
WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from mitosis.adapters import registry
    from mitosis.errors import VariantConflictError

    folder, action, me = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    for round_number, fd in enumerate(map(int, sys.argv[4:])):
        print("ready", flush=True)
        os.read(fd, 1)
        variant = f"v{round_number}"
        if action == "iteration":
            number = registry.take_iteration(folder, "sine", variant, f"trial-{me}")
            print(json.dumps({"iteration": number}), flush=True)
            continue
        value = me if action == "claim-different" else "same"
        wanted = registry.Claim("sine", "frequency", variant, "sha256:" + value, value, me)
        try:
            created = registry.claim(folder, wanted)
            print(json.dumps({"created": created}), flush=True)
        except VariantConflictError as error:
            print(json.dumps({"conflict": error.message}), flush=True)
    """
)


Outcomes = list[list[dict[str, object]]]


def _race(folder: Path, action: str, rounds: int, workers: int = 8) -> Outcomes:
    """Run ``rounds`` rounds of ``workers`` processes released together; their outcomes."""
    pipes = [os.pipe() for _ in range(rounds)]
    read_ends = [read for read, _ in pipes]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(folder), action, f"w{n}", *map(str, read_ends)],
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=read_ends,
        )
        for n in range(workers)
    ]
    for read in read_ends:
        os.close(read)
    outcomes = []
    try:
        for _, write in pipes:
            for process in processes:
                assert process.stdout is not None
                assert process.stdout.readline() == "ready\n"
            os.close(write)  # every worker's read returns at once
            outcomes.append([json.loads(p.stdout.readline()) for p in processes if p.stdout])
    finally:
        for process in processes:
            process.wait(timeout=60)
    return outcomes


def test_eight_processes_claiming_one_variant_have_exactly_one_winner(tmp_path: Path) -> None:
    outcomes = _race(tmp_path, "claim-different", rounds=30)

    for round_number, results in enumerate(outcomes):
        winners = [n for n, result in enumerate(results) if result.get("created") is True]
        assert len(winners) == 1, results
        conflicts = [str(r["conflict"]) for r in results if "conflict" in r]
        assert len(conflicts) == 7, results
        winner = f"w{winners[0]}"
        assert all(f"locked to {winner} (claimed by trial {winner})" in c for c in conflicts)
        stored = read_claim(claim_path(tmp_path, "sine", "frequency", f"v{round_number}"))
        assert stored is not None
        assert (stored.rendering, stored.trial) == (winner, winner)


def test_eight_processes_claiming_one_value_all_agree(tmp_path: Path) -> None:
    for results in _race(tmp_path, "claim-same", rounds=5):
        assert sorted(str(r.get("created")) for r in results) == ["False"] * 7 + ["True"]


def test_iterations_taken_concurrently_are_each_number_once(tmp_path: Path) -> None:
    for results in _race(tmp_path, "iteration", rounds=10):
        assert sorted(int(str(r["iteration"])) for r in results) == list(range(8))


# --- lock-in through the real command line ---------------------------------------------------


def _change_lookup(investigation: Path, old: str, new: str) -> None:
    source = investigation / "toy_experiments.py"
    source.write_text(source.read_text().replace(old, new))
    git(investigation, "commit", "-q", "-am", f"{old} -> {new}")


def test_a_conflicting_variant_exits_2_and_writes_nothing(cli: RunCli, investigation: Path) -> None:
    first = cli("run", "toy", "-p", "toy.frequency=fast")
    assert first.returncode == 0, first.stderr
    trials = investigation / "trials"
    claim = claim_path(trials, "toy", "frequency", "fast")
    locked = read_claim(claim)
    assert locked is not None
    assert locked.rendering == "10"
    assert locked.trial == trial_dirs(trials)[0].name
    _change_lookup(investigation, '"fast": 10', '"fast": 11')
    before = _snapshot(trials)

    # A sweep whose first trial is fine is refused whole: no trial of it runs.
    refused = cli("run", "toy", "-p", "toy.frequency=slow,fast")

    assert refused.returncode == 2
    for part in ("'fast'", "'toy'", "'frequency'", "locked to 10", locked.trial, "now means 11"):
        assert part in refused.stderr
    assert refused.stdout == ""
    assert _snapshot(trials) == before


def test_rerunning_a_variant_keeps_its_claim_and_counts_iterations(
    cli: RunCli, investigation: Path
) -> None:
    claim = claim_path(investigation / "trials", "toy", "frequency", "fast")
    first = cli("run", "toy", "-p", "toy.frequency=fast", "--json")
    before = (claim.stat().st_ino, claim.stat().st_mtime_ns, claim.read_bytes())
    second = cli("run", "toy", "-p", "toy.frequency=fast", "--json")

    records = [json.loads(run.stdout)[0] for run in (first, second)]
    assert [record["iteration"] for record in records] == [0, 1]
    assert (claim.stat().st_ino, claim.stat().st_mtime_ns, claim.read_bytes()) == before
    stored = read_claim(claim)
    assert stored is not None
    assert stored.trial == records[0]["id"]


def test_debug_trials_and_untracked_parameters_claim_nothing(
    cli: RunCli, investigation: Path
) -> None:
    debug = cli("run", "toy", "-p", "toy.frequency=fast", "--debug")
    untracked = cli("run", "toy", "-p", "+toy.frequency=slow", "-p", "+toy.solver=tight")
    assert (debug.returncode, untracked.returncode) == (0, 0), debug.stderr + untracked.stderr

    trials = investigation / "trials"
    assert registry.list_claims(trials) == []
    claims = [p for p in (trials / registry.REGISTRY_DIR).rglob("*.yaml")]
    assert claims == []


UNNAMEABLE = """
lookup = {"transform": {"square": lambda x: x * x}}


def run(transform=None):
    return {"main": 1.0}
"""


def test_a_value_without_a_fingerprint_cannot_be_locked(tmp_path: Path) -> None:
    pyproject = '[tool.mitosis.steps]\nsq = ["toy_experiments:run", "toy_experiments:lookup"]\n'
    root = make_investigation(tmp_path / "lambdas", UNNAMEABLE, pyproject)

    run = subprocess.run(
        [sys.executable, "-m", "mitosis.cli", "run", "sq", "-p", "transform=square"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 2
    assert "sq.transform=square" in run.stderr
    assert "lambda" in run.stderr
    assert "'+'" in run.stderr  # the way out: mark it untracked
    assert not (root / "trials").exists()


def test_a_race_lost_after_the_check_leaves_no_trial_behind(investigation: Path) -> None:
    request = TrialRequest(steps=("toy",), options=(parse_option("frequency=fast", "lookup"),))
    with Session(request) as session:
        (plan,) = session.prepare()
    check_lock_in([plan])
    trials = investigation / "trials"
    # Another researcher's trial claims "fast" for another value in the meantime.
    registry.claim(trials, Claim("toy", "frequency", "fast", "sha256:other", "99", "theirs"))

    with pytest.raises(VariantConflictError, match="locked to 99"):
        run_plan(plan)

    assert trial_dirs(trials) == []
    assert not (trials / registry.REGISTRY_DIR / registry.ITERATIONS_DIR).exists()
