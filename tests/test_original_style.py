"""An investigation written for the original mitosis runs unchanged through `mitosis`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import git, trial_dirs

FIXTURE = Path(__file__).resolve().parent / "original_style"
BIN = Path(sys.executable).parent


@pytest.fixture
def lorenz(tmp_path: Path) -> Path:
    """The fixture investigation in a fresh git repository of its own."""
    root = tmp_path / "lorenz"
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "lorenz experiments")
    return root


def _shell(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        list(command), cwd=root, capture_output=True, text=True, env=env, timeout=300
    )


def _records(root: Path) -> list[dict]:
    return [yaml.safe_load((d / "trial.yaml").read_text()) for d in trial_dirs(root / "trials")]


def test_the_run_script_of_the_original_runs_unchanged(lorenz: Path) -> None:
    done = _shell(lorenz, "bash", "ex.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    records = _records(lorenz)
    assert [r["status"] for r in records] == ["succeeded"] * 5, done.stderr
    first, second, sho, wide, narrow = records

    # The lookup is a module namespace: its tables work, the helpers beside them are ignored.
    assert first["variant"] == "odes.axes=all,odes.noise=low,odes.points=many,odes.seed=1"
    assert first["steps"][0]["params"]["axes"]["value"].startswith("(Ellipsis, ")
    assert second["steps"][0]["params"]["axes"]["value"] == "(Ellipsis, 0)"
    # metrics as a list of names: the trial stands, the names are kept in the results.
    assert first["metrics"] == {} and "'metrics' as a list" in first["warnings"][0]
    assert isinstance(second["main"], float) and second["metrics"] == {}
    assert not second["steps"][0]["params"]["solver"]["tracked"]
    # Numbers returned beside main are its metrics.
    assert sho["metrics"]["runtime"] == 0.5 and "coeff_mse" in sho["metrics"]
    # -m MODULE: one step named after the module, parameters with or without its prefix.
    assert wide["experiment"] == "single_module" and wide["main"] == 29.0
    assert wide["steps"][0]["run"] == "single_module:run"
    assert wide["steps"][0]["lookup"] == "single_module:lookup_dict"
    assert not wide["steps"][0]["params"]["seed"]["tracked"]
    assert narrow["debug"] and narrow["main"] == 9.0
    assert wide["command"].startswith("mitosis -m single_module")
    assert wide["steps"][0]["module_step"] and "module_step" not in sho["steps"][0]
    listed = _shell(lorenz, "mitosis-nb", "list")
    assert listed.returncode == 0 and listed.stdout.count("succeeded") == 5
    # A module's step is registered nowhere: reproduce takes it from the record.
    again = _shell(lorenz, "mitosis-nb", "reproduce", wide["id"])
    assert again.returncode == 0 and again.stdout.startswith("REPRODUCED"), again.stderr


def test_python_dash_m_mitosis_is_the_original_command(lorenz: Path) -> None:
    done = _shell(
        lorenz, sys.executable, "-m", "mitosis", "sho", "-p", "noise=none", "-e", "seed=1"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("succeeded: ")
    version = _shell(lorenz, "mitosis", "--version")
    assert version.returncode == 0 and "mitosis-nb" in version.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["odes", "-e", "seed=1", "-e", "solver=LinearSolver(tol=1e-8)"], "put the object in"),
        (["odes", "-e", "seed=1", "-p", "t_end=long"], "holds 't_end' as a float, not a table"),
        (["odes", "-e", "seed=1", "-p", "np=fast"], "has no argument 'np'"),
        # A table of the shared namespace that this step's callable does not take.
        (["sho", "-e", "seed=1", "-p", "points=few"], "arguments: noise, seed."),
        ([], "name the steps to run"),
        (["odes", "-m", "single_module"], "not both"),
        (["-m", "single-module"], "not an importable module name"),
    ],
)
def test_what_the_original_allowed_but_mitosis_nb_refuses_is_one_sentence(
    lorenz: Path, args: list[str], says: str
) -> None:
    done = _shell(lorenz, "mitosis", *args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (lorenz / "trials").exists()


def test_experiments_lists_only_the_usable_tables(lorenz: Path) -> None:
    done = _shell(lorenz, "mitosis-nb", "experiments", "--json")
    assert done.returncode == 0, done.stderr
    (odes,) = [step for step in yaml.safe_load(done.stdout) if step["name"] == "odes"]
    with_variants = {arg["name"] for arg in odes["arguments"] if arg["variants"]}
    assert with_variants == {"noise", "points", "axes", "solver"}
    assert not {"np", "T_END", "coarse_grid", "_grid"} & {a["name"] for a in odes["arguments"]}
    assert "t_end" in {a["name"] for a in odes["arguments"]}  # an argument, with no variants
    (sho,) = [step for step in yaml.safe_load(done.stdout) if step["name"] == "sho"]
    assert {arg["name"] for arg in sho["arguments"]} == {"seed", "noise"}
