"""TOML: read with ``tomllib`` (``tomli`` before Python 3.11), written with ``tomli-w``.

TOML has no null: dumping a config that holds ``None`` fails with the key's dotted path
before anything is written.
"""

from __future__ import annotations

import re
import sys

import tomli_w

from ato.errors import ConfigFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _check(value, path: str, file: str) -> None:
    if value is None:
        raise ConfigFileError(file, f"TOML cannot hold None (key {path!r}); remove the key or "
                                    f"choose a value")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigFileError(file, f"TOML keys must be strings (key {k!r} under "
                                            f"{path or 'the top level'!r})")
            _check(v, f"{path}.{k}" if path else k, file)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]", file)


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
            raise ConfigFileError(path, _WHERE.sub("", message).strip(), line, column) from None

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        _check(data, "", path)
        return tomli_w.dumps(data, **kwargs)
