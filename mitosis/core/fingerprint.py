"""Canonical fingerprints: equal values give equal digests in any process, on any day.

A value is encoded as a tree of tagged, length-prefixed byte strings and hashed with SHA-256.
The tag keeps ``1``, ``1.0``, ``True`` and ``"1"`` apart; the length prefix keeps ``[1, 23]``
and ``[12, 3]`` apart. Dict items and set elements are sorted by their encoded bytes, never by
hash order, so neither insertion order nor ``PYTHONHASHSEED`` changes a digest.
"""

from __future__ import annotations

import copyreg
import enum
import hashlib
import importlib
import inspect
import math
import struct
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from mitosis.errors import FingerprintError

__all__ = ["RENDERING_LIMIT", "Fingerprint", "fingerprint"]

RENDERING_LIMIT = 120
"""The longest ``Fingerprint.rendering``, in characters (longer ones end with "…")."""

# Bump the scheme when the encoding changes, so old and new digests can never be confused.
_SCHEME = b"mitosis-fingerprint/1\n"
# NaN has many bit patterns; they must all lock in as the same value.
_CANONICAL_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"
_UNTRACK = "mark the parameter untracked with a leading '+'"
_MOVE = f"move it to an importable module, or {_UNTRACK}"
# Pickle's reconstructors for plain objects; typeshed does not declare them.
_NEWOBJ = vars(copyreg)["__newobj__"]
_NEWOBJ_EX = vars(copyreg)["__newobj_ex__"]


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
    except _Refusal as refusal:
        raise FingerprintError(refusal.message()) from None
    except RecursionError:
        raise FingerprintError(
            f"cannot fingerprint a value nested too deeply to walk; {_UNTRACK}."
        ) from None
    digest = hashlib.sha256(_SCHEME + node.data).hexdigest()
    return Fingerprint(digest=f"sha256:{digest}", rendering=node.text)


class _Node(NamedTuple):
    data: bytes  # the canonical encoding: tag, length, payload
    text: str  # the rendering, at most RENDERING_LIMIT characters


class _Refusal(Exception):
    """Internal: carries the refusal up the tree, collecting where in the value it happened."""

    def __init__(self, what: str, why: str, fix: str = _MOVE) -> None:
        super().__init__(what)
        self.what, self.why, self.fix = what, why, fix
        self.steps: list[str | int] = []  # innermost first, appended while unwinding

    def message(self) -> str:
        where = "".join(f"[{s}]" if isinstance(s, int) else s for s in reversed(self.steps))
        found = f" (found at value{where})" if where else ""
        return f"cannot fingerprint {self.what}{found}: {self.why}; {self.fix}."


def _node(tag: bytes, payload: bytes, text: str) -> _Node:
    return _Node(tag + struct.pack(">Q", len(payload)) + payload, _shorten(text))


def _shorten(text: str) -> str:
    return text if len(text) <= RENDERING_LIMIT else text[: RENDERING_LIMIT - 1] + "…"


def _join(texts: Iterable[str]) -> str:
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


def _none(_: None) -> _Node:
    return _node(b"N", b"", "None")


def _bool(value: bool) -> _Node:
    return _node(b"?", b"\x01" if value else b"\x00", repr(value))


def _int(value: int) -> _Node:
    payload = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    # repr() of a huge int is slow and refused past 4300 digits; hex is neither.
    text = repr(value) if value.bit_length() < 4000 else hex(value)
    return _node(b"i", payload, text)


def _float_bits(value: float) -> bytes:
    return _CANONICAL_NAN if math.isnan(value) else struct.pack(">d", value)


def _float(value: float) -> _Node:
    return _node(b"f", _float_bits(value), repr(value))


def _complex(value: complex) -> _Node:
    return _node(b"c", _float_bits(value.real) + _float_bits(value.imag), repr(value))


def _str(value: str) -> _Node:
    # surrogatepass: lone surrogates are legal in a str and must not crash the encoder.
    return _node(b"s", value.encode("utf-8", "surrogatepass"), repr(value[:RENDERING_LIMIT]))


def _bytes(value: bytes) -> _Node:
    return _node(b"y", value, repr(value[:RENDERING_LIMIT]))


def _bytearray(value: bytearray) -> _Node:
    return _node(b"Y", bytes(value), f"bytearray({bytes(value[:RENDERING_LIMIT])!r})")


def _singleton(value: object) -> _Node:
    # `...` and NotImplemented: one value each, named by their repr in any process.
    return _node(b"1", repr(value).encode("ascii"), repr(value))


