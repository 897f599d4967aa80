"""The typed ``where`` grammar of ``ato runs --where`` and ``find_runs(where=...)``:
``lr < 0.01 and (model == 'resnet50' or model.depth >= 50)``.

:func:`parse_where` turns the text into a small tree (never evaluating it); a backend
compiles the tree to its own query language (ato-sql: bound SQL parameters) or evaluates it
in Python with :func:`matches`.  The tree is nested tuples: ``("and", a, b)``,
``("or", a, b)``, ``("not", a)`` and ``("cmp", [key parts], op, value)`` with ``op`` one of
``== = != < <= > >=`` and ``value`` an int, float, str, bool or None.

A comparison holds only for a run whose key exists with a value of the compared type: a
number compares with numbers (int and float alike, never bool), a string with strings,
``True``/``False``/``None`` only with ``==`` and ``!=``.  Otherwise it is *unknown*, and as
in SQL ``not`` of unknown is unknown: ``not lr < 0.01`` matches neither a run without
``lr`` nor one whose ``lr`` is a string.
"""

from __future__ import annotations

from ato.errors import AtoError
from ato.grammar import parse_value

_OPS = ("==", "!=", "<=", ">=", "<", ">", "=")


class WhereError(AtoError, ValueError):
    """A ``--where`` expression could not be parsed; the message names the position."""

    def __init__(self, message: str, text: str, position: int):
        self.position = position
        super().__init__(f"in --where {text!r} at position {position}: {message}")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(("paren", c, i))
            i += 1
        elif text.startswith(_OPS, i):
            op = next(o for o in _OPS if text.startswith(o, i))
            tokens.append(("op", op, i))
            i += len(op)
        elif c in "'\"%":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                raise WhereError(f"unterminated string (add the closing {c})", text, i)
            tokens.append(("value", text[i:j + 1], i))
            i = j + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "()=!<>":
                j += 1
            if j == i:
                raise WhereError(f"unexpected {c!r}", text, i)
            word = text[i:j]
            kind = "keyword" if word in ("and", "or", "not") else "word"
            tokens.append((kind, word, i))
            i = j
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None, len(self.text))

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def parse(self):
        node = self.parse_or()
        kind, value, pos = self.peek()
        if kind is not None:
            raise WhereError(f"unexpected {value!r} (expected 'and', 'or' or the end)", self.text, pos)
        return node

    def parse_or(self):
        node = self.parse_and()
        while self.peek()[:2] == ("keyword", "or"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while self.peek()[:2] == ("keyword", "and"):
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if self.peek()[:2] == ("keyword", "not"):
            self.take()
            return ("not", self.parse_not())
        if self.peek()[:2] == ("paren", "("):
            self.take()
            node = self.parse_or()
            kind, value, pos = self.take()
            if (kind, value) != ("paren", ")"):
                raise WhereError("missing ')'", self.text, pos)
            return node
        return self.parse_comparison()

    def parse_comparison(self):
        kind, key, pos = self.take()
        if kind != "word":
            raise WhereError("expected a config key such as lr or model.depth", self.text, pos)
        parts = key.split(".")
        if not all(parts):
            raise WhereError(f"{key!r} is not a valid key", self.text, pos)
        kind, op, op_pos = self.take()
        if kind != "op":
            raise WhereError(f"expected a comparison (==, !=, <, <=, >, >=) after {key!r}",
                             self.text, op_pos)
        kind, literal, lit_pos = self.take()
        if kind not in ("word", "value"):
            raise WhereError("expected a value", self.text, lit_pos)
        try:
            value = parse_value(literal)
        except Exception:
            raise WhereError(f"{literal!r} is not a value (quote strings: '{literal}')",
                             self.text, lit_pos) from None
        if isinstance(value, (list, tuple, dict)):
            raise WhereError("compare with a number, a string, True, False or None", self.text,
                             lit_pos)
        if (value is None or isinstance(value, bool)) and op not in ("==", "=", "!="):
            raise WhereError(f"{value!r} can only be compared with == or !=", self.text, op_pos)
        return ("cmp", parts, op, value)


def parse_where(text: str):
    """Parse an expression into a small tree (raises :class:`WhereError`)."""
    if not text or not text.strip():
        raise WhereError("the expression is empty", text or "", 0)
    return _Parser(text).parse()


_MISSING = object()
_COMPARE = {
    "==": lambda a, b: a == b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _lookup(config, parts):
    node = config
    for part in parts:
        data = getattr(node, "_data", node)  # an ADict without counting a user access
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        node = data[part]
    return node


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(node, config) -> bool | None:
    _, parts, op, expected = node
    actual = _lookup(config, parts)
    if actual is _MISSING:
        return None
    if expected is None or isinstance(expected, bool):
        if op == "!=":
            if expected is None:
                return actual is not None
            return isinstance(actual, bool) and actual is not expected
        return actual is expected
    if _is_number(expected):
        if not _is_number(actual):
            return None
    elif not isinstance(actual, str):
        return None
    return _COMPARE[op](actual, expected)


def _evaluate(node, config) -> bool | None:
    kind = node[0]
    if kind == "cmp":
        return _compare(node, config)
    if kind == "not":
        inner = _evaluate(node[1], config)
        return None if inner is None else not inner
    left, right = _evaluate(node[1], config), _evaluate(node[2], config)
    if kind == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def matches(tree, config) -> bool:
    """Whether ``config`` (a nested mapping or ADict) satisfies the parsed ``tree``
    (unknown counts as no match)."""
    return _evaluate(tree, config) is True
