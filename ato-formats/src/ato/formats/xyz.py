"""``.xyz`` files in Ato's own indentation format (see :mod:`ato.xyz`)."""

from __future__ import annotations

from ato import xyz as _xyz
from ato.errors import ConfigFileError


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
        return _xyz.dumps(data, **kwargs)
