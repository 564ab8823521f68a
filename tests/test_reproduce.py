"""`mitosis-nb reproduce` end to end: real kernels, real git repositories and worktrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import RunCli, git, make_investigation, trial_dirs, write_own_template


def record_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "trial.yaml").read_text())


def newest(root: Path) -> Path:
    return trial_dirs(root / "trials")[-1]


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD").strip()


def test_reproduce_at_head_reruns_the_recorded_parameters(investigation: Path, cli: RunCli) -> None:
    done = cli("run", "toy", "-p", "frequency=fast", "-e", "amplitude=2", "-e", "+tag='gpu0'")
    assert done.returncode == 0, done.stderr
    original = newest(investigation)

    done = cli("reproduce", original.name[-6:])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"REPRODUCED: trial {original.name}")
    assert "worktree" not in done.stdout
    again = newest(investigation)
    assert again != original
    record = record_of(again)
    assert record["reproduces"] == original.name and record["status"] == "succeeded"
    assert record["variant"] == record_of(original)["variant"]
    assert record["main"] == 20.0
    params = record["steps"][0]["params"]
    assert params["tag"] == record_of(original)["steps"][0]["params"]["tag"]  # untracked kept
    assert params["tag"]["tracked"] is False

    shown = json.loads(cli("compare", original.name, again.name, "--json").stdout)
    assert shown["differences"]["trial"] == {
        "note": [None, f"reproduces {original.name}"],
        "reproduces": [None, original.name],
    }


def test_reproduce_at_an_older_commit_uses_a_worktree_and_leaves_the_checkout_alone(
    investigation: Path, cli: RunCli
) -> None:
    (investigation / ".gitignore").write_text("trials/\n")
    first = commit_all(investigation, "ignore trials")
    assert cli("run", "toy", "-p", "frequency=fast", "-e", "amplitude=2").returncode == 0
    original = newest(investigation)
    code = investigation / "toy_experiments.py"
    code.write_text(code.read_text().replace("float(frequency) * float(amplitude)", "-1.0"))
    head = commit_all(investigation, "the experiment now gives another result")
    (investigation / "notes.txt").write_text("work in progress\n")  # untracked, left alone
    status_before = git(investigation, "status", "--porcelain")
    code_before = code.read_text()

    done = cli("reproduce", original.name, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] is True
    assert report["worktrees"] == [str(investigation.resolve())]
    assert report["commit"] == first and report["head"] == head
    again = newest(investigation)
    record = record_of(again)
    assert record["main"] == 20.0  # the old commit's result, not -1.0
    assert record["git"]["commit"] == first and record["reproduces"] == original.name
    assert record["steps"][0]["source"]["run"]["repo"] == str(investigation.resolve())
    assert record["steps"][0]["source"]["run"]["commit"] == first

    assert git(investigation, "rev-parse", "HEAD").strip() == head
    assert git(investigation, "status", "--porcelain") == status_before
    assert code.read_text() == code_before
    assert git(investigation, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not list((investigation / ".git" / "worktrees").glob("*"))

    # The checkout itself does give the new result: the old one came from the old commit.
    assert cli("run", "toy", "-p", "frequency=fast", "-e", "amplitude=2", "--debug").returncode == 0
    assert record_of(newest(investigation))["main"] == -1.0


def test_reproduce_a_debug_trial_reapplies_its_patch_in_a_worktree(
    investigation: Path, cli: RunCli
) -> None:
    code = investigation / "toy_experiments.py"
    committed = code.read_text()
    code.write_text(committed.replace("float(frequency) * float(amplitude)", "7.0"))
    assert cli("run", "toy", "--debug").returncode == 0
    original = newest(investigation)
    assert record_of(original)["main"] == 7.0
    code.write_text(committed.replace("float(frequency) * float(amplitude)", "8.0"))

    done = cli("reproduce", original.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REPRODUCED" in done.stdout and "temporary git worktree" in done.stdout
    record = record_of(newest(investigation))
    assert record["main"] == 7.0 and record["debug"] is True
    assert "8.0" in code.read_text()  # the user's uncommitted work is untouched


NOISY = """
import random
import time


def run(scale=1):
    # The machine's monotonic clock (since boot): later runs give larger values, and two
    # runs a second apart differ by far more than a relative 1e-9.
    return {"main": time.monotonic_ns() * scale, "metrics": {"draw": random.random(), "fixed": 1.0}}
