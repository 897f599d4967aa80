"""Core's own plugins, registered through the same hooks a third party uses:
the JSON and JSON Lines formats and the ``ato plugins`` command."""

from __future__ import annotations

import json

from ato.errors import ConfigFileError
from ato.plugins import hookimpl
from ato.plugins.interfaces import config_data


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _json_loads(text: str, path: str, lines_before: int = 0, **kwargs):
    """``json.loads`` refusing an object that repeats a key (as YAML does); errors name
    ``path`` and the line (``lines_before`` lines precede ``text`` in the file)."""
    if "object_pairs_hook" not in kwargs and "object_hook" not in kwargs:
        kwargs["object_pairs_hook"] = _refuse_duplicates
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError as e:
        raise ConfigFileError(path, e.msg, e.lineno + lines_before, e.colno) from None
    except _DuplicateKey as e:
        first, second = _duplicate_lines(text, e.args[0])
        message = f"duplicate key {e.args[0]!r}"
        if first is not None:
            message += f" (first at line {first + lines_before})"
        line = None if second is None else second + lines_before
        raise ConfigFileError(path, message, line) from None


def _duplicate_lines(text: str, key: str):
    """The lines of the first two occurrences of ``key`` in one JSON object of ``text``
    (``(None, None)`` if not found): a small scan, run only once a duplicate is known."""
    objects: list = []  # per open bracket: the keys seen (None for an array)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "{[":
            objects.append({} if c == "{" else None)
        elif c in "}]" and objects:
            objects.pop()
        elif c == '"':
            start = i
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] == ":" and objects and objects[-1] is not None:
                try:
                    name = json.loads(text[start:i + 1])
                except ValueError:
                    name = None
                line = text.count("\n", 0, start) + 1
                if name == key and name in objects[-1]:
                    return objects[-1][name], line
                objects[-1].setdefault(name, line)
        i += 1
    return None, None


class JSONFormat:
    PLUGIN_NAME = "json"
    suffixes = (".json",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        return config_data(_json_loads(text, path, 0, **kwargs), path)

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
            item = _json_loads(line, path, lineno - 1, **kwargs)
            if not isinstance(item, dict):  # named by its line, as a parse error is
                from ato.errors import ConfigFileError
                from ato.representable import a_type

                raise ConfigFileError(path, f"the top level must be a mapping (or a list of "
                                            f"mappings), but item {len(out)} of its list is "
                                            f"{a_type(item)}", lineno)
            out.append(item)
        return config_data(out, path)

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
