"""What a run keeps in the user's cache for the next one: the installed packages, and the
compiled templates and the highlighted, sanitized code of a trial's page. A later run must
show what a first run shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import RunCli, trial_dirs

from mitosis.user_cache import KeptTexts

# A page rendered in a fresh process: a markdown cell and a code cell with its output.
RENDER_PAGE = """
import sys
import nbformat
from mitosis.adapters import publish

notebook = nbformat.v4.new_notebook(
    cells=[
        nbformat.v4.new_markdown_cell("# A *trial*", id="text"),
        nbformat.v4.new_code_cell(
            "print(2 + 2)",
            id="code",
            execution_count=1,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="4\\n")],
        ),
    ],
    metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},
)
record = {"id": "20250101-000000-abcdef", "experiment": "toy", "status": "succeeded"}
sys.stdout.write(publish.render_page(notebook, record, beside=()).html)
"""


def _install(site: Path, version: str) -> None:
    for old in site.glob("labpkg-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = site / f"labpkg-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: labpkg\nVersion: {version}\n")


def _age(*folders: Path) -> None:
    # A folder changed in the last seconds is not cached (its time may not show a change
    # made within its clock's resolution): these look installed an hour ago.
    past = time.time() - 3600
    for folder in folders:
        os.utime(folder, (past, past))


def _newest_packages(investigation: Path) -> dict[str, str]:
    newest = trial_dirs(investigation / "trials")[-1]
    record = yaml.safe_load((newest / "trial.yaml").read_text())
    return dict(record["environment"]["packages"])


def test_a_package_installed_between_runs_is_in_the_next_record(
    investigation: Path, cli: RunCli, tmp_path: Path
) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    _install(site, "1.0")
    env = {"PYTHONPATH": str(site), "XDG_CACHE_HOME": str(cache)}
    run = ("run", "toy", "-p", "frequency=fast")
    assert cli(*run, env=env).returncode == 0  # makes the trials folder
    _age(site, investigation)
    for _ in range(2):  # the first scans and keeps its scan; the second reads it
        done = cli(*run, env=env)
        assert done.returncode == 0, done.stderr
        packages = _newest_packages(investigation)
        assert packages["labpkg"] == "1.0" and "ipykernel" in packages
    assert list((cache / "mitosis-nb" / "packages").iterdir())

    _install(site, "1.1")
    done = cli(*run, env=env)
    assert done.returncode == 0, done.stderr
    assert _newest_packages(investigation)["labpkg"] == "1.1"


def test_a_page_is_the_same_with_compiled_templates_from_the_cache(tmp_path: Path) -> None:
    def render(cache: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", RENDER_PAGE],
            capture_output=True,
            text=True,
            env={**os.environ, "XDG_CACHE_HOME": str(cache)},
            timeout=120,
            check=True,
        )
        return done.stdout

    cache = tmp_path / "cache"
    first = render(cache)  # compiles the templates and keeps them
    assert list((cache / "mitosis-nb" / "jinja2").iterdir())
    assert list((cache / "mitosis-nb" / "highlight").iterdir())
    assert list((cache / "mitosis-nb" / "clean-html").iterdir())
    unwritable = tmp_path / "a-file"
    unwritable.write_text("")  # no cache folder can be made under a file
    assert render(cache) == first
    assert render(unwritable) == first
    assert "4\n" in first and "A <em>trial</em>" in first
    assert '<span class="nb">print</span>' in first  # the code is highlighted


def _render_code(source: str, cache: Path) -> str:
    """The page of one code cell holding ``source``, rendered in a fresh process."""
    script = RENDER_PAGE.replace('"print(2 + 2)"', repr(source))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def test_a_page_highlights_its_code_from_the_cache_only_for_the_same_code(
    tmp_path: Path,
) -> None:
    def render(source: str) -> str:
        return _render_code(source, tmp_path / "cache")

    kept = tmp_path / "cache" / "mitosis-nb" / "highlight"
    first = render("total = 2 + 2")
    assert '<span class="n">total</span>' in first
    (cell,) = [path for path in kept.iterdir() if "total" in path.read_text()]
    cell.write_text(cell.read_text().replace(">total<", ">kept<"))
    assert '<span class="n">kept</span>' in render("total = 2 + 2")  # read back
    assert '<span class="n">other</span>' in render("other = 2 + 2")  # new code: highlighted


def test_a_page_takes_its_sanitized_code_from_the_cache_only_for_the_same_code(
    tmp_path: Path,
) -> None:
    def render(source: str) -> str:
        return _render_code(source, tmp_path / "cache")

    kept = tmp_path / "cache" / "mitosis-nb" / "clean-html"
    first = render("total = 2 + 2")
    (cell,) = [path for path in kept.iterdir() if ">total<" in path.read_text()]
    assert cell.read_text() in first  # the code cell's HTML, as nbconvert sanitized it
    cell.write_text(cell.read_text().replace(">total<", ">kept<"))
    assert '<span class="n">kept</span>' in render("total = 2 + 2")  # read back
    assert '<span class="n">other</span>' in render("other = 2 + 2")  # new code: sanitized


def test_kept_texts_stay_bounded_and_keep_what_was_used_last(tmp_path: Path) -> None:
    texts = KeptTexts("any", most=6, folder=tmp_path)
    assert texts.get(["made", "from", 1]) is None
    for number in range(1, 7):
        texts.put(["made", "from", number], f"text {number}")
    for number, path in enumerate(sorted(tmp_path.iterdir(), key=_text_number), start=1):
        os.utime(path, (1_000_000 + number, 1_000_000 + number))  # text 1 the oldest
    assert texts.get(["made", "from", 1]) == "text 1"  # used now: the most recent
    texts.put(["made", "from", 7], "text 7")  # the seventh: the four least used go
    assert sorted(path.read_text() for path in tmp_path.iterdir()) == [
        "text 1",
        "text 6",
        "text 7",
    ]
    not_a_folder = tmp_path / "text 1"  # a file: nothing can be kept under it
    not_a_folder.write_text("text 1")
    unusable = KeptTexts("any", most=6, folder=not_a_folder)
    unusable.put(["a"], "lost")  # costs nothing but the time to make it again
    assert unusable.get(["a"]) is None


def _text_number(path: Path) -> int:
    return int(path.read_text().split()[-1])
