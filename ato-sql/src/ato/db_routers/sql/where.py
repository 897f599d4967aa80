"""Typed queries over run configs: ``lr < 0.01 and (model == 'resnet50' or model.depth >= 50)``.

The expression is parsed here (never evaluated) and compiled to SQL over the ``config``
JSON column with the database's own JSON functions (SQLite ``json_each``, PostgreSQL
``->``/``json_typeof``), every key and value a bound parameter.

Keys are dotted paths; a segment that is not a plain word is quoted, with the escapes of
the command line: ``"learning rate" > 0``, ``model."conv.1".depth == 3``,
``'it\'s' == 1``.  Keys are matched exactly as stored, whatever characters they hold
(quotes, backslashes, dots, spaces, digits, any Unicode), with the same result on SQLite
and PostgreSQL.  A segment of digits (no leading zero) also indexes a list:
``layers.0 == 64``.

A comparison holds only for a run whose key exists with a value of the compared type: a
number compares with numbers (int and float alike, never bool; ``inf``/``-inf`` in IEEE
order; stored non-finite floats are the markers of :mod:`ato.db_routers.sql.values`), a
string with strings (code point order on both databases), ``True`` / ``False`` / ``None``
only with ``==`` and ``!=``.  ``nan`` is never ordered: ``x == nan`` holds when ``x`` is
NaN, ``x != nan`` when ``x`` is any other number, and a NaN value is ``!=`` every number.
Every comparison is true or false (a missing key is false), so ``not`` is the exact
complement.  These are the semantics of the tracker protocol's Python evaluator
(``ato.tracking.where.matches``); ``tests/sql/test_values.py`` checks SQL against it.
"""

from __future__ import annotations

from ato.errors import AtoError
from ato.grammar import parse_value

