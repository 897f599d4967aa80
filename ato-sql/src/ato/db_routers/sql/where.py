"""Typed queries over run configs: ``lr < 0.01 and (model == 'resnet50' or model.depth >= 50)``.

The expression is parsed here (never evaluated) and compiled to SQL over the ``config``
JSON column with the database's own JSON functions (SQLite ``json_extract``/``json_type``,
PostgreSQL ``#>``/``json_typeof``), every key path and value a bound parameter.

A comparison matches only runs whose key exists with a value of the compared type: a
number compares with numbers (int and float alike), a string with strings, ``True`` /
``False`` / ``None`` only with ``==`` and ``!=``.
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


def compile_where(tree, dialect: str, column: str = "e.config") -> tuple[str, dict]:
    """SQL for ``tree`` on ``dialect`` ('sqlite' or 'postgresql') and its parameters."""
    params: dict = {}

    def emit(node):
        kind = node[0]
        if kind in ("and", "or"):
            return f"({emit(node[1])} {kind.upper()} {emit(node[2])})"
        if kind == "not":
            return f"(NOT {emit(node[1])})"
        _, parts, op, value = node
        n = len(params)
        path_name, value_name = f"wp{n}", f"wv{n}"
        sql_op = _SQL_OPS[op]
        if dialect == "sqlite":
            params[path_name] = "$" + "".join(f'."{p}"' for p in parts)
            typ = f"json_type({column}, :{path_name})"
            val = f"json_extract({column}, :{path_name})"
            if value is None:
                return f"({typ} = 'null')" if sql_op == "=" else f"({typ} <> 'null')"
            if isinstance(value, bool):
                word = "true" if value else "false"
                return f"({typ} = '{word}')" if sql_op == "=" else f"({typ} IN ('true', 'false') AND {typ} <> '{word}')"
            params[value_name] = value
            types = "('integer', 'real')" if isinstance(value, (int, float)) else "('text')"
            return f"({typ} IN {types} AND {val} {sql_op} :{value_name})"
        params[path_name] = list(parts)
        node_sql = f"({column} #> CAST(:{path_name} AS text[]))"
        text_sql = f"({column} #>> CAST(:{path_name} AS text[]))"
        typ = f"json_typeof({node_sql})"
        if value is None:
            return f"({typ} = 'null')" if sql_op == "=" else f"({typ} <> 'null')"
        if isinstance(value, bool):
            word = "true" if value else "false"
            if sql_op == "=":
                return f"({typ} = 'boolean' AND {text_sql} = '{word}')"
            return f"({typ} = 'boolean' AND {text_sql} <> '{word}')"
        params[value_name] = value
        if isinstance(value, (int, float)):
            return (f"((CASE WHEN {typ} = 'number' THEN CAST({text_sql} AS double precision) END)"
                    f" {sql_op} :{value_name})")
        return f"((CASE WHEN {typ} = 'string' THEN {text_sql} END) {sql_op} :{value_name})"

    return emit(tree), params
