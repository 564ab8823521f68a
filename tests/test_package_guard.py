"""The original mitosis installed over mitosis-nb: every entry point says so in one sentence,
and the command it prints repairs the installation. Real venv, real wheels, real pip."""

from __future__ import annotations

import shlex
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ORIGINAL = "mitosis==0.6.1"


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    # Away from this checkout, whose own `mitosis` folder `python -m` would import first.
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, cwd="/"
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of its own holding a wheel of this mitosis-nb; its dependencies are this
    Python's (a path line), so that nothing but the two `mitosis` packages differs."""
    root = tmp_path_factory.mktemp("clash")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    Path(site.stdout.strip(), "deps-of-the-suite.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    wheels = root / "wheels"
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, REPO)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("mitosis_nb-*.whl")
    # --ignore-installed: the suite's own mitosis-nb, seen through the path line, must not
    # pass for this venv's.
    installed = _run(python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel)
    assert installed.returncode == 0, installed.stderr
    return root


def _entry_points(bin_dir: Path) -> dict[str, list[str | Path]]:
    return {
        "mitosis-nb": [bin_dir / "mitosis-nb", "--version"],
        "mitosis": [bin_dir / "mitosis", "--version"],
        "python -m mitosis": [bin_dir / "python", "-m", "mitosis", "--version"],
    }


def test_the_original_installed_over_mitosis_nb_is_named_and_repaired(scratch: Path) -> None:
    bin_dir = scratch / "venv" / "bin"
    python = bin_dir / "python"
    for name, command in _entry_points(bin_dir).items():
        assert _run(*command).returncode == 0, name  # whole to begin with
    over = _run(python, "-m", "pip", "install", "-q", "--no-deps", ORIGINAL)
    assert over.returncode == 0, over.stderr

    repair = None
    for name, command in _entry_points(bin_dir).items():
        done = _run(*command)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert "overwritten by mitosis 0.6.1" in done.stderr, done.stderr
        repair = done.stderr.split("repair it with: ")[1].strip()
    library = _run(python, "-c", "import mitosis")
    assert "ImportError: " in library.stderr and "overwritten by mitosis 0.6.1" in library.stderr

    assert repair is not None
    repaired = _run("sh", "-c", repair)
    assert repaired.returncode == 0, repaired.stderr
    assert _run(bin_dir / "mitosis-nb", "--version").stdout.startswith("mitosis-nb 0.1.0")
    assert _run(*_entry_points(bin_dir)["mitosis"]).returncode == 0
    works = _run(python, "-c", "from mitosis import execute_trial, load_trial; print('ok')")
    assert works.stdout == "ok\n", works.stderr
    print(f"repaired with: {shlex.split(repair)[:4]} ...")
