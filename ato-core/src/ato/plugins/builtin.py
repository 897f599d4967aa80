"""Core's own plugins, registered through the same hooks a third party uses:
the JSON and JSON Lines formats and the ``ato plugins`` command."""

from __future__ import annotations

import json

from ato.errors import ConfigFileError
from ato.plugins import hookimpl


class JSONFormat:
    PLUGIN_NAME = "json"
    suffixes = (".json",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            return json.loads(text, **kwargs)
        except json.JSONDecodeError as e:
            raise ConfigFileError(path, e.msg, e.lineno, e.colno) from None

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        """Refuses (naming the key path) what JSON cannot hold: see ``ato.representable``."""
        from ato.representable import json_checked

        return json.dumps(json_checked(data, path, kwargs), **kwargs)


class JSONLinesFormat:
    """One JSON object per non-empty line; a file holding one JSON array also loads."""

    PLUGIN_NAME = "jsonl"
    suffixes = (".jsonl",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        stripped = text.strip()
        if stripped.startswith("["):
            return JSONFormat.loads(stripped, path, **kwargs)
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line, **kwargs))
            except json.JSONDecodeError as e:
                raise ConfigFileError(path, e.msg, lineno, e.colno) from None
        return out

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        from ato.representable import json_checked

        rows = data if isinstance(data, list) else [data]
        rows = json_checked(rows, path, kwargs)
        return "".join(json.dumps(row, **kwargs) + "\n" for row in rows)


class PluginsCommand:
    PLUGIN_NAME = "plugins"
    help = "list installed plugins and what each provides"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    @staticmethod
    def run(args) -> int:
        from ato.plugins.manager import describe_plugins, failures

        rows = describe_plugins()
        broken = failures()
        if args.json:
            print(json.dumps({"plugins": rows, "failed": [
                {"name": n, "error": e} for n, e in broken]}, indent=2))
            return 0
        for row in rows:
            print(f"{row['name']}  [{row['distribution']}]")
            for label, names in row["provides"].items():
                print(f"    {label}: {', '.join(names)}")
        for name, error in broken:
            print(f"{name}  [FAILED TO LOAD] {error}")
        return 0


@hookimpl
def ato_register_formats():
    return [JSONFormat, JSONLinesFormat]


@hookimpl
def ato_register_commands():
    return PluginsCommand
