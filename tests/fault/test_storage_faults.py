"""A full disk, a read-only share, a file where the trials folder should be, a broken index."""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from faultkit import (
    check_invariants,
    cli_command,
    git,
    lab_fixture,  # noqa: F401 - the `lab` fixture
    list_json,
    read_yaml,
    trial_folders,
)

# Raised step by step through every file a trial writes: the registry's claim (~200 B), the
# record (~5 kB), IPython's history and the notebook (~10 kB), the page and the site.
FILE_SIZE_LIMITS = (0, 300, 3_000, 12_000, 150_000, 4_000_000)


def _run_limited(root: Path, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        # Ignored, SIGXFSZ stays ignored in git and the kernel too: every write past the limit
        # fails with EFBIG, as on a full disk, instead of killing whoever wrote.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run(
        cli_command(*args),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )


def _snapshot(trials: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(trials)): path.read_bytes()
        for folder in trial_folders(trials)
        for path in folder.iterdir()
        if path.name in ("trial.yaml", "trial.ipynb", "trial.html", "results_0.pkl")
    }


def test_a_full_disk_ends_in_a_whole_record_or_a_clear_refusal(lab: Path) -> None:
    trials = lab / "trials"
    outcomes = []
    for step, limit in enumerate(FILE_SIZE_LIMITS):
        before = _snapshot(trials)
        done = _run_limited(lab, limit, "run", "nap", "-p", "pace=quick", "-e", f"seed={step}")
        # The kernel's own log may show IPython failing to save its history; mitosis never
        # shows a traceback of its own.
        assert "/mitosis/" not in done.stderr, (limit, done.stderr)
        if done.returncode in (2, 74):  # 74: the disk refused a write; 2: git refused first
            lines = [
                line
                for line in done.stderr.splitlines()
                if line.startswith("mitosis-nb:") and not line.startswith("mitosis-nb: warning:")
            ]
            assert len(lines) <= 1, done.stderr
            if lines:
                assert "File too large" in lines[0] or "disk is not full" in lines[0], lines
        else:
            assert done.returncode in (0, 1), (limit, done.returncode, done.stderr)
        outcomes.append(done.returncode)
        for folder in trial_folders(trials):
            if f"{folder.name}/trial.yaml" not in before and (folder / "results_0.pkl").exists():
                # The step ran: the record says how it ended, and `succeeded` means that
                # every file is there; a refused page makes it `failed` for storage.
                record = read_yaml(folder / "trial.yaml")
                whole = (folder / "trial.html").is_file() and (folder / "trial.ipynb").is_file()
                if record["status"] == "succeeded":
                    assert whole, limit
                elif record["status"] == "failed":
                    assert record["error"]["kind"] == "storage", (limit, record["error"])
                    assert done.returncode == 74, limit
        # Nothing written before is lost or changed by a later run that hit the limit.
        after = _snapshot(trials)
        assert {name: after.get(name) for name in before} == before, limit
        check_invariants(lab)
    assert outcomes[0] in (2, 74) and outcomes[-1] == 0, outcomes
    records = [read_yaml(folder / "trial.yaml") for folder in trial_folders(trials)]
    assert records[-1]["status"] == "succeeded"
    print(f"disk full: exit codes by limit {dict(zip(FILE_SIZE_LIMITS, outcomes, strict=False))}")


