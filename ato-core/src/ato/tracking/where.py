"""The typed ``where`` grammar of ``ato runs --where`` and ``find_runs(where=...)``:
``lr < 0.01 and (model == 'resnet50' or model.depth >= 50)``.

:func:`parse_where` turns the text into a small tree (never evaluating it); a backend
compiles the tree to its own query language (ato-sql: SQL with every key and value bound)
or evaluates it in Python with :func:`matches`.  The tree is nested tuples:
``("and", a, b)``, ``("or", a, b)``, ``("not", a)`` and ``("cmp", [key segments], op,
value)`` with ``op`` one of ``== = != < <= > >=`` and ``value`` an int, float (``inf``,
``nan`` included), str, bool or None.

Keys are dotted paths; a segment that is not a plain word is quoted, with the escapes of
the command line: ``"learning rate" > 0``, ``model."conv.1".depth == 3``.  A segment of
digits indexes a list (``layers.0 == 64``) and also names an object key made of those
digits.

A comparison holds only for a run whose key exists with a value of the compared type: a
number compares with numbers (int and float alike, never bool; ``inf`` included, IEEE
order), a string with strings (code point order), ``True``/``False``/``None`` only with
``==`` and ``!=``.  ``nan`` is never ordered: ``x == nan`` holds when ``x`` is NaN,
``x != nan`` when ``x`` is any other number, and a NaN value is ``!=`` every number.
Every comparison is true or false (a missing key is false), so ``not`` is the exact
complement.
"""

from __future__ import annotations

import math

from ato.errors import AtoError
from ato.grammar import parse_value

_OPS = ("==", "!=", "<=", ">=", "<", ">", "=")


class WhereError(AtoError, ValueError):
    """A ``--where`` expression could not be parsed; the message names the position."""

    def __init__(self, message: str, text: str, position: int):
        self.position = position
        if len(text) > 120:  # a long expression: the part around the position
            lo = max(0, position - 50)
            text = ("..." if lo else "") + text[lo:position + 50] + \
                ("..." if position + 50 < len(text) else "")
        super().__init__(f"in --where {text!r} at position {position}: {message}")


def _close_quote(text: str, i: int) -> int:
    """Index of the quote closing the one at ``text[i]`` (backslash escapes skipped)."""
    q = text[i]
    j = i + 1
    while j < len(text) and text[j] != q:
        j += 2 if text[j] == "\\" else 1
    if j >= len(text):
        raise WhereError(f"unterminated string (add the closing {q})", text, i)
    return j


def split_key(word: str, text: str = "", position: int = 0) -> list[str]:
    """The segments of a key path: ``a."b.c".d`` -> ``['a', 'b.c', 'd']``; quoted segments
    use the command line's escapes (``\\"``, ``\\\\``, ``\\u00e9``…)."""
    text = text or word
    parts: list[str] = []
    i = 0
    while True:
        if i < len(word) and word[i] in "'\"":
            end = _close_quote(word, i)
            try:
                parts.append(parse_value(word[i:end + 1]))
            except Exception as e:
                raise WhereError(f"bad quoted key {word[i:end + 1]}: {e}", text,
                                 position + i) from None
            i = end + 1
        else:
            j = i
            while j < len(word) and word[j] != "." and word[j] not in "'\"":
                j += 1
            if j == i or (j < len(word) and word[j] != "."):
                what = "an empty key segment" if j == i else f"a quote inside {word[i:j]!r}"
                raise WhereError(f"{word!r} is not a valid key ({what}; quote a segment that "
                                 f"holds dots or spaces: a.\"b.c\")", text, position + j)
            parts.append(word[i:j])
            i = j
        if i == len(word):
            return parts
        if word[i] != ".":
            raise WhereError(f"{word!r} is not a valid key (expected '.' after a quoted "
                             f"segment)", text, position + i)
        i += 1
        if i == len(word):
            raise WhereError(f"{word!r} is not a valid key (it ends with '.')", text,
                             position + i)


#: Characters that end or split an unquoted key segment (and the quote characters).
_SPECIAL = frozenset(".'\"%()=!<>")
#: Words the grammar reads as operators, never as a key.
_KEYWORDS = frozenset(("and", "or", "not"))


def _escape(c: str) -> str:
    if c in "\\\"":
        return "\\" + c
    if c.isprintable():
        return c
    return f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"


def key_segment(name) -> str:
    """One key segment as the grammar reads it back: ``lr`` stays ``lr``; a segment that
    is not a plain word (a dot, a space, a quote, an operator character, a keyword, empty)
    is quoted with the command line's escapes — ``"conv.1"``, ``"learning rate"``,
    ``"say \\"hi\\""``.  :func:`split_key` of the joined segments gives them back."""
    name = str(name)
    if name.isidentifier() and name not in _KEYWORDS:  # the common case, quickly
        return name
    if (name and name not in _KEYWORDS
            and not any(c.isspace() or c in _SPECIAL or not c.isprintable() for c in name)):
        return name
    escaped = "".join(_escape(c) for c in name)
    return f'"{escaped}"'


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
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "()=!<>":
                if text[j] in "'\"%":
                    j = _close_quote(text, j)
                j += 1
            if j == i:
                raise WhereError(f"unexpected {c!r}", text, i)
            word = text[i:j]
            kind = "keyword" if word in _KEYWORDS else "word"
            tokens.append((kind, word, i))
            i = j
    return tokens