# Exact types only: subclasses (IntEnum, namedtuple, OrderedDict, ...) carry a class identity.
_SCALARS: dict[type, Callable[[Any], _Node]] = {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    complex: _complex,
    str: _str,
    bytes: _bytes,
    bytearray: _bytearray,
    type(Ellipsis): _singleton,
    type(NotImplemented): _singleton,
}

# --- importable names ------------------------------------------------------------------------


def _dotted(target: object) -> str:
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", "?")
    return f"{module}.{name}"


def _describe(value: object) -> str:
    if isinstance(value, type):
        return f"the class {_dotted(value)}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"the function {_dotted(value)}"
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else _dotted(kind)
    return f"a value of type {name}"


def _importable_path(target: object, what: str) -> str:
    """``module:qualname`` of a function or class, checked to import back to ``target``."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise _Refusal(what, "it has no module and qualified name to import it by")
    return _verified_path(module, qualname, target, what)


def _verified_path(module: str, qualname: str, target: object, what: str) -> str:
    if "<lambda>" in qualname:
        raise _Refusal(
            what,
            "a lambda has no name another process can import",
            f"define it with def at the top level of a module instead, or {_UNTRACK}",
        )
    if "<locals>" in qualname:
        raise _Refusal(
            what,
            "it is defined inside a function, so it cannot be imported",
            f"define it at the top level of a module instead, or {_UNTRACK}",
        )
    if module == "__main__":
        raise _Refusal(what, "it is defined in __main__, which another process cannot import")
    try:
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as error:
        raise _Refusal(what, f"{module}:{qualname} does not import ({error})") from None
    if found is not target:
        raise _Refusal(what, f"{module}:{qualname} imports a different object")
    return f"{module}:{qualname}"


def _global(value: object) -> _Node:
    path = _importable_path(value, _describe(value))
    return _node(b"g", path.encode(), path)


def _module(value: types.ModuleType) -> _Node:
    name = value.__name__
    try:
        found = importlib.import_module(name)
    except Exception as error:
        raise _Refusal(f"the module {name}", f"it does not import ({error})") from None
    if found is not value:
        raise _Refusal(f"the module {name}", "importing its name gives a different module")
    return _node(b"m", name.encode(), f"<module {name!r}>")


def _is_global(value: object) -> bool:
    if isinstance(value, (type, types.FunctionType)):
        return True
    if isinstance(value, types.BuiltinFunctionType):
        # len has builtins as __self__; "abc".upper is bound to a value and is a method.
        owner = getattr(value, "__self__", None)
        return owner is None or isinstance(owner, types.ModuleType)
    # numpy ufuncs (numpy.sin) are module-level names too.
    return type(value).__module__ == "numpy" and type(value).__name__ == "ufunc"


def _accepts_keyword(method: Callable[..., object], name: str) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def _has_fields(value: object) -> bool:
    if hasattr(value, "__dict__"):
        return True
    return any("__slots__" in vars(cls) for cls in type(value).__mro__ if cls is not object)


def _attributes(state: object) -> dict[str, object] | None:
    """The attribute dict of a plain object's pickled state, or None if it has another shape."""
    if state is None:
        return {}
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        merged = dict(state[0] or {})
        merged.update(state[1])  # the __slots__ half
        state = merged
    if isinstance(state, dict) and all(isinstance(key, str) for key in state):
        return state
    return None


# --- the walk --------------------------------------------------------------------------------


