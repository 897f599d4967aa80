"""TOML: read with ``tomllib`` (``tomli`` before Python 3.11), written with ``tomli-w``.

TOML has no null and only string keys: dumping a config that holds ``None`` or an ``int``
key fails with the key's dotted path before anything is written (``ato.representable``).
Dates, times and arrays mixing types (TOML 1.0) are written as such.
"""

from __future__ import annotations

import datetime
import re
import sys

import tomli_w

from ato.errors import ConfigFileError
from ato.representable import Unrepresentable, a_type, prepare

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _toml_rule(value):
    if value is None:
        raise Unrepresentable("None", "remove the key or choose a value (TOML has no null)")
    if isinstance(value, int) and not isinstance(value, bool) and \
            not -2**63 <= value < 2**63:
        raise Unrepresentable(f"the integer {value} (TOML integers are 64-bit)",
                              "store it as a string or a float")
    if isinstance(value, (bool, int, float, str, datetime.date, datetime.time)):
        return value
    raise Unrepresentable(f"{a_type(value)} ({value!r})",
                          "convert it to a str, number, date or list first")


def _toml_key(key):
    if isinstance(key, str):
        return key
    raise Unrepresentable(f"the key {key!r} ({a_type(key)}; TOML keys are strings)",
                          "use str keys, or YAML, which keeps int keys")


def _end_of(text: str) -> tuple[int, int]:
    """Line and column just after the last character that is not white space: where a
    document that ends too early ends, for ``(at end of document)`` errors."""
    body = text.rstrip()
    return body.count("\n") + 1, len(body) - (body.rfind("\n") + 1) + 1


def _first_definition(text: str, line: int | None) -> int | None:
    """The earlier line of the same table that sets the key set again on ``line`` (for
    tomllib's ``Cannot overwrite a value``), or ``None`` when it is not that simple."""
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return None
    key, eq, _ = lines[line - 1].partition("=")
    key = key.strip()
    if not eq or not key:
        return None
    for number in range(line - 1, 0, -1):
        here = lines[number - 1].strip()
        if here.startswith("["):  # the table began: the key was not set in it
            return None
        other, eq, _ = here.partition("=")
        if eq and other.strip() == key:
            return number
    return None


class TOMLFormat:
    PLUGIN_NAME = "toml"
    suffixes = (".toml",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            message = str(e)
            m = _WHERE.search(message)
            line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
            if m is None and "end of document" in message:
                line, column = _end_of(text)
            message = _WHERE.sub("", message).strip()
            first = _first_definition(text, line) if "overwrite" in message else None
            if first:
                message += f" (first at line {first})"
            raise ConfigFileError(path, message, line, column) from None

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        return tomli_w.dumps(prepare(data, path, "TOML", _toml_rule, _toml_key), **kwargs)