#: How deeply parentheses and ``not`` may nest in the text, and how many levels of
#: ``and``/``or``/``not`` the parsed tree may have (a chain ``a or b or …`` is balanced, so
#: 2^k comparisons take k levels): deeper is refused with a parse error.  Every backend
#: compiles the tree recursively; SQLite's own parser refuses a query nested ~22 levels.
MAX_DEPTH = 20
#: How many comparisons one expression may hold (each binds parameters; SQLite takes at
#: most 32,766 of them per query).
MAX_COMPARISONS = 10_000
MAX_NESTING = 3 * MAX_DEPTH  # in the text: redundant parentheses allowed


def _depth(node) -> int:
    """Levels of ``and``/``or``/``not`` above the deepest comparison (iterative)."""
    deepest, todo = 0, [(node, 0)]
    while todo:
        node, d = todo.pop()
        if node[0] == "cmp":
            deepest = max(deepest, d)
        else:
            todo.extend((child, d + 1) for child in node[1:])
    return deepest


def _chain(op: str, nodes: list):
    """``nodes`` joined by ``op`` (``and``/``or``, associative) as a balanced tree: a chain
    of thousands of comparisons stays a few levels deep for every recursive consumer."""
    while len(nodes) > 1:
        paired = [(op, nodes[k], nodes[k + 1]) for k in range(0, len(nodes) - 1, 2)]
        nodes = paired + ([nodes[-1]] if len(nodes) % 2 else [])
    return nodes[0]


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise WhereError(f"nested too deeply (at most {MAX_DEPTH} levels of and/or/not "
                             f"and parentheses)", self.text, pos)

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
        comparisons = sum(1 for kind, _, _ in self.tokens if kind == "op")
        if comparisons > MAX_COMPARISONS:
            raise WhereError(f"too many comparisons ({comparisons}; at most "
                             f"{MAX_COMPARISONS})", self.text, 0)
        if _depth(node) > MAX_DEPTH:
            raise WhereError(f"nested too deeply (at most {MAX_DEPTH} levels of and/or/not "
                             f"and parentheses)", self.text, 0)
        return node

    def parse_or(self):
        nodes = [self.parse_and()]
        while self.peek()[:2] == ("keyword", "or"):
            self.take()
            nodes.append(self.parse_and())
        return _chain("or", nodes)

    def parse_and(self):
        nodes = [self.parse_not()]
        while self.peek()[:2] == ("keyword", "and"):
            self.take()
            nodes.append(self.parse_not())
        return _chain("and", nodes)

    def parse_not(self):
        if self.peek()[:2] == ("keyword", "not"):
            self.nest(self.take()[2])
            inner = self.parse_not()  # not not x is x: every comparison is true or false
            node = inner[1] if inner[0] == "not" else ("not", inner)
            self.depth -= 1
            return node
        if self.peek()[:2] == ("paren", "("):
            self.nest(self.take()[2])
            node = self.parse_or()
            kind, value, pos = self.take()
            if (kind, value) != ("paren", ")"):
                raise WhereError("missing ')'", self.text, pos)
            self.depth -= 1
            return node
        return self.parse_comparison()

    def parse_comparison(self):
        kind, key, pos = self.take()
        if kind != "word":
            raise WhereError("expected a config key such as lr or model.depth", self.text, pos)
        parts = split_key(key, self.text, pos)
        kind, op, op_pos = self.take()
        if kind != "op":
            raise WhereError(f"expected a comparison (==, !=, <, <=, >, >=) after {key!r}",
                             self.text, op_pos)
        kind, literal, lit_pos = self.take()
        if kind not in ("word", "keyword"):
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
    if "\x00" in text:  # PostgreSQL cannot even receive it: refused on every database
        raise WhereError("the expression holds a NUL character (\\x00), which no key or "
                         "value can hold", text, text.index("\x00"))
    return _Parser(text).parse()


def _is_index(segment: str) -> bool:
    """A segment that may index a list: ``0`` or digits without a leading zero."""
    return segment.isdigit() and segment.isascii() and (segment == "0" or segment[0] != "0")


_MISSING = object()
_ORDER = {
    "==": lambda a, b: a == b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _lookup(config, parts):
    node = config
    for part in parts:
        data = getattr(node, "_data", node)  # an ADict, without counting a user access
        if isinstance(data, dict) and part in data:
            node = data[part]
        elif isinstance(data, (list, tuple)) and _is_index(part) and int(part) < len(data):
            node = data[int(part)]
        else:
            return _MISSING
    return node


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(node, config) -> bool:
    _, parts, op, expected = node
    actual = _lookup(config, parts)
    if actual is _MISSING:
        return False
    equal = op in ("==", "=")
    if expected is None:
        return (actual is None) == equal if op in ("==", "=", "!=") else False
    if isinstance(expected, bool):
        if not isinstance(actual, bool):
            return False
        return (actual is expected) == equal
    if _is_number(expected):
        if not _is_number(actual):
            return False
        if math.isnan(expected):
            if equal:
                return math.isnan(actual)
            return op == "!=" and not math.isnan(actual)
        return _ORDER[op](as_double(actual), as_double(expected))  # as the databases compare
    return isinstance(actual, str) and _ORDER[op](actual, expected)


def as_double(value) -> float:
    """A number as the databases compare it: a double (an integer beyond them is ±inf)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _evaluate(node, config) -> bool:
    kind = node[0]
    if kind == "cmp":
        return _compare(node, config)
    if kind == "not":
        return not _evaluate(node[1], config)
    if kind == "and":
        return _evaluate(node[1], config) and _evaluate(node[2], config)
    return _evaluate(node[1], config) or _evaluate(node[2], config)


def matches(tree, config) -> bool:
    """Whether ``config`` (a nested mapping or ADict, lists indexable) satisfies ``tree``."""
    return _evaluate(tree, config)