class _Encoder:
    """One walk over one value; remembers the containers it is inside to refuse cycles."""

    def __init__(self) -> None:
        self._inside: set[int] = set()

    def encode(self, value: object) -> _Node:
        kind = type(value)
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            return scalar(value)
        if kind.__module__ == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
            return self._guarded(value, _Encoder._numpy)
        if isinstance(value, enum.Enum):
            return self._enum(value)
        if _is_global(value):
            return _global(value)
        if isinstance(value, types.ModuleType):
            return _module(value)
        if isinstance(value, (types.MethodType, types.BuiltinMethodType)):
            owner = self.child(value.__self__, ".__self__")
            name = value.__name__
            return _node(b"M", owner.data + _str(name).data, f"{owner.text}.{name}")
        if kind in _CONTAINERS:
            return self._guarded(value, _CONTAINERS[kind])
        return self._guarded(value, _Encoder._object)

    def _enum(self, value: enum.Enum) -> _Node:
        kind = type(value)
        path = _importable_path(kind, f"the enum member {_dotted(kind)}.{value.name}")
        # A combined Flag has no name on Python 3.10; its value identifies it instead.
        member = value.name if isinstance(value.name, str) else value.value
        return _node(
            b"e", _str(path).data + self.child(member, ".value").data, f"{path}.{value.name}"
        )

    def child(self, value: object, step: str | int) -> _Node:
        """Encode a part of the value, recording where it sits if it is refused."""
        try:
            return self.encode(value)
        except _Refusal as refusal:
            refusal.steps.append(step)
            raise

    def _guarded(self, value: Any, encode: Callable[[_Encoder, Any], _Node]) -> _Node:
        # Only values on the current path count: a list shared twice is fine, a list
        # inside itself would otherwise recurse until RecursionError.
        key = id(value)
        if key in self._inside:
            raise _Refusal(
                _describe(value),
                "it contains itself (a reference cycle)",
                f"break the cycle, or {_UNTRACK}",
            )
        self._inside.add(key)
        try:
            return encode(self, value)
        finally:
            self._inside.discard(key)

    def _list(self, value: list[object]) -> _Node:
        items = [self.child(item, index) for index, item in enumerate(value)]
        return _node(b"l", b"".join(i.data for i in items), f"[{_join(i.text for i in items)}]")

    def _tuple(self, value: tuple[object, ...]) -> _Node:
        items = [self.child(item, index) for index, item in enumerate(value)]
        comma = "," if len(items) == 1 else ""
        return _node(
            b"t", b"".join(i.data for i in items), f"({_join(i.text for i in items)}{comma})"
        )

    def _unordered(self, value: Iterable[object]) -> list[_Node]:
        return sorted((self.child(item, "{…}") for item in value), key=lambda n: n.data)

    def _set(self, value: set[object]) -> _Node:
        items = self._unordered(value)
        text = f"{{{_join(i.text for i in items)}}}" if items else "set()"
        return _node(b"S", b"".join(i.data for i in items), text)

    def _frozenset(self, value: frozenset[object]) -> _Node:
        items = self._unordered(value)
        inner = f"{{{_join(i.text for i in items)}}}" if items else ""
        return _node(b"F", b"".join(i.data for i in items), f"frozenset({inner})")

    def _items(
        self, value: dict[Any, object], attributes: bool = False
    ) -> list[tuple[bytes, object, str, str]]:
        items = []
        for key, item in value.items():
            key_node = self.child(key, "[…]")
            item_node = self.child(item, f".{key}" if attributes else f"[{key_node.text}]")
            items.append((key_node.data + item_node.data, key, key_node.text, item_node.text))
        return sorted(items, key=lambda i: i[0])

    def _dict(self, value: dict[object, object]) -> _Node:
        items = self._items(value)
        data = b"".join(_node(b"p", d, "").data for d, *_ in items)
        return _node(b"d", data, f"{{{_join(f'{k}: {v}' for _, _, k, v in items)}}}")

    def _keywords(self, value: dict[str, object], attributes: bool) -> _Node:
        """A dict of names (attributes, parameters), rendered ``name=value`` in name order."""
        items = self._items(value, attributes)
        data = b"".join(_node(b"p", d, "").data for d, *_ in items)
        by_name = sorted(items, key=lambda i: str(i[1]))
        return _node(b"d", data, _join(f"{name}={text}" for _, name, _, text in by_name))

    def _numpy(self, value: Any) -> _Node:
        kind = type(value).__name__
        shown = "array" if kind == "ndarray" else kind
        shape = tuple(int(n) for n in value.shape)
        dtype = value.dtype
        # dtype.str carries byte order and unit ('<M8[ns]'); descr adds structured field names.
        token = dtype.str if dtype.names is None else str(dtype.descr)
        header = _str(kind).data + _str(token).data + self.child(shape, ".shape").data
        if dtype.hasobject:
            elements = self.child(value.tolist(), ".tolist()")
            return _node(b"o", header + elements.data, f"{shown}(object, shape={shape})")
        # Hash the raw bytes first, so a large array is not copied again into the encoding.
        raw = hashlib.sha256(value.tobytes(order="C")).digest()
        if kind == "ndarray" or shape:
            text = f"{shown}({dtype}, shape={shape})"
        else:
            text = f"{kind}({value.item()!r})"
        return _node(b"a", header + raw, text)

    def _object(self, value: object) -> _Node:
        kind = type(value)
        what = _describe(value)
        get_params = getattr(value, "get_params", None)
        if callable(get_params):
            path = _importable_path(kind, what)
            named = _call_get_params(get_params, what)
            try:
                params = self._keywords(named, attributes=False)
            except _Refusal as refusal:
                refusal.steps.append(".get_params()")
                raise
            return _node(b"P", _str(path).data + params.data, f"{path}({params.text})")
        # Read the state first: "cannot pickle 'generator'" says more than its class path.
        recipe = _reduce(value, what)
        if isinstance(recipe, str):
            return _node(b"g", recipe.encode(), recipe)
        path = _importable_path(kind, what)
        func, args, state, list_items, dict_items = recipe
        if func is _NEWOBJ and args == (kind,) and list_items is dict_items is None:
            attributes = _attributes(state)
            if attributes is not None:
                if not attributes and not _has_fields(value):
                    raise _Refusal(
                        what,
                        "it has no attributes, only a memory address",
                        f"pass a value that describes it instead, or {_UNTRACK}",
                    )
                fields = self._keywords(attributes, attributes=True)
                return _node(b"O", _str(path).data + fields.data, f"{path}({fields.text})")
        # Anything else pickles by a recipe (Decimal, date, Path, partial, OrderedDict, ...):
        # the recipe rebuilds an equal object, so it stands for the object's identity.
        head = self.child(func, ".__reduce__()")
        arguments = [self.child(argument, ".__reduce__()") for argument in args]
        extras = [self.child(x, ".__reduce__()") for x in (state, list_items, dict_items)]
        data = head.data + _node(b"t", b"".join(n.data for n in arguments), "").data
        data += b"".join(n.data for n in extras)
        # __newobj__'s first argument is the class, already shown as the path.
        shown = arguments[1:] if func is _NEWOBJ else arguments
        shown += [
            n for n, x in zip(extras, (state, list_items, dict_items), strict=True) if x is not None
        ]
        text = _join(n.text for n in shown)
        return _node(b"R", _str(path).data + data, f"{path}({text})")


