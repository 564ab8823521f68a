"""Text bound for a terminal, made inert.

A record can come from a shared or copied trials folder, and an experiment's error message
from anyone's code: either may hold escape sequences that write the clipboard (OSC 52), hide
a link (OSC 8), retitle the window, clear the screen (CSI), or reorder what is shown (bidi
overrides). Every string mitosis-nb prints passes through :func:`inert` first.
"""

from __future__ import annotations

import re

# Whole escape sequences first, so that an OSC's payload is shown as one escaped run rather
# than an escaped ESC followed by text a terminal could still act on after a stray byte.
_SEQUENCE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST (or cut short)
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI
    r"|\x1b[ -/]*[0-~]?"  # any other ESC sequence
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # the 8-bit CSI
    r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # the 8-bit OSC
)
# C0 and C1 controls (tab and newline are layout, kept where the caller allows), DEL, and the
# bidirectional marks, embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LAYOUT = re.compile("[\t\n]")


def _visible(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def inert(text: str, *, multiline: bool = True) -> str:
    """``text`` with every control character and escape sequence shown as Python escapes.

    ``"\\x1b]0;title\\x07"`` prints as the ten visible characters ``\\x1b]0;title\\x07``;
    printable Unicode (``naïve ✓``) is kept. Newlines and tabs are kept when ``multiline``,
    else escaped too.
    """
    if text.isascii() and text.isprintable():  # most text: nothing to escape, and quick to tell
        return text
    text = _SEQUENCE.sub(_visible, text)
    text = _CONTROL.sub(_visible, text)
    return text if multiline else _LAYOUT.sub(_visible, text)
