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
    """``ato plugins``: every plugin with its distribution, version and state.

    One block per plugin, in precedence order::

        NAME  [DISTRIBUTION VERSION]  STATE
            SEAM: PLUGIN_NAME (KEYS), ...
            error: ...        (something it provides was left out)
            conflict: ...     (something it claims is served by a plugin of higher precedence)

    STATE is ``loaded``, ``disabled by ATO_DISABLE_PLUGINS`` or ``broken: REASON``.
    """

    PLUGIN_NAME = "plugins"
    help = "list installed plugins, their state and what each provides"

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--check", action="store_true",
                            help="exit 1 if any plugin is broken or had something left out "
                                 "(for CI)")

    @staticmethod
    def run(args) -> int:
        from ato.plugins.manager import describe_plugins, notes

        rows = describe_plugins()
        status = 1 if args.check and any(
            row["state"] == "broken" or row["errors"] for row in rows) else 0
        if args.json:
            print(json.dumps({"plugins": rows, "notes": notes()}, indent=2))
            return status
        for row in rows:
            dist = row["distribution"] or "registered in-process"
            if row["version"]:
                dist += f" {row['version']}"
            state = f"{row['state']} {row['reason']}" if row["state"] == "disabled" else (
                f"{row['state']}: {row['reason']}" if row["reason"] else row["state"])
            print(f"{row['name']}  [{dist}]  {state}")
            for label, names in row["provides"].items():
                print(f"    {label}: {', '.join(names)}")
            for line in row["errors"]:
                print(f"    error: {line}")
            for line in row["conflicts"]:
                print(f"    conflict: {line}")
        for line in notes():
            print(f"note: {line}")
        return status


@hookimpl
def ato_register_formats():
    return [JSONFormat, JSONLinesFormat]


@hookimpl
def ato_register_commands():
    return PluginsCommand
