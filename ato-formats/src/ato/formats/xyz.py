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
from ato.representable import Unrepresentable, a_type, prepare


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _xyz_rule(value):
    if not isinstance(value, (type(None), bool, int, float, str)):
        raise Unrepresentable(f"{a_type(value)} ({value!r})",
                              "convert it to a str or number first, or use YAML")
    text = str(value)
    if text.splitlines() != [text] or not _same(_xyz.reads_back(text), value):
        raise Unrepresentable(
            f"the string {value!r} (it would read back as {_xyz.reads_back(text)!r})"
            if text.splitlines() == [text] else f"the string {value!r} (a line break)",
            "use YAML or JSON, which quote strings")
    return value


def _key_rule(fmt: dict):
    postfix = fmt["key-postfix"]

    def rule(key):
        if not isinstance(key, str):
            raise Unrepresentable(f"the key {key!r} ({a_type(key)}; XYZ keys read "
                                  f"back as strings)", "use str keys, or YAML")
        if postfix in key or key != key.strip() or key.splitlines() != [key]:
            raise Unrepresentable(f"the key {key!r} (it holds {postfix!r}, a line break or "
                                  f"surrounding spaces)", "rename it, or use YAML")
        if _xyz.index_marker(key, fmt) is not None:
            raise Unrepresentable(f"the key {key!r} (it starts like a list index)",
                                  "rename it, or use YAML")
        return key
    return rule


class XYZFormat:
    PLUGIN_NAME = "xyz"
    suffixes = (".xyz",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            return _xyz.loads(text)
        except ValueError as e:
            raise ConfigFileError(path, str(e)) from None

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        fmt = _xyz._fmt(kwargs.get("format_dict"))
        data = prepare(data, path, "XYZ", _xyz_rule, _key_rule(fmt))
        return _xyz.dumps(data, **kwargs)
