"""`.properties` config files: ``dotted.key = value``, one per line."""

from __future__ import annotations

from ato.errors import CLIError, ConfigFileError
from ato.grammar import format_value, parse_value


class PropertiesFormat:
    PLUGIN_NAME = "properties"
    suffixes = (".properties",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        data: dict = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "!")):
                continue
            key, sep, value = stripped.partition("=")
            if not sep or not key.strip():
                raise ConfigFileError(path, "expected 'dotted.key = value'", lineno, 1)
            try:
                parsed = parse_value(value.strip())
            except CLIError as e:
                raise ConfigFileError(path, e.detail, lineno,
                                      line.index("=") + 2 + (e.position or 0)) from None
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigFileError(path, f"{part!r} already holds a value", lineno, 1)
            node[parts[-1]] = parsed
        return data

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        lines = []

        def walk(node, prefix):
            for k, v in node.items():
                key = f"{prefix}{k}"
                if isinstance(v, dict) and v:
                    walk(v, key + ".")
                else:
                    lines.append(f"{key} = {format_value(v)}")

        walk(data, "")
        return "\n".join(lines) + "\n"

