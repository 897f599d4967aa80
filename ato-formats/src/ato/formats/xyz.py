"""``.xyz`` files in Ato's own indentation format (see :mod:`ato.xyz`).

XYZ writes every scalar with ``str()`` and reads it back by its looks, so a file write
refuses, before anything is written and naming the key path, every value that would read
back as something else: strings such as ``'100'``, ``'None'``, ``''`` or ``' padded'``,
strings holding a line break, keys that are not strings or hold the key marker, and
values of other types (bytes, dates, sets...).  ``to_xyz()``, ``print`` and ``manual``
(display only) still render anything.
"""

from __future__ import annotations

import math

from ato import xyz as _xyz
from ato.errors import ConfigFileError
from ato.plugins.interfaces import config_data
from ato.representable import Unrepresentable, a_type, prepare


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _has_line_break(text: str) -> bool:
    """Whether ``text`` holds any line boundary ``str.splitlines`` knows (``\\n``,
    ``\\r``, ``\\x0b``, ``\\x85``, ``\\u2028``...), each of which ends an XYZ line."""
    return "".join(text.splitlines()) != text


def _what(value) -> str:
    return f"the string {value!r}" if type(value) is str else f"{a_type(value)} ({value!r})"


def _xyz_rule(value):
    """``value`` if it reads back unchanged; else :class:`Unrepresentable` with the
    actual reason: its type, a line break, or what it would read back as."""
    if not isinstance(value, (type(None), bool, int, float, str)):
        raise Unrepresentable(f"{a_type(value)} ({value!r})",
                              "convert it to a str or number first, or use YAML")
    text = str(value)
    if _has_line_break(text):
        raise Unrepresentable(f"{_what(value)} (it holds a line break, which ends an XYZ "
                              f"line)", "use YAML or JSON, which quote strings")
    back = _xyz.reads_back(text)
    if not _same(back, value):
        raise Unrepresentable(f"{_what(value)} (it would read back as {back!r})",
                              "use YAML or JSON, which quote strings")
    return value


def _key_rule(fmt: dict):
    postfix = fmt["key-postfix"]

    def rule(key):
        """``key`` if it reads back as itself; else the one reason it would not."""
        if not isinstance(key, str):
            raise Unrepresentable(f"the key {key!r} ({a_type(key)}; XYZ keys read "
                                  f"back as strings)", "use str keys, or YAML")
        reason = None
        if _has_line_break(key):
            reason = "it holds a line break, which ends an XYZ line"
        elif postfix in key:
            reason = f"it holds the key marker {postfix!r}"
        elif key != key.strip():
            reason = "it has leading or trailing spaces, which reading strips"
        elif _xyz.index_marker(key, fmt) is not None:
            reason = "it starts like a list index"
        elif " -> " in key and key.split(" -> ", 1)[0] in _xyz._DEFAULT_FORMAT:
            reason = "it reads like a format header such as 'key-postfix -> ='"
        if reason:
            raise Unrepresentable(f"the key {key!r} ({reason})", "rename it, or use YAML")
        return key
    return rule


class XYZFormat:
    PLUGIN_NAME = "xyz"
    suffixes = (".xyz",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            data = _xyz.loads(text)
        except ValueError as e:
            line, colon, message = str(e).partition(": ")
            if colon and line.startswith("line ") and line[5:].isdigit():
                raise ConfigFileError(path, message, int(line[5:])) from None
            raise ConfigFileError(path, str(e)) from None
        return config_data(data, path)

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        fmt = _xyz._fmt(kwargs.get("format_dict"))
        data = prepare(data, path, "XYZ", _xyz_rule, _key_rule(fmt))
        return _xyz.dumps(data, **kwargs)
