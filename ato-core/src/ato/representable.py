"""What a config file format can hold: checked, and converted, before anything is written.

Every format plugin's ``dumps`` calls :func:`prepare` with two small rules of its own; the
walk is shared.  Two conversions hold for every format (a tuple is written as a list, a
``pathlib`` path as its string); anything else a format cannot hold raises
:class:`~ato.errors.ConfigFileError` naming the format, the value and its key path
(``m.layers[2]``) — before the file is opened, so an existing file stays intact.  The table
of what each format holds is in ``docs/formats.md``.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Mapping

from ato.errors import AtoError, ConfigFileError

__all__ = ["Unrepresentable", "UnrepresentableError", "a_type", "prepare", "json_rule", "json_key", "key_path",
           "MAX_NESTING", "nesting_problem"]

#: How deeply mappings and lists may nest in a config (a file, a command-line value or
#: key, a chain of interpolations): deep enough for any real config, shallow enough that
#: every recursive walk over a config stays far from Python's recursion limit.
MAX_NESTING = 100

_SCALARS = (type(None), bool, int, float, str)


class UnrepresentableError(AtoError, ValueError):
    """A value cannot be converted to a format (raised when no file is involved, e.g. by
    ``ADict.json()``); writing a file raises :class:`~ato.errors.ConfigFileError`."""


class Unrepresentable(Exception):
    """Raised by a format rule: ``what`` cannot be written; ``hint`` says what to do."""

    def __init__(self, what: str, hint: str = ""):
        super().__init__(what)
        self.what, self.hint = what, hint


def a_type(value) -> str:
    """``'an int'``, ``'a str'``: the value's type name with its article."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def nesting_problem(data) -> str | None:
    """What is wrong with the shape of loaded ``data``: mappings and lists nested more than
    :data:`MAX_NESTING` deep, or a container that holds itself (a recursive YAML alias
    such as ``a: &a {b: *a}``); ``None`` when nothing is."""
    on_path: dict = {}  # id of each container being walked -> its key path

    def walk(node, parts):
        if not isinstance(node, (dict, list)):
            return None
        if id(node) in on_path:
            return (f"a value that contains itself: {key_path(parts)} is "
                    f"{key_path(on_path[id(node)]) or 'the top level'} itself")
        if len(parts) >= MAX_NESTING:
            shown = key_path(parts[:3])
            return (f"mappings and lists nested more than {MAX_NESTING} levels deep (at "
                    f"{shown}... {len(parts)} levels down)")
        on_path[id(node)] = parts
        items = node.items() if isinstance(node, dict) else enumerate(node)
        kind = "key" if isinstance(node, dict) else "index"
        try:
            for k, v in items:
                problem = walk(v, parts + ((kind, k),))
                if problem:
                    return problem
        finally:
            on_path.pop(id(node), None)
        return None

    return walk(data, ())


def key_path(parts: tuple) -> str:
    """``m.layers[2]`` for key ``m``, key ``layers``, list index 2; a key that holds a dot,
    a bracket, a quote or spaces, or is empty, is shown as ``m['a.b']``."""
    out = ""
    for kind, part in parts:
        if kind == "index":
            out += f"[{part}]"
        elif isinstance(part, str) and (not part or part != part.strip()
                                        or any(c in part for c in ".[]'\"\n")):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def prepare(data, file: str | None, fmt: str, rule: Callable, key_rule: Callable | None = None):
    """A copy of ``data`` (dicts, lists, scalars) ready for format ``fmt``.

    ``rule(value)`` is called for every value that is not a mapping or a list and returns
    what to write (usually ``value`` itself) or raises :class:`Unrepresentable`;
    ``key_rule(key)`` does the same for every mapping key.  Tuples become lists and
    ``pathlib`` paths strings before the rules see them.

    Raises:
        ConfigFileError: ``"<file>: <FMT> cannot hold <what> (key '<path>'); <hint>"``
            (:class:`UnrepresentableError` without the file name when ``file`` is None).
    """

    def fail(exc: Unrepresentable, parts: tuple):
        where = key_path(parts) or "the top level"
        hint = f"; {exc.hint}" if exc.hint else ""
        message = f"{fmt} cannot hold {exc.what} (key {where!r}){hint}"
        if file is None:
            raise UnrepresentableError(message)
        raise ConfigFileError(file, message)

    def walk(value, parts: tuple):
        if isinstance(value, (Mapping, list, tuple)) and len(parts) >= MAX_NESTING:
            # what Ato could not read back (nesting_problem refuses it on loading)
            shown = key_path(parts[:3])
            fail(Unrepresentable(f"mappings and lists nested more than {MAX_NESTING} levels "
                                 f"deep (at {shown}... {len(parts)} levels down)",
                                 f"Ato reads at most {MAX_NESTING} levels"), parts[:3])
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                here = parts + (("key", k),)
                if key_rule is not None:
                    try:
                        k = key_rule(k)
                    except Unrepresentable as e:
                        fail(e, here)
                out[k] = walk(v, here)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(v, parts + (("index", i),)) for i, v in enumerate(value)]
        if isinstance(value, pathlib.PurePath):
            value = str(value)
        try:
            return rule(value)
        except Unrepresentable as e:
            fail(e, parts)

    return walk(data, ())


# --------------------------------------------------------------------------- JSON
def json_rule(value):
    """JSON holds null, booleans, numbers (finite only) and strings."""
    if isinstance(value, float) and not math.isfinite(value):
        raise Unrepresentable(f"{value!r} (JSON has no inf or nan)",
                              "use YAML or TOML, which do, or dump(path, allow_nan=True) for "
                              "Python's non-standard Infinity/NaN tokens")
    if isinstance(value, _SCALARS):
        return value
    raise Unrepresentable(f"{a_type(value)} ({value!r})",
                          "convert it to a str, number or list first")


def json_rule_allow_nan(value):
    """:func:`json_rule`, except that inf and nan are written as Python's tokens."""
    if isinstance(value, float):
        return value
    return json_rule(value)


def json_key(key):
    """JSON object keys are strings."""
    if isinstance(key, str):
        return key
    raise Unrepresentable(f"the key {key!r} ({a_type(key)}; JSON keys are strings)",
                          "use str keys, or YAML, which keeps int keys")


def json_checked(data, file: str | None, options: dict):
    """``data`` prepared for ``json.dumps(**options)``: ``allow_nan=True`` lets inf and nan
    through as Python's ``Infinity``/``NaN`` tokens, a ``default=`` callable takes every
    other value it is given."""
    if options.get("default") is not None:
        def rule(value):
            if isinstance(value, float) and not options.get("allow_nan"):
                return json_rule(value)
            return value
    elif options.get("allow_nan"):
        rule = json_rule_allow_nan
    else:
        rule = json_rule
    return prepare(data, file, "JSON", rule, None if options.get("skipkeys") else json_key)
