"""The query grammar of ``list --where``, ``search_trials(where=)`` and the pages' filter
boxes, parsed into a tree and interpreted: never evaluated as code.

    query  := or
    or     := and ("or" and)*
    and    := not ("and" not)*
    not    := "not" not | "(" or ")" | test
    test   := column ( OP value | "in" "[" value ("," value)* "]" | "~" STRING
                     | "is" ["not"] "missing" )
    column := NAME ("." NAME)* | `quoted name`
    value  := NUMBER | STRING | true | false

A comparison with a missing value is false; ``is missing`` asks for one. ``html/query.js``
implements the same grammar for the pages; ``tests/query_cases.json`` holds the cases both
must agree on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitosis.errors import QueryError

__all__ = ["Query", "parse_query"]

_KEYWORDS = {"and", "or", "not", "in", "is", "missing", "true", "false"}
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "~")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

Value = float | int | str | bool
Getter = Callable[[str], Any]


@dataclass(frozen=True)
class _Token:
    kind: str  # ( ) [ ] , op string name number keyword end
    value: Any
    position: int


def _refuse(text: str, position: int, why: str) -> QueryError:
    return QueryError(
        f"cannot read the query at character {position + 1} ({text[position : position + 20]!r}): "
        f"{why}; e.g. --where 'metrics.rmse < 0.1 and status == \"succeeded\"'."
    )


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()[],":
            tokens.append(_Token(c, c, i))
            i += 1
        elif (op := next((o for o in _OPERATORS if text.startswith(o, i)), None)) is not None:
            tokens.append(_Token("op", op, i))
            i += len(op)
        elif c in "\"'":
            value, end = _string(text, i)
            tokens.append(_Token("string", value, i))
            i = end
        elif c == "`":
            close = text.find("`", i + 1)
            if close < 0:
                raise _refuse(text, i, "this quoted name has no closing `")
            tokens.append(_Token("name", text[i + 1 : close], i))
            i = close + 1
        elif (number := _NUMBER.match(text, i)) and (
            c not in "+-" or text[i + 1 : i + 2] in set("0123456789.")
        ):
            literal = number.group()
            is_int = re.fullmatch(r"[-+]?\d+", literal) is not None
            tokens.append(_Token("number", int(literal) if is_int else float(literal), i))
            i = number.end()
        elif word := _WORD.match(text, i):
            name = word.group()
            is_keyword = name.lower() in _KEYWORDS and "." not in name
            tokens.append(
                _Token("keyword" if is_keyword else "name", name.lower() if is_keyword else name, i)
            )
            i = word.end()
        else:
            raise _refuse(text, i, f"unexpected character {c!r}")
    tokens.append(_Token("end", None, len(text)))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif text[i] == quote:
            return "".join(out), i + 1
        else:
            out.append(text[i])
            i += 1
    raise _refuse(text, start, f"this string has no closing {quote}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _ordered(a: Any, b: Any, op: str) -> bool:
    if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


@dataclass(frozen=True)
class _Test:
    column: str
    op: str  # == != < <= > >= in ~ missing present
    values: tuple[Value, ...] = ()
    pattern: re.Pattern[str] | None = None

    def holds(self, get: Getter) -> bool:
        value = get(self.column)
        if self.op in ("missing", "present"):
            return _missing(value) == (self.op == "missing")
        if _missing(value):
            return False  # a comparison with a missing value is false
        if self.op == "~":
            return (
                isinstance(value, str)
                and self.pattern is not None
                and bool(self.pattern.search(value))
            )
        if self.op == "in":
            return any(_equal(value, v) for v in self.values)
        if self.op == "==":
            return _equal(value, self.values[0])
        if self.op == "!=":
            return not _equal(value, self.values[0])
        return _ordered(value, self.values[0], self.op)


@dataclass(frozen=True)
class _Logic:
    op: str  # and or not
    operands: tuple[_Node, ...]

    def holds(self, get: Getter) -> bool:
        if self.op == "not":
            return not self.operands[0].holds(get)
        if self.op == "and":
            return all(operand.holds(get) for operand in self.operands)
        return any(operand.holds(get) for operand in self.operands)


_Node = _Test | _Logic


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.value == word

    def expect(self, kind: str, what: str) -> _Token:
        token = self.take()
        if token.kind != kind:
            raise _refuse(self.text, token.position, f"expected {what} here")
        return token

    def any_of(self) -> _Node:
        node = self.all_of()
        while self.keyword("or"):
            self.take()
            node = _Logic("or", (node, self.all_of()))
        return node

    def all_of(self) -> _Node:
        node = self.negation()
        while self.keyword("and"):
            self.take()
            node = _Logic("and", (node, self.negation()))
        return node

    def negation(self) -> _Node:
        if self.keyword("not"):
            self.take()
            return _Logic("not", (self.negation(),))
        if self.peek().kind == "(":
            self.take()
            inner = self.any_of()
            self.expect(")", "a closing )")
            return inner
        return self.test()

    def value(self) -> Value:
        token = self.take()
        if token.kind in ("number", "string"):
            value: Value = token.value
            return value
        if token.kind == "keyword" and token.value in ("true", "false"):
            return bool(token.value == "true")
        raise _refuse(self.text, token.position, 'expected a number, a "string", true or false')

    def test(self) -> _Node:
        column = self.expect("name", "a column name (e.g. metrics.rmse)").value
        token = self.take()
        if token.kind == "op" and token.value == "~":
            pattern = self.expect("string", 'a "regular expression"')
            try:
                compiled = re.compile(pattern.value)
            except re.error as error:
                why = f"the regular expression does not compile ({error})"
                raise _refuse(self.text, pattern.position, why) from None
            return _Test(column, "~", pattern=compiled)
        if token.kind == "op":
            return _Test(column, token.value, (self.value(),))
        if token.kind == "keyword" and token.value == "in":
            self.expect("[", "a [ opening the list")
            values = [self.value()]
            while self.peek().kind == ",":
                self.take()
                values.append(self.value())
            self.expect("]", "a closing ]")
            return _Test(column, "in", tuple(values))
        if token.kind == "keyword" and token.value == "is":
            negated = self.keyword("not")
            if negated:
                self.take()
            if not self.keyword("missing"):
                raise _refuse(self.text, self.peek().position, "expected missing here")
            self.take()
            return _Test(column, "present" if negated else "missing")
        raise _refuse(
            self.text, token.position, "expected a comparison (== != < <= > >= ~ in is) here"
        )


@dataclass(frozen=True)
class Query:
    """A parsed query; ``matches`` tells whether a row passes it."""

    text: str
    _root: _Node

    def matches(self, get: Getter) -> bool:
        """Whether the row whose column values ``get`` gives (None: missing) passes."""
        return self._root.holds(get)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the query reads, once each, in the order it names them."""
        found: dict[str, None] = {}
        pending: list[_Node] = [self._root]
        while pending:
            node = pending.pop(0)
            if isinstance(node, _Test):
                found[node.column] = None
            else:
                pending[:0] = node.operands
        return tuple(found)


def parse_query(text: str) -> Query:
    """Parse ``text``; raises ``QueryError`` pointing at the first character it cannot read."""
    parser = _Parser(text)
    if parser.peek().kind == "end":
        raise QueryError("the query is empty; e.g. --where 'metrics.rmse < 0.1'.")
    root = parser.any_of()
    rest = parser.peek()
    if rest.kind != "end":
        raise _refuse(text, rest.position, "expected and, or or the end of the query here")
    return Query(text, root)
