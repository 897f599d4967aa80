"""YAML through PyYAML's safe loader and dumper only."""

from __future__ import annotations

import yaml as _yaml

from ato.errors import ConfigFileError


class YAMLFormat:
    PLUGIN_NAME = "yaml"
    suffixes = (".yaml", ".yml")

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            data = _yaml.safe_load(text)
        except _yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            raise ConfigFileError(path, f"{e.problem or e.context}", line, column) from None
        except _yaml.YAMLError as e:
            raise ConfigFileError(path, str(e)) from None
        return {} if data is None else data

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        options = {"default_flow_style": False, "sort_keys": True, "allow_unicode": True}
        options.update(kwargs)
        try:
            return _yaml.safe_dump(data, **options)
        except _yaml.representer.RepresenterError as e:
            raise ConfigFileError(path, f"cannot write as YAML: {e.args[-1]!r}") from None
