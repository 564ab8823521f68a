"""The step cache's store: one computation per key among racing processes, a dead kernel's
lock cleared, and a result whose file is gone no longer found (issue 17)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from mitosis import cache_store
from mitosis.atomic import write_atomic
from mitosis.cache_store import CacheEntry, computing, find, list_entries, publish

KEY = "sha256:" + "ab" * 32


def _trial(trials: str, trial: str) -> str:
    """One trial's step: take the cached result, or compute it (1 s) and publish it."""
    folder = Path(trials)
    with computing(folder, KEY, trial) as found:
        if found is not None:
            return found.trial
        time.sleep(1.0)
        (folder / trial).mkdir()
        (folder / trial / "trial.yaml").write_text("status: running\n")
        write_atomic(folder / trial / "results_0.pkl", b"the data")
        with open(folder / "computed.log", "a") as log:
            log.write(f"{trial}\n")
        publish(folder, CacheEntry(KEY, trial, "gen", f"{trial}/results_0.pkl", 8))
        return trial


def test_racing_processes_compute_a_key_once_and_all_take_its_result(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        sources = pool.starmap(_trial, [(str(tmp_path), f"t{i}") for i in range(4)])
    computed = (tmp_path / "computed.log").read_text().split()
    assert len(computed) == 1 and set(sources) == set(computed)
    assert not list((tmp_path / cache_store.CACHE_DIR).glob("*.lock"))
    assert [e.trial for e in list_entries(tmp_path)] == computed


def test_a_lock_left_by_a_dead_kernel_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / cache_store.CACHE_DIR).mkdir()
    lock = tmp_path / cache_store.CACHE_DIR / f"{KEY.partition(':')[2]}.lock"
    lock.write_text('{"trial": "dead"}')
    old = time.time() - cache_store.STALE_AFTER_S - 5
    os.utime(lock, (old, old))
    started = time.monotonic()
    assert _trial(str(tmp_path), "alive") == "alive"
    assert time.monotonic() - started < 5


def test_an_entry_whose_results_are_gone_or_changed_is_not_found(tmp_path: Path) -> None:
    _trial(str(tmp_path), "first")
    assert find(tmp_path, KEY) is not None
    (tmp_path / "first" / "results_0.pkl").write_bytes(b"other size!")
    assert find(tmp_path, KEY) is None
    (tmp_path / "first" / "results_0.pkl").unlink()
    assert find(tmp_path, KEY) is None and list_entries(tmp_path) == []


def test_an_entry_whose_trial_failed_is_not_found_and_is_replaced(tmp_path: Path) -> None:
    _trial(str(tmp_path), "first")
    (tmp_path / "first" / "trial.yaml").write_text("status: succeeded\n")
    assert find(tmp_path, KEY) is not None
    (tmp_path / "first" / "trial.yaml").write_text("status: failed\n")
    assert find(tmp_path, KEY) is None
    assert _trial(str(tmp_path), "second") == "second"  # computed again, and now it serves
    found = find(tmp_path, KEY)
    assert found is not None and found.trial == "second"


@pytest.mark.parametrize("text", ["not json", '{"key": 1}', ""])
def test_a_damaged_entry_is_not_found(tmp_path: Path, text: str) -> None:
    (tmp_path / cache_store.CACHE_DIR).mkdir()
    (tmp_path / cache_store.CACHE_DIR / f"{KEY.partition(':')[2]}.json").write_text(text)
    assert find(tmp_path, KEY) is None