_OPS = ("==", "!=", "<=", ">=", "<", ">", "=")
_SQL_OPS = {"==": "=", "=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class WhereError(AtoError, ValueError):
    """A ``--where`` expression could not be parsed; the message names the position."""

    def __init__(self, message: str, text: str, position: int):
        self.position = position
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
    return _Parser(text).parse()


def _is_index(segment: str) -> bool:
    """A segment that may index a list: ``0`` or digits without a leading zero."""
    return segment.isdigit() and segment.isascii() and (segment == "0" or segment[0] != "0")


_INF = '{"$numberDouble":"Infinity"}'
_NEG_INF = '{"$numberDouble":"-Infinity"}'
_NAN = '{"$numberDouble":"NaN"}'


class _Leaf:
    """SQL fragments describing the value at one key path, for one dialect."""

    def __init__(self, number: str, is_nan: str, string: str, type_is):
        self.number = number      # the value as a double (±inf included), NULL otherwise
        self.is_nan = is_nan      # true when the value is the encoded NaN
        self.string = string      # the value as text when it is a string, NULL otherwise
        self.type_is = type_is    # callable: JSON type name -> SQL condition


def _condition(leaf: _Leaf, op: str, value, bind) -> str:
    """The SQL condition for ``<leaf> <op> <value>`` (may be NULL for a missing key)."""
    sql_op = _SQL_OPS[op]
    if value is None:
        return leaf.type_is("null") if sql_op == "=" else f"NOT {leaf.type_is('null')}"
    if isinstance(value, bool):
        word, other = ("true", "false") if value else ("false", "true")
        return leaf.type_is(word if sql_op == "=" else other)
    if isinstance(value, float) and value != value:
        if sql_op == "=":
            return leaf.is_nan
        if sql_op == "<>":
            return f"{leaf.number} IS NOT NULL"
        return "1 = 0"
    if isinstance(value, (int, float)):
        name = bind(float(value) if isinstance(value, float) else value)
        if sql_op == "<>":
            return f"({leaf.number} <> {name} OR {leaf.is_nan})"
        return f"{leaf.number} {sql_op} {name}"
    return f"{leaf.string} {sql_op} {bind(str(value))}"


def _sqlite_comparison(parts, op, value, column, bind) -> str:
    joins, keys = [], []
    for n, part in enumerate(parts):
        # A row whose JSON SQLite cannot parse (Python's Infinity/NaN tokens, written by the
        # original Ato) matches nothing instead of failing the whole query.
        source = f"CASE WHEN json_valid({column}) THEN {column} END" if n == 0 else (
            f"CASE WHEN j{n - 1}.type IN ('object', 'array') THEN j{n - 1}.value END")
        joins.append(f"json_each({source}) j{n}")
        names = [bind(part)] + ([bind(int(part))] if _is_index(part) else [])
        keys.append(f"j{n}.key IN ({', '.join(names)})")
    j = f"j{len(parts) - 1}"
    number = (f"(CASE WHEN {j}.type IN ('integer', 'real') THEN {j}.atom "
              f"WHEN {j}.type = 'object' THEN CASE json({j}.value) "
              f"WHEN '{_INF}' THEN 9e999 WHEN '{_NEG_INF}' THEN -9e999 END END)")
    leaf = _Leaf(number=number,
                 is_nan=f"({j}.type = 'object' AND json({j}.value) = '{_NAN}')",
                 string=f"(CASE WHEN {j}.type = 'text' THEN {j}.atom END)",
                 type_is=lambda name: f"({j}.type = '{name}')")
    where = " AND ".join(keys + [f"({_condition(leaf, op, value, bind)})"])
    return f"EXISTS (SELECT 1 FROM {', '.join(joins)} WHERE {where})"


def _postgresql_comparison(parts, op, value, column, bind) -> str:
    node = f"CAST({column} AS json)"
    for part in parts:
        key = bind(part)
        if _is_index(part):
            index = bind(int(part))
            node = (f"(CASE WHEN json_typeof({node}) = 'array' THEN {node} -> "
                    f"CAST({index} AS integer) ELSE {node} -> CAST({key} AS text) END)")
        else:
            node = f"({node} -> CAST({key} AS text))"
    typ = f"json_typeof({node})"
    as_jsonb = f"CAST({node} AS jsonb)"
    number = (f"(CASE WHEN {typ} = 'number' THEN CAST({node} #>> '{{}}' AS double precision) "
              f"WHEN {typ} = 'object' THEN CASE {as_jsonb} "
              f"WHEN CAST('{_INF}' AS jsonb) THEN CAST('Infinity' AS double precision) "
              f"WHEN CAST('{_NEG_INF}' AS jsonb) THEN CAST('-Infinity' AS double precision) "
              f"END END)")
    def type_is(name: str) -> str:
        if name in ("true", "false"):
            return f"({typ} = 'boolean' AND {node} #>> '{{}}' = '{name}')"
        return f"({typ} = '{name}')"

    leaf = _Leaf(number=number,
                 is_nan=f"({typ} = 'object' AND {as_jsonb} = CAST('{_NAN}' AS jsonb))",
                 string=f"(CASE WHEN {typ} = 'string' THEN {node} #>> '{{}}' END) COLLATE \"C\"",
                 type_is=type_is)

    def typed_bind(v):
        kind = "double precision" if isinstance(v, (int, float)) else "text"
        return f"CAST({bind(v)} AS {kind})"

    return f"COALESCE(({_condition(leaf, op, value, typed_bind)}), FALSE)"


def compile_where(tree, dialect: str, column: str = "e.config") -> tuple[str, dict]:
    """SQL for ``tree`` on ``dialect`` ('sqlite' or 'postgresql') and its parameters.

    Every key segment and value is a bound parameter (``:wN``); the SQL text holds only
    constants.  Raises :class:`WhereError` for another dialect."""
    if dialect not in ("sqlite", "postgresql"):
        raise WhereError(f"--where is supported on SQLite and PostgreSQL, not {dialect}", "", 0)
    params: dict = {}

    def bind(value) -> str:
        name = f"w{len(params)}"
        params[name] = value
        return f":{name}"

    compare = _sqlite_comparison if dialect == "sqlite" else _postgresql_comparison

    def emit(node):
        kind = node[0]
        if kind in ("and", "or"):
            return f"({emit(node[1])} {kind.upper()} {emit(node[2])})"
        if kind == "not":
            return f"(NOT {emit(node[1])})"
        _, parts, op, value = node
        return compare(parts, op, value, column, bind)

    return emit(tree), params
