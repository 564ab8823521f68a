"""Canonical fingerprints: equal values give equal digests in any process, on any day.

A value is encoded as a tree of tagged, length-prefixed byte strings and hashed with SHA-256.
The tag keeps ``1``, ``1.0``, ``True`` and ``"1"`` apart; the length prefix keeps ``[1, 23]``
and ``[12, 3]`` apart. Dict items and set elements are sorted by their encoded bytes, never by
hash order, so neither insertion order nor ``PYTHONHASHSEED`` changes a digest.
"""

from __future__ import annotations

import enum
import hashlib
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mitosis.core.fingerprint_nodes import (
    RENDERING_LIMIT,
    SCALARS,
    UNTRACK,
    Node,
    Refusal,
    encode_str,
    join_texts,
    node,
)
from mitosis.core.fingerprint_objects import (
    NEWOBJ,
    call_get_params,
    describe,
    dotted,
    encode_global,
    encode_module,
    has_fields,
    importable_path,
    is_global,
    reduce_recipe,
    state_attributes,
)
from mitosis.errors import FingerprintError

__all__ = ["RENDERING_LIMIT", "Fingerprint", "fingerprint"]

# Bump the scheme when the encoding changes, so old and new digests can never be confused.
_SCHEME = b"mitosis-fingerprint/1\n"


@dataclass(frozen=True)
class Fingerprint:
    """A value's canonical identity: compare ``digest``, show ``rendering`` to people."""

    digest: str
    """``"sha256:"`` followed by 64 hex digits."""
    rendering: str
    """A short, deterministic, repr-like rendering of the value."""


def fingerprint(value: object) -> Fingerprint:
    """Fingerprint ``value``, or raise ``FingerprintError`` saying why it has no stable identity."""
    try:
        node = _Encoder().encode(value)
    except Refusal as refusal:
        raise FingerprintError(refusal.message()) from None
    except RecursionError:
        raise FingerprintError(
            f"cannot fingerprint a value nested too deeply to walk; {UNTRACK}."
        ) from None
    digest = hashlib.sha256(_SCHEME + node.data).hexdigest()
    return Fingerprint(digest=f"sha256:{digest}", rendering=node.text)


# --- the walk --------------------------------------------------------------------------------


