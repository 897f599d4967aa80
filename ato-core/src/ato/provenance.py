"""Provenance: which view, CLI token or lazy view wrote each key while a Scope built it.

While a Scope applies its views the :class:`Recorder` is installed as the ADict write hook
(``ato.adict._write_hook``).  Each write costs one small tuple; the explanation (paths,
formatting) is computed only when somebody asks (``python train.py manual --why lr``).
Writes made by user code after the config is built are plain writes and are not recorded.
"""

from __future__ import annotations

import os
import sys

from ato import adict as _adict_module
from ato.adict import _MISSING, ADict
from ato.terminal import display_width

__all__ = ["Source", "Write", "Recorder", "explain"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Source:
    """Where a write came from: ``kind`` is ``view``, ``lazy view``, ``lazy block``,
    ``CLI`` or ``mapping view``."""

    __slots__ = ("kind", "name", "location")

    def __init__(self, kind: str, name: str, location: str | None = None):
        self.kind, self.name, self.location = kind, name, location

    def __repr__(self):
        return f"Source({self.kind!r}, {self.name!r}, {self.location!r})"

    def describe(self) -> str:
        text = self.name if self.kind in ("view", "lazy view") else f"{self.kind} {self.name}"
        if self.kind == "lazy view":
            text = f"{self.name} (lazy)"
        return text


class Write:
    """One recorded write: the dotted path, old and new value, source and code line."""

    __slots__ = ("path", "old", "new", "source", "location")

    def __init__(self, path, old, new, source, location):
        self.path, self.old, self.new = path, old, new
        self.source, self.location = source, location

    def __repr__(self):
        return f"Write({self.path!r}, {self.old!r} -> {self.new!r}, {self.source!r})"


def _caller_location() -> str | None:
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR):
            return f"{_short(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _location_of(source: Source) -> str | None:
    """The code line a write is credited to: none for the CLI; for a mapping view, the line
    that registered it (its writes run inside Ato, called from wherever the config is
    first built); else the user's line that made the write."""
    if source.kind == "CLI":
        return None
    if source.kind == "mapping view" and source.location:
        filename, _, line = source.location.rpartition(":")
        return f"{_short(filename)}:{line}" if filename else source.location
    return _caller_location()


def _short(filename: str) -> str:
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return rel if not rel.startswith("..") else filename


class Recorder:
    """Collects writes into one config tree while a Scope builds it."""

    def __init__(self, root: ADict):
        self.root = root
        self.writes: list[Write] = []
        self.source: Source | None = None
        self.discard = False
        self._paths: dict[int, str] = {}
        self._register(root, "")

    def _register(self, node, path: str) -> None:
        if isinstance(node, ADict):
            self._paths[id(node)] = path
            for k, v in node._data.items():
                self._register(v, f"{path}.{k}" if path else str(k))

    def _path_of(self, node: ADict) -> str | None:
        path = self._paths.get(id(node))
        if path is None:
            self._paths.clear()
            self._register(self.root, "")
            path = self._paths.get(id(node))
        return path

    def __call__(self, node: ADict, key, new, created: bool):
        if self.discard:
            return False
        parent = self._path_of(node)
        if parent is None:  # a detached tree (e.g. a view's scratch ADict): not ours
            return True
        path = f"{parent}.{key}" if parent else str(key)
        self._register(new, path)
        if created:
            return True
        old = _snapshot(node._data.get(key, _MISSING))
        new = _snapshot(new)
        location = _location_of(self.source)
        self.writes.append(Write(path, old, new, self.source, location))
        return True

    def __enter__(self):
        self._previous = _adict_module._write_hook
        _adict_module._write_hook = self
        return self

    def __exit__(self, *exc):
        _adict_module._write_hook = self._previous
        return False


def _snapshot(value):
    """A frozen-in-time copy of a written value (later writes must not change history)."""
    if isinstance(value, ADict):
        return value.to_dict()
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    return value


def _value_at(value, rest: list[str]):
    for part in rest:
        if isinstance(value, (ADict, dict)) and part.isascii() and part.isdigit() and part not in value and \
                int(part) in value:
            part = int(part)  # `classes.1` names the int key 1, as on the command line
        if isinstance(value, ADict) and part in value._data:
            value = value._data[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def chain(writes: list[Write], path: str) -> list[tuple[Write, object, object]]:
    """The writes that decided ``path``: direct writes and writes of an ancestor mapping,
    each with the old and new value *of path* they caused."""
    out = []
    parts = path.split(".")
    for w in writes:
        wparts = w.path.split(".")
        if wparts == parts:
            out.append((w, w.old, w.new))
        elif parts[: len(wparts)] == wparts:
            rest = parts[len(wparts):]
            new = _value_at(w.new, rest)
            old = _value_at(w.old, rest) if w.old is not _MISSING else _MISSING
            if new is not _MISSING or old is not _MISSING:
                out.append((w, old, new))
    return out


def _fmt(value) -> str:
    if value is _MISSING:
        return "(unset)"
    if isinstance(value, ADict):
        return repr(value.to_dict())
    return repr(value)


def leaf_paths(node: ADict, prefix: str = "") -> list[str]:
    out = []
    for k, v in node._data.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, ADict) and len(v):
            out.extend(leaf_paths(v, path))
        else:
            out.append(path)
    return out


def explain(writes: list[Write], config: ADict, path: str, scope_name: str | None = None) -> str:
    """Human-readable chain of writes ending in the final value of ``path``."""
    label = f"{scope_name}.{path}" if scope_name else path
    parts = path.split(".")
    final = _value_at(config, parts)
    lines = [f"{label} = {_fmt(final)}"]
    steps = chain(writes, path)
    if not steps:
        if final is _MISSING:
            suggestion = None
            parent = _value_at(config, parts[:-1]) if len(parts) > 1 else config
            if isinstance(parent, ADict):
                suggestion = parent.suggest(parts[-1])
            hint = f" (did you mean {'.'.join(parts[:-1] + [suggestion])!r}?)" if suggestion else ""
            lines.append(f"  no such key{hint}")
        else:
            lines.append("  set before the scope applied its views (initial config)")
        return "\n".join(lines)
    width = max(display_width(s.source.describe()) for s, _, _ in steps)
    for i, (w, old, new) in enumerate(steps, 1):
        where = f"  [{w.location}]" if w.location else ""
        via = "" if w.path == path else f"  (via {w.path})"
        if new is _MISSING:
            change = f"{_fmt(old)} -> deleted"
        elif old is _MISSING:
            change = f"set {_fmt(new)}"
        else:
            change = f"{_fmt(old)} -> {_fmt(new)}"
        name = w.source.describe()
        name += " " * (width - display_width(name))
        lines.append(f"  {i}. {name}  {change}{via}{where}")
    return "\n".join(lines)