def test_a_trials_path_that_is_a_file_is_one_sentence_and_exit_2(lab: Path) -> None:
    (lab / "trials").write_text("not a folder\n")
    git(lab, "add", "trials")
    git(lab, "commit", "-qm", "a file named trials")
    done = subprocess.run(cli_command("run", "nap"), cwd=lab, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not a directory" in done.stderr
    assert (lab / "trials").read_text() == "not a folder\n"
    listed = subprocess.run(cli_command("list"), cwd=lab, capture_output=True, text=True)
    assert listed.returncode in (0, 2) and "Traceback" not in listed.stderr


def _as_nobody(shared: Path, home: Path) -> Callable[..., subprocess.CompletedProcess[str]] | None:
    """Run the CLI in ``shared`` as user ``nobody``; None if this machine cannot."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    if os.geteuid() != 0:
        return None
    os.chown(home, nobody.pw_uid, nobody.pw_gid)

    def become_nobody() -> None:
        os.setgid(nobody.pw_gid)
        os.setgroups([])
        os.setuid(nobody.pw_uid)

    env = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_command(*args),
            cwd=shared,
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=become_nobody,
            timeout=120,
        )

    try:
        probe = run("--version")
    except PermissionError:
        return None  # this interpreter lives where nobody may not go (a pyenv under /root)
    return run if probe.returncode == 0 else None


def _read_only_mount(trials: Path, mount: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the CLI as ourselves against a read-only bind mount of ``trials``, or skip."""
    mount.mkdir()
    for command in (
        ["mount", "--bind", str(trials), str(mount)],
        ["mount", "-o", "remount,bind,ro", str(mount)],
    ):
        if subprocess.run(command, capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
            pytest.skip("cannot become another user nor mount a read-only folder here")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_command(*args, "-F", str(mount)),
            cwd=trials.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_a_read_only_trials_folder_refuses_and_lists(lab: Path, tmp_path: Path) -> None:
    done = subprocess.run(cli_command("run", "nap", "-e", "seed=1"), cwd=lab, capture_output=True)
    assert done.returncode == 0, done.stderr
    # A colleague's copy: readable by everyone, writable by its owner only.
    shared = tmp_path / "shared"
    shutil.copytree(lab, shared, symlinks=True)
    for path in [shared, *shared.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for parent in (tmp_path, tmp_path.parent):
        parent.chmod(parent.stat().st_mode | 0o005)
    home = tmp_path / "home"
    home.mkdir()
    before = _snapshot(shared / "trials")
    run = _as_nobody(shared, home)
    mount = tmp_path / "read-only"
    if run is None:  # said in the report: root in a container whose Python nobody can reach
        run = _read_only_mount(shared / "trials", mount)
    try:
        # --debug: the mount, outside the copy, leaves its own trials folder looking uncommitted
        refused = run("run", "nap", "-e", "seed=2", "--debug")
        assert refused.returncode == 2, refused.stderr
        assert "not writable" in refused.stderr and refused.stderr.count("\n") == 1
        listed = run("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [row["status"] for row in yaml.safe_load(listed.stdout)] == ["succeeded"]
        shown = run("show", trial_folders(shared / "trials")[0].name)
        assert shown.returncode == 0 and "succeeded" in shown.stdout, shown.stderr
        assert run("index").returncode == 2
    finally:
        if mount.is_dir():
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
    assert _snapshot(shared / "trials") == before


def test_a_deleted_or_corrupted_index_is_rebuilt_and_nothing_is_lost(lab: Path) -> None:
    for seed in (1, 2):
        done = subprocess.run(
            cli_command("run", "nap", "-e", f"seed={seed}"), cwd=lab, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    index = lab / "trials" / "index.sqlite"
    ids = sorted(folder.name for folder in trial_folders(lab / "trials"))
    index.unlink()
    assert sorted(row["id"] for row in list_json(lab)) == ids
    for damage in (b"", b"not a database at all\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000):
        index.write_bytes(damage)
        listed = subprocess.run(
            cli_command("list", "--json"), cwd=lab, capture_output=True, text=True
        )
        assert listed.returncode == 0 and "Traceback" not in listed.stderr
        assert sorted(row["id"] for row in yaml.safe_load(listed.stdout)) == ids
        assert "index" in listed.stderr  # one warning that says how to rebuild it
        if damage == b"":  # a run with a broken index still records its trial
            done = subprocess.run(
                cli_command("run", "nap", "-e", "seed=3"), cwd=lab, capture_output=True, text=True
            )
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        ids = sorted(folder.name for folder in trial_folders(lab / "trials"))
        rebuilt = subprocess.run(cli_command("index"), cwd=lab, capture_output=True, text=True)
        assert rebuilt.returncode == 0, rebuilt.stderr
        with sqlite3.connect(index) as connection:
            rows = sorted(row[0] for row in connection.execute("SELECT id FROM trials"))
        assert rows == ids
    check_invariants(lab)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB tmpfs to hold the trials folder, or a skip where mounting is impossible."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _first_trial(lab: Path, disk: Path) -> None:
    """One trial on the still roomy disk: the site's stylesheets and index take their place."""
    first = subprocess.run(
        cli_command("run", "nap", "-p", "pace=quick", "-F", str(disk)),
        cwd=lab,
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` so that ``leave`` bytes stay free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(free - leave, 0))


def test_a_full_tmpfs_gives_a_consistent_record_files_and_exit_code(
    lab: Path, small_disk: Path
) -> None:
    _first_trial(lab, small_disk)
    seen: dict[str, list[int]] = {}
    for seed, kilobytes in enumerate((8, 12, 16, 20, 24, 32, 40, 48, 64), start=1):
        _fill(small_disk, kilobytes * 1024)
        before = set(trial_folders(small_disk))
        done = subprocess.run(
            cli_command(
                "run", "nap", "-p", "pace=quick", "-e", f"seed={seed}", "-F", str(small_disk)
            ),
            cwd=lab,
            capture_output=True,
            text=True,
        )
        assert "Traceback" not in done.stderr, done.stderr
        new = sorted(set(trial_folders(small_disk)) - before)
        if not new:  # not even its folder or first record fitted: refused, nothing ran
            assert done.returncode == 74, (kilobytes, done.returncode, done.stderr)
            assert done.stderr.count("\n") == 1 and "No space left" in done.stderr
            seen.setdefault("refused", []).append(kilobytes)
            continue
        folder = new[0]
        record = read_yaml(folder / "trial.yaml")
        page = (folder / "trial.html").is_file()
        if done.returncode == 0:
            assert record["status"] == "succeeded" and page, kilobytes
            seen.setdefault("succeeded", []).append(kilobytes)
            continue
        # Never 2 (bad input): a full disk has its own exit code.
        assert done.returncode == 74, (kilobytes, done.returncode, done.stderr)
        assert not page, kilobytes  # and a notebook, if any, is whole (check_invariants)
        if record["status"] == "failed":  # the page was refused; the record says so
            assert record["error"]["kind"] == "storage", record["error"]
            refused = ("trial.html", "trial.ipynb", ".running.ipynb")  # the first that failed
            assert any(name in record["error"]["message"] for name in refused), record["error"]
            assert "ENOSPC" in record["error"]["message"], record["error"]
            seen.setdefault("failed for storage", []).append(kilobytes)
        else:  # not even the final record fitted: the runner said so on the terminal
            assert record["status"] == "running", record["status"]
            assert "No space left on device" in done.stderr and "trial.yaml" in done.stderr
            seen.setdefault("record refused", []).append(kilobytes)
        shown = subprocess.run(
            cli_command("show", folder.name, "-F", str(small_disk)),
            cwd=lab,
            capture_output=True,
            text=True,
        )
        assert "(no page: trial.html was not written)" in shown.stdout, shown.stdout
        assert str(folder / "trial.html") not in shown.stdout
    (small_disk / "filler").unlink()
    # The next reader settles what the runners could not, and says why they stopped.
    census = check_invariants(lab, small_disk)
    for folder in trial_folders(small_disk):
        record = read_yaml(folder / "trial.yaml")
        if census.statuses[folder.name] == "interrupted":
            assert "disk refused its final record" in record["error"]["message"], record
    print(f"2 MB tmpfs, outcome by kB left: {seen}")
    assert "failed for storage" in seen and "record refused" in seen, seen


def test_a_sweep_on_a_full_tmpfs_exits_74_and_each_record_agrees_with_its_files(
    lab: Path, small_disk: Path
) -> None:
    _first_trial(lab, small_disk)
    _fill(small_disk, 24 * 1024)
    done = subprocess.run(
        cli_command("run", "nap", "-e", "seed=1", "-e", "seed=2", "-F", str(small_disk)),
        cwd=lab,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # Never 1 (an experiment failed) nor 2 (bad input): the disk refused, whichever trial's
    # write it was, with a record to say so or before there was one.
    assert done.returncode == 74, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "No space left on device" in done.stderr
    (small_disk / "filler").unlink()
    census = check_invariants(lab, small_disk)
    for folder in trial_folders(small_disk):
        record = read_yaml(folder / "trial.yaml")
        kept = all((folder / name).is_file() for name in ("trial.ipynb", "trial.html"))
        assert kept == (census.statuses[folder.name] == "succeeded"), (folder.name, record)


def test_reproduce_on_a_full_tmpfs_exits_74_not_as_a_divergence(
    lab: Path, small_disk: Path
) -> None:
    _first_trial(lab, small_disk)
    original = trial_folders(small_disk)[0].name
    _fill(small_disk, 32 * 1024)
    done = subprocess.run(
        cli_command("reproduce", original, "-F", str(small_disk)),
        cwd=lab,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 74, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # Said as the disk's refusal, not only as a re-run that ended failed.
    assert "the re-run could not write" in done.stderr and "ENOSPC" in done.stderr