class _Encoder:
    """One walk over one value; remembers the containers it is inside to refuse cycles."""

    def __init__(self) -> None:
        self._inside: set[int] = set()

    def encode(self, value: object) -> Node:
        kind = type(value)
        scalar = SCALARS.get(kind)
        if scalar is not None:
            return scalar(value)
        if kind.__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
            return self._guarded(value, _Encoder._numpy)
        if isinstance(value, enum.Enum):
            return self._enum(value)
        if is_global(value):
            return encode_global(value)
        if isinstance(value, types.ModuleType):
            return encode_module(value)
        if isinstance(value, (types.MethodType, types.BuiltinMethodType)):
            owner = self.child(value.__self__, ".__self__")
            name = value.__name__
            return node(b"M", owner.data + encode_str(name).data, f"{owner.text}.{name}")
        if kind in _CONTAINERS:
            return self._guarded(value, _CONTAINERS[kind])
        return self._guarded(value, _Encoder._object)

    def _enum(self, value: enum.Enum) -> Node:
        kind = type(value)
        path = importable_path(kind, f"the enum member {dotted(kind)}.{value.name}")
        # A combined Flag has no name on Python 3.10; its value identifies it instead.
        member = value.name if isinstance(value.name, str) else value.value
        return node(
            b"e", encode_str(path).data + self.child(member, ".value").data, f"{path}.{value.name}"
        )

    def child(self, value: object, step: str | int) -> Node:
        """Encode a part of the value, recording where it sits if it is refused."""
        try:
            return self.encode(value)
        except Refusal as refusal:
            refusal.steps.append(step)
            raise

    def _guarded(self, value: Any, encode: Callable[[_Encoder, Any], Node]) -> Node:
        # Only values on the current path count: a list shared twice is fine, a list
        # inside itself would otherwise recurse until RecursionError.
        key = id(value)
        if key in self._inside:
            raise Refusal(
                describe(value),
                "it contains itself (a reference cycle)",
                f"break the cycle, or {UNTRACK}",
            )
        self._inside.add(key)
        try:
            return encode(self, value)
        finally:
            self._inside.discard(key)

    def _list(self, value: list[object]) -> Node:
        items = [self.child(item, index) for index, item in enumerate(value)]
        return node(b"l", b"".join(i.data for i in items), f"[{join_texts(i.text for i in items)}]")

    def _tuple(self, value: tuple[object, ...]) -> Node:
        items = [self.child(item, index) for index, item in enumerate(value)]
        comma = "," if len(items) == 1 else ""
        return node(
            b"t", b"".join(i.data for i in items), f"({join_texts(i.text for i in items)}{comma})"
        )

    def _unordered(self, value: Iterable[object]) -> list[Node]:
        return sorted((self.child(item, "{…}") for item in value), key=lambda n: n.data)

    def _set(self, value: set[object]) -> Node:
        items = self._unordered(value)
        text = f"{{{join_texts(i.text for i in items)}}}" if items else "set()"
        return node(b"S", b"".join(i.data for i in items), text)

    def _frozenset(self, value: frozenset[object]) -> Node:
        items = self._unordered(value)
        inner = f"{{{join_texts(i.text for i in items)}}}" if items else ""
        return node(b"F", b"".join(i.data for i in items), f"frozenset({inner})")

    def _items(
        self, value: dict[Any, object], attributes: bool = False
    ) -> list[tuple[bytes, object, str, str]]:
        items = []
        for key, item in value.items():
            key_node = self.child(key, "[…]")
            item_node = self.child(item, f".{key}" if attributes else f"[{key_node.text}]")
            items.append((key_node.data + item_node.data, key, key_node.text, item_node.text))
        return sorted(items, key=lambda i: i[0])

    def _dict(self, value: dict[object, object]) -> Node:
        items = self._items(value)
        data = b"".join(node(b"p", d, "").data for d, *_ in items)
        return node(b"d", data, f"{{{join_texts(f'{k}: {v}' for _, _, k, v in items)}}}")

    def _keywords(self, value: dict[str, object], attributes: bool) -> Node:
        """A dict of names (attributes, parameters), rendered ``name=value`` in name order."""
        items = self._items(value, attributes)
        data = b"".join(node(b"p", d, "").data for d, *_ in items)
        by_name = sorted(items, key=lambda i: str(i[1]))
        return node(b"d", data, join_texts(f"{name}={text}" for _, name, _, text in by_name))

    def _numpy(self, value: Any) -> Node:
        kind = type(value).__name__
        shown = "array" if kind == "ndarray" else kind
        shape = tuple(int(n) for n in value.shape)
        dtype = value.dtype
        # dtype.str carries byte order and unit ('<M8[ns]'); descr adds structured field names.
        token = dtype.str if dtype.names is None else str(dtype.descr)
        header = encode_str(kind).data + encode_str(token).data + self.child(shape, ".shape").data
        if dtype.hasobject:
            elements = self.child(value.tolist(), ".tolist()")
            return node(b"o", header + elements.data, f"{shown}(object, shape={shape})")
        # Hash the raw bytes first, so a large array is not copied again into the encoding.
        raw = hashlib.sha256(value.tobytes(order="C")).digest()
        if kind == "ndarray" or shape:
            text = f"{shown}({dtype}, shape={shape})"
        else:
            text = f"{kind}({value.item()!r})"
        return node(b"a", header + raw, text)

    def _object(self, value: object) -> Node:
        kind = type(value)
        what = describe(value)
        get_params = getattr(value, "get_params", None)
        if callable(get_params):
            path = importable_path(kind, what)
            named = call_get_params(get_params, what)
            try:
                params = self._keywords(named, attributes=False)
            except Refusal as refusal:
                refusal.steps.append(".get_params()")
                raise
            return node(b"P", encode_str(path).data + params.data, f"{path}({params.text})")
        # Read the state first: "cannot pickle 'generator'" says more than its class path.
        recipe = reduce_recipe(value, what)
        if isinstance(recipe, str):
            return node(b"g", recipe.encode(), recipe)
        path = importable_path(kind, what)
        func, args, state, list_items, dict_items = recipe
        if func is NEWOBJ and args == (kind,) and list_items is dict_items is None:
            attributes = state_attributes(state)
            if attributes is not None:
                if not attributes and not has_fields(value):
                    raise Refusal(
                        what,
                        "it has no attributes, only a memory address",
                        f"pass a value that describes it instead, or {UNTRACK}",
                    )
                fields = self._keywords(attributes, attributes=True)
                return node(b"O", encode_str(path).data + fields.data, f"{path}({fields.text})")
        # Anything else pickles by a recipe (Decimal, date, Path, partial, OrderedDict, ...):
        # the recipe rebuilds an equal object, so it stands for the object's identity.
        head = self.child(func, ".__reduce__()")
        arguments = [self.child(argument, ".__reduce__()") for argument in args]
        extras = [self.child(x, ".__reduce__()") for x in (state, list_items, dict_items)]
        data = head.data + node(b"t", b"".join(n.data for n in arguments), "").data
        data += b"".join(n.data for n in extras)
        # __newobj__'s first argument is the class, already shown as the path.
        shown = arguments[1:] if func is NEWOBJ else arguments
        shown += [
            n for n, x in zip(extras, (state, list_items, dict_items), strict=True) if x is not None
        ]
        text = join_texts(n.text for n in shown)
        return node(b"R", encode_str(path).data + data, f"{path}({text})")


_CONTAINERS: dict[type, Callable[[_Encoder, Any], Node]] = {
    list: _Encoder._list,
    tuple: _Encoder._tuple,
    set: _Encoder._set,
    frozenset: _Encoder._frozenset,
    dict: _Encoder._dict,
}