"""

NOISY_PYPROJECT = """
[tool.mitosis.steps]
noisy = ["toy_experiments:run"]
"""


def test_a_nondeterministic_experiment_diverges(tmp_path: Path, cli: RunCli) -> None:
    root = make_investigation(tmp_path / "noisy", NOISY, NOISY_PYPROJECT)
    assert cli("run", "noisy", "-e", "scale=1", cwd=root).returncode == 0
    original = newest(root)

    done = cli("reproduce", original.name, cwd=root)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("DIVERGED")
    assert "  main: " in done.stdout and "  metrics.draw: " in done.stdout
    assert "metrics.fixed" not in done.stdout.split("differs")[1].split("page:")[0]
    record = record_of(newest(root))
    assert record["status"] == "succeeded" and record["reproduces"] == original.name
    assert record["main"] > record_of(original)["main"]
    assert f"  main: {record_of(original)['main']}  ->  {record['main']}" in done.stdout


ADDRESSED = """
import time


def lorenz(t, x):
    return x


def run(scale=1):
    # main holds a function, whose repr carries a memory address that differs in every
    # process; runtime differs in every run.
    started = time.perf_counter()
    return {"main": {"system": lorenz, "x": 1.0 * scale},
            "metrics": {"mse": 0.5, "runtime": time.perf_counter() - started + 1e-3}}
"""


def test_memory_addresses_are_set_aside_and_ignored_fields_left_out(
    tmp_path: Path, cli: RunCli
) -> None:
    root = make_investigation(tmp_path / "addressed", ADDRESSED, NOISY_PYPROJECT)
    assert cli("run", "noisy", "-e", "scale=1", cwd=root).returncode == 0
    original = newest(root)
    assert "<function lorenz at 0x" in record_of(original)["main"]

    diverged = cli("reproduce", original.name, cwd=root)
    assert diverged.returncode == 1 and "metrics.runtime" in diverged.stdout, diverged.stdout
    assert "  main:" not in diverged.stdout

    done = cli("reproduce", original.name, "--ignore", "metrics.runtime", "--json", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] and report["ignored"] == ["metrics.runtime"]
    assert report["addresses_ignored"] == ["main"]
    shown = cli("reproduce", original.name, "--ignore", "metrics.runtime", cwd=root).stdout
    assert shown.startswith("REPRODUCED")
    assert "equal once memory addresses (0x…) are set aside" in shown
    assert "not checked (--ignore): metrics.runtime" in shown

    before = len(trial_dirs(root / "trials"))
    typo = cli("reproduce", original.name, "--ignore", "metrics.runtim", cwd=root)
    assert typo.returncode == 2 and "names no result" in typo.stderr
    assert typo.stderr.count("\n") == 1 and len(trial_dirs(root / "trials")) == before


LAB_STEPS = '''
"""Experiments that live in the lab's own repository, not in the investigation."""
lookup = {"width": {"narrow": 2, "wide": 5}}


def run(width=1):
    return {"main": float(width) ** 2}