_CONTAINERS: dict[type, Callable[[_Encoder, Any], _Node]] = {
    list: _Encoder._list,
    tuple: _Encoder._tuple,
    set: _Encoder._set,
    frozenset: _Encoder._frozenset,
    dict: _Encoder._dict,
}


def _call_get_params(get_params: Callable[..., object], what: str) -> dict[str, object]:
    # deep=False: nested estimators are fingerprinted as objects of their own, once.
    try:
        deep = _accepts_keyword(get_params, "deep")
        params = get_params(deep=False) if deep else get_params()
    except Exception as error:
        raise _Refusal(
            what, f"its get_params() raised {error!r}", f"fix it, or {_UNTRACK}"
        ) from None
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise _Refusal(
            what, "its get_params() did not return a dict of names", f"fix it, or {_UNTRACK}"
        )
    return params


def _reduce(
    value: object, what: str
) -> str | tuple[object, tuple[object, ...], object, object, object]:
    """The object's pickle recipe (callable, args, state, list items, dict items), or its path."""
    reducer = copyreg.dispatch_table.get(type(value))
    try:
        recipe: Any = reducer(value) if reducer is not None else value.__reduce_ex__(4)
    except Exception as error:
        # Sockets, files, locks, generators: live state that no value can stand for.
        raise _Refusal(
            what,
            f"its state cannot be read ({error})",
            f"pass a value that describes it instead, or {_UNTRACK}",
        ) from None
    if isinstance(recipe, str):
        # A module-level singleton pickles by name: its identity is that name.
        module = getattr(value, "__module__", None)
        if not isinstance(module, str):
            raise _Refusal(what, "it has no module to import it by")
        return _verified_path(module, recipe, value, what)
    if not (isinstance(recipe, tuple) and len(recipe) >= 2 and isinstance(recipe[1], tuple)):
        raise _Refusal(what, f"its __reduce__() gave {type(recipe).__name__}, not a recipe")
    func, args, state, list_items, dict_items = (*recipe, None, None, None)[:5]
    if func is _NEWOBJ_EX:
        cls, args, kwargs = args
        func, args, state = _NEWOBJ, (cls, *args), (state, kwargs)
    # Materialise the item iterators: they are part of the value (OrderedDict, defaultdict).
    list_items = None if list_items is None else list(list_items)
    dict_items = None if dict_items is None else dict(dict_items)
    return func, tuple(args), state, list_items, dict_items
