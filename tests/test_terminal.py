"""What a record or an experiment wrote reaches the terminal as visible text, never as control."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import RunCli, add_step
from synthetic import write_trial

from mitosis.core.terminal import inert

OSC_TITLE = "\x1b]0;PWNED\x07"
OSC_CLIPBOARD = "\x1b]52;c;aGVsbG8=\x1b\\"
OSC_LINK = "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07"
CSI_CLEAR = "\x1b[2J"
BIDI = "\u202egnp.exe"
RAW = ("\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u2066")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (OSC_TITLE, "\\x1b]0;PWNED\\x07"),
        (OSC_CLIPBOARD, "\\x1b]52;c;aGVsbG8=\\x1b\\\\"),
        (CSI_CLEAR + "x", "\\x1b[2Jx"),
        ("\x9b31mred", "\\x9b31mred"),
        (BIDI, "\\u202egnp.exe"),
        ("a\rb\x00c\x7f", "a\\rb\\x00c\\x7f"),
    ],
)
def test_escape_sequences_and_controls_become_visible_text(text: str, shown: str) -> None:
    assert inert(text) == shown


def test_printable_text_and_layout_are_kept() -> None:
    assert inert("naïve café ✓ 数\n\tnext") == "naïve café ✓ 数\n\tnext"
    assert inert("one\ntwo\tx", multiline=False) == "one\\ntwo\\tx"


def _hostile_record(trials: Path, index: int, hostile: str) -> Path:
    """A trial folder whose record was edited by someone else to carry ``hostile`` text."""
    folder = write_trial(trials, index)
    record = yaml.safe_load((folder / "trial.yaml").read_text())
    record["note"] = f"note {hostile}"
    record["command"] = f"mitosis-nb run {hostile}"
    record["git"].update(commit=f"c0ffee{hostile}", branch=f"main{hostile}")
    record["environment"]["hostname"] = f"host{hostile}"
    record["metrics"] = {f"err{hostile}": 1.0}
    record["steps"][0]["name"] = f"step{hostile}"
    record["steps"][0]["params"][f"arg{hostile}"] = record["steps"][0]["params"]["frequency"]
    record["status"] = "failed"
    record["error"] = {
        "kind": "exception",
        "step": f"step{hostile}",
        "type": f"Error{hostile}",
        "message": f"boom{hostile}",
        "traceback": None,
    }
    (folder / "trial.yaml").write_text(yaml.safe_dump(record, allow_unicode=True))
    return folder


def test_show_list_and_compare_never_emit_a_record_s_escape_sequences(
    cli: RunCli, investigation: Path
) -> None:
    trials = investigation / "trials"
    hostile = OSC_CLIPBOARD + OSC_LINK + CSI_CLEAR + BIDI
    a = _hostile_record(trials, 1, hostile)
    b = _hostile_record(trials, 2, OSC_TITLE)
    for args in (["list"], ["show", a.name], ["compare", a.name, b.name]):
        shown = cli(*args)
        assert shown.returncode == 0, shown.stderr
        for output in (shown.stdout, shown.stderr):
            assert not any(raw in output for raw in RAW), (args, output)
    shown = cli("show", a.name).stdout
    for visible in ("\\x1b]52;c;aGVsbG8=", "\\x1b]8;;http://evil.example\\x07", "\\u202egnp.exe"):
        assert visible in shown
    # JSON stays JSON, with the text intact for a program to read; ESC and the bidi
    # characters travel as \u escapes, so a terminal showing the JSON obeys none of them.
    for args in (
        ["show", a.name, "--json"],
        ["list", "--json"],
        ["compare", a.name, b.name, "--json"],
    ):
        text = cli(*args).stdout
        assert text.isascii(), args
    record = json.loads(cli("show", a.name, "--json").stdout)
    assert record["note"] == f"note {hostile}"


def test_a_failing_experiment_s_escape_sequences_are_shown_not_obeyed(
    cli: RunCli, investigation: Path
) -> None:
    source = (
        "lookup = {}\n\n\ndef run():\n"
        "    raise ValueError('boom\\x1b]0;PWNED\\x07 \\x1b[2J\\u202eevil')\n"
    )
    add_step(investigation, "hostile", "hostile_step", source)
    done = cli("run", "hostile")
    assert done.returncode == 1, done.stderr
    # (The record keeps no CSI colours from an error message: the kernel's traceback has many.)
    assert "ValueError: boom\\x1b]0;PWNED\\x07 \\u202eevil" in done.stderr
    trial_id = done.stdout.split()[1]
    shown = cli("show", trial_id)
    for output in (done.stdout, done.stderr, shown.stdout, shown.stderr):
        assert not any(raw in output for raw in RAW), output
    assert "ValueError: boom\\x1b]0;PWNED\\x07" in shown.stdout
