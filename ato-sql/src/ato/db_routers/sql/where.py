"""Typed queries over run configs: ``lr < 0.01 and (model == 'resnet50' or model.depth >= 50)``.

The expression is parsed by the tracker protocol's grammar (:mod:`ato.tracking.where`, never
evaluated) and compiled here to SQL over the ``config``
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

from ato.tracking.where import (  # noqa: F401 (WhereError, parse_where, split_key: re-exported)
    WhereError,
    _is_index,
    as_double,
    parse_where,
    split_key,
)

_SQL_OPS = {"==": "=", "=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
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
        # the leaf is a double on both databases: compare with a double, so an integer
        # past 64 bits neither overflows SQLite's binding nor compares differently there
        name = bind(as_double(value))
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