'''


def _lab_with_a_step(tmp_path: Path, investigation: Path) -> tuple[Path, str]:
    """A repository of its own holding the step ``lab``, which the investigation registers;
    and its commit."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "lab_steps.py").write_text(LAB_STEPS)
    git(lab, "init", "-q", "-b", "main")
    lab_commit = commit_all(lab, "lab steps")
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'lab = ["lab_steps:run", "lab_steps:lookup"]\n')
    commit_all(investigation, "register the lab's step")
    return lab, lab_commit


def test_a_step_from_another_repository_records_its_own_commit(
    tmp_path: Path, investigation: Path, cli: RunCli
) -> None:
    lab, lab_commit = _lab_with_a_step(tmp_path, investigation)
    git(lab, "remote", "add", "origin", "https://alice:s3cret@git.example.org/lab.git")
    # A package installed from git, as pip leaves it (PEP 610).
    site = tmp_path / "site"
    dist = site / "labtools-1.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: labtools\nVersion: 1.2\n")
    origin = {
        "url": "https://bob:t0ken@git.example.org/labtools.git",
        "vcs_info": {"vcs": "git", "commit_id": "a" * 40, "requested_revision": "v1.2"},
    }
    (dist / "direct_url.json").write_text(json.dumps(origin))
    env = {"PYTHONPATH": f"{lab}:{site}"}

    done = cli("run", "lab", "-p", "width=wide", env=env)
    assert done.returncode == 0, done.stderr
    record = record_of(newest(investigation))
    assert record["main"] == 25.0
    source = record["steps"][0]["source"]
    for part in ("run", "lookup"):
        assert source[part]["repo"] == str(lab.resolve())
        assert source[part]["file"] == "lab_steps.py"
        assert source[part]["commit"] == lab_commit and source[part]["dirty"] is False
    assert source["run"]["remote"] == "https://<redacted>@git.example.org/lab.git"
    assert record["environment"]["vcs_packages"]["labtools"] == {
        "url": "https://<redacted>@git.example.org/labtools.git",
        "vcs": "git",
        "commit": "a" * 40,
        "requested_revision": "v1.2",
    }
    assert "t0ken" not in (newest(investigation) / "trial.yaml").read_text()

    (lab / "lab_steps.py").write_text(LAB_STEPS + "\n# tinkering\n")
    before = trial_dirs(investigation / "trials")
    refused = cli("run", "lab", "-p", "width=wide", env=env)
    assert refused.returncode == 2
    assert str(lab.resolve()) in refused.stderr and "lab_steps.py" in refused.stderr
    assert trial_dirs(investigation / "trials") == before

    # The lab moves on; reproducing checks the lab's recorded commit out beside it.
    (lab / "lab_steps.py").write_text(LAB_STEPS.replace("** 2", "** 3"))
    lab_head = commit_all(lab, "cubes now")
    done = cli("reproduce", newest(investigation).name, "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["worktrees"] == [str(lab.resolve())]
    again = record_of(newest(investigation))
    assert again["main"] == 25.0
    assert again["steps"][0]["source"]["run"]["commit"] == lab_commit
    assert again["steps"][0]["source"]["run"]["repo"] == str(lab.resolve())
    assert git(lab, "rev-parse", "HEAD").strip() == lab_head
    assert git(lab, "status", "--porcelain") == ""
    assert git(lab, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_debug_trial_with_unsaved_changes_in_another_repository_is_not_reproduced(
    tmp_path: Path, investigation: Path, cli: RunCli
) -> None:
    lab, _ = _lab_with_a_step(tmp_path, investigation)
    env = {"PYTHONPATH": str(lab)}
    (lab / "lab_steps.py").write_text(LAB_STEPS.replace("** 2", "** 3"))  # not committed
    done = cli("run", "lab", "-p", "width=wide", "--debug", env=env)
    assert done.returncode == 0, done.stderr
    assert "that this debug trial uses but does not save" in done.stderr
    trial = newest(investigation)
    assert record_of(trial)["steps"][0]["source"]["run"]["dirty"] is True
    before = trial_dirs(investigation / "trials")
    refused = cli("reproduce", trial.name, env=env)
    assert refused.returncode == 2, refused.stdout
    assert f"lab_steps.py of {lab.resolve()} with uncommitted changes" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert trial_dirs(investigation / "trials") == before


def test_reproduce_refuses_an_unknown_trial_or_commit(investigation: Path, cli: RunCli) -> None:
    missing = cli("reproduce", "ffffff")
    assert missing.returncode == 2 and "ffffff" in missing.stderr
    assert cli("run", "toy", "-p", "frequency=slow").returncode == 0
    folder = newest(investigation)
    record = record_of(folder)
    record["git"]["commit"] = "0123456789" * 4
    (folder / "trial.yaml").write_text(yaml.safe_dump(record))
    refused = cli("reproduce", folder.name)
    assert refused.returncode == 2
    assert "0123456789" in refused.stderr and "fetch" in refused.stderr
    assert len(trial_dirs(investigation / "trials")) == 1

    # A refusal inside the worktree (this step is unknown at that commit) removes it too.
    record["git"]["commit"] = git(investigation, "rev-parse", "HEAD").strip()
    record["steps"][0]["name"] = "renamed"
    (folder / "trial.yaml").write_text(yaml.safe_dump(record))
    (investigation / "scratch.txt").write_text("uncommitted\n")  # so a worktree is needed
    refused = cli("reproduce", folder.name)
    assert refused.returncode == 2 and "renamed" in refused.stderr
    assert git(investigation, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not list((investigation / ".git" / "worktrees").glob("*"))
    assert len(trial_dirs(investigation / "trials")) == 1


def test_a_step_in_a_submodule_is_reproduced_at_the_recorded_submodule_commit(
    tmp_path: Path, investigation: Path, cli: RunCli
) -> None:
    origin = tmp_path / "lab-origin"
    origin.mkdir()
    (origin / "lab_steps.py").write_text(LAB_STEPS)
    git(origin, "init", "-q", "-b", "main")
    commit_all(origin, "lab steps")
    git(
        investigation,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(origin),
        "vendor",
    )
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + 'lab = ["vendor.lab_steps:run", "vendor.lab_steps:lookup"]\n'
    )
    (investigation / ".gitignore").write_text("trials/\n")
    commit_all(investigation, "the lab's steps as a submodule")
    vendor = investigation / "vendor"
    old = git(vendor, "rev-parse", "HEAD").strip()
    assert cli("run", "lab", "-p", "width=wide").returncode == 0
    original = newest(investigation)
    record = record_of(original)
    assert record["main"] == 25.0 and record["git"]["submodules"] == {"vendor": old}
    assert record["steps"][0]["source"]["run"]["repo"] == str(vendor.resolve())
    assert record["steps"][0]["source"]["run"]["commit"] == old

    steps = vendor / "lab_steps.py"
    steps.write_text(LAB_STEPS.replace("** 2", "** 3"))
    new = commit_all(vendor, "cubes now")
    commit_all(investigation, "use the lab's cubes")

    done = cli("reproduce", original.name, "--json")
    assert done.returncode == 0, done.stderr
    again = record_of(newest(investigation))
    assert again["main"] == 25.0 and again["git"]["submodules"] == {"vendor": old}
    assert again["steps"][0]["source"]["run"]["repo"] == str(vendor.resolve())
    assert git(vendor, "rev-parse", "HEAD").strip() == new and "** 3" in steps.read_text()
    assert git(investigation, "status", "--porcelain") == ""
    assert git(vendor, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_reproduce_from_python_leaves_this_process_importing_the_checkout(
    investigation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from mitosis import execute_trial, reproduce_trial

    (investigation / ".gitignore").write_text("trials/\n")
    commit_all(investigation, "ignore trials")
    original = execute_trial("toy", params={"frequency": "slow"}, literals={"amplitude": 3})
    code = investigation / "toy_experiments.py"
    code.write_text(code.read_text().replace("float(frequency) * float(amplitude)", "-1.0"))
    commit_all(investigation, "another result")
    sys.modules.pop("toy_experiments", None)
    monkeypatch.syspath_prepend(str(investigation))  # a notebook beside the code imports it
    import toy_experiments  # the checkout's new code, as a notebook would have it

    reproduction = reproduce_trial(original.id, rtol=0.0)
    assert reproduction.reproduced and reproduction.trial.main == 3.0
    assert reproduction.trial.record["reproduces"] == original.id
    assert sys.modules["toy_experiments"] is toy_experiments
    assert toy_experiments.run()["main"] == -1.0


def test_an_installed_src_layout_is_imported_from_the_worktree(
    investigation: Path, cli: RunCli
) -> None:
    package = investigation / "src" / "labpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    steps = package / "steps.py"
    steps.write_text(LAB_STEPS)
    pyproject = investigation / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + 'lab = ["labpkg.steps:run", "labpkg.steps:lookup"]\n'
    )
    (investigation / ".gitignore").write_text("trials/\n")
    first = commit_all(investigation, "a src layout")
    # As an editable install of the checkout would: labpkg imports from the checkout's src/.
    env = {"PYTHONPATH": str(investigation / "src")}
    assert cli("run", "lab", "-p", "width=narrow", env=env).returncode == 0
    original = newest(investigation)
    assert record_of(original)["steps"][0]["source"]["run"]["file"] == "src/labpkg/steps.py"
    steps.write_text(LAB_STEPS.replace("** 2", "** 3"))
    commit_all(investigation, "cubes")

    done = cli("reproduce", original.name, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    again = record_of(newest(investigation))
    assert again["main"] == 4.0 and again["git"]["commit"] == first
    assert again["steps"][0]["source"]["run"]["commit"] == first


def test_a_trial_run_with_template_is_reproduced_with_that_template_at_its_commit(
    investigation: Path, cli: RunCli
) -> None:
    write_own_template(investigation, "mine.ipynb", "## closing remarks, first version")
    (investigation / ".gitignore").write_text("trials/\n")
    commit_all(investigation, "our template")
    done = cli("run", "toy", "-p", "frequency=fast", "--template", "templates/mine.ipynb")
    assert done.returncode == 0, done.stderr
    original = newest(investigation)
    assert record_of(original)["template"] == "templates/mine.ipynb"
    write_own_template(investigation, "mine.ipynb", "## closing remarks, second version")
    commit_all(investigation, "the template moved on")

    done = cli("reproduce", original.name)

    assert done.returncode == 0, done.stderr
    again = newest(investigation)
    assert record_of(again)["template"] == "templates/mine.ipynb"
    assert "first version" in (again / "trial.ipynb").read_text()


def test_reproducing_a_failed_trial_says_the_re_run_failed(
    investigation: Path, cli: RunCli
) -> None:
    assert cli("run", "toy", "-p", "mode=boom").returncode == 1
    original = newest(investigation)

    done = cli("reproduce", original.name)

    assert done.returncode == 1, done.stderr
    again = newest(investigation)
    assert done.stdout.startswith(
        f"FAILED: trial {original.name} re-ran as {again.name}, which ended failed"
    )
