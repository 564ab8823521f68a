"""The pieces of a fingerprint: encoded nodes, scalars, and the refusal that explains itself.

Internal to ``mitosis.core.fingerprint``: each node is a tag, a length prefix and a payload,
with a short rendering for people.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

RENDERING_LIMIT = 120
"""The longest ``Fingerprint.rendering``, in characters (longer ones end with "…")."""

# NaN has many bit patterns; they must all lock in as the same value.
CANONICAL_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"
UNTRACK = "mark the parameter untracked with a leading '+'"
MOVE = f"move it to an importable module, or {UNTRACK}"


class Node(NamedTuple):
    """One encoded value: its canonical bytes and its rendering."""

    data: bytes  # the canonical encoding: tag, length, payload
    text: str  # the rendering, at most RENDERING_LIMIT characters


class Refusal(Exception):
    """Carries the refusal up the tree, collecting where in the value it happened."""

    def __init__(self, what: str, why: str, fix: str = MOVE) -> None:
        super().__init__(what)
        self.what, self.why, self.fix = what, why, fix
        self.steps: list[str | int] = []  # innermost first, appended while unwinding

    def message(self) -> str:
        where = "".join(f"[{s}]" if isinstance(s, int) else s for s in reversed(self.steps))
        found = f" (found at value{where})" if where else ""
        return f"cannot fingerprint {self.what}{found}: {self.why}; {self.fix}."


def node(tag: bytes, payload: bytes, text: str) -> Node:
    return Node(tag + struct.pack(">Q", len(payload)) + payload, _shorten(text))


def _shorten(text: str) -> str:
    return text if len(text) <= RENDERING_LIMIT else text[: RENDERING_LIMIT - 1] + "…"


def join_texts(texts: Iterable[str]) -> str:
    # Stop early: a million-element list needs only its first few renderings.
    parts: list[str] = []
    size = 0
    for text in texts:
        if size > RENDERING_LIMIT:
            parts.append("…")
            break
        parts.append(text)
        size += len(text) + 2
    return ", ".join(parts)


# --- scalars: no children, so no cycles and no recursion --------------------------------------


def _encode_none(_: None) -> Node:
    return node(b"N", b"", "None")


def _encode_bool(value: bool) -> Node:
    return node(b"?", b"\x01" if value else b"\x00", repr(value))


def _encode_int(value: int) -> Node:
    payload = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    # repr() of a huge int is slow and refused past 4300 digits; hex is neither.
    text = repr(value) if value.bit_length() < 4000 else hex(value)
    return node(b"i", payload, text)


def _float_bits(value: float) -> bytes:
    return CANONICAL_NAN if math.isnan(value) else struct.pack(">d", value)


def _encode_float(value: float) -> Node:
    return node(b"f", _float_bits(value), repr(value))


def _encode_complex(value: complex) -> Node:
    return node(b"c", _float_bits(value.real) + _float_bits(value.imag), repr(value))


def encode_str(value: str) -> Node:
    # surrogatepass: lone surrogates are legal in a str and must not crash the encoder.
    return node(b"s", value.encode("utf-8", "surrogatepass"), repr(value[:RENDERING_LIMIT]))


def _encode_bytes(value: bytes) -> Node:
    return node(b"y", value, repr(value[:RENDERING_LIMIT]))


def _encode_bytearray(value: bytearray) -> Node:
    return node(b"Y", bytes(value), f"bytearray({bytes(value[:RENDERING_LIMIT])!r})")


def _encode_singleton(value: object) -> Node:
    # `...` and NotImplemented: one value each, named by their repr in any process.
    return node(b"1", repr(value).encode("ascii"), repr(value))


# Exact types only: subclasses (IntEnum, namedtuple, OrderedDict, ...) carry a class identity.
SCALARS: dict[type, Callable[[Any], Node]] = {
    type(None): _encode_none,
    bool: _encode_bool,
    int: _encode_int,
    float: _encode_float,
    complex: _encode_complex,
    str: encode_str,
    bytes: _encode_bytes,
    bytearray: _encode_bytearray,
    type(Ellipsis): _encode_singleton,
    type(NotImplemented): _encode_singleton,
}
