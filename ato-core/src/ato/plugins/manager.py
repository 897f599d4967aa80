"""The one plugin manager, loaded lazily on the first lookup (never at ``import ato.scope``).

Core's own plugins register by module name (``DEFAULT_PLUGINS``); every installed
distribution, first-party or not, registers through the ``ato`` entry-point group.

Isolation: whatever one plugin does wrong, every other plugin and every built-in keeps
working.  A plugin is checked at two depths, the way pluggy and pytest check theirs:

- when it loads: its module imports, every ``@hookimpl`` names an Ato hook with the hook's
  arguments, and no function named like a hook lacks ``@hookimpl``.  A plugin failing
  here is left unregistered: nothing of it is used;
- when a seam is first used: each hook of each plugin is called on its own, and each class
  it returns is checked against the seam's interface (:mod:`ato.plugins.interfaces`), its
  ``PLUGIN_NAME`` and its ``suffixes``/``schemes``.  ``None`` (pluggy's "no result") and
  ``[]`` provide nothing and are no error.  A hook that raises or returns something else
  (a string, an instance...), and a class that fails a check, is left out and reported;
  the rest of that plugin is used.

A plugin's state (``ato plugins``) is *broken* when nothing of it is usable: it failed to
load, or it loaded but provides nothing while at least one of its hooks raised, returned
the wrong thing or had a class refused.  Otherwise it is *loaded*, with an error line for
each thing left out; *disabled* plugins never load.

Touching what a broken plugin would have provided raises :class:`ato.errors.PluginError`,
one line naming the plugin, its distribution and entry point, and the fault; ``ato
plugins`` lists every plugin with its state.

Precedence, when two plugins claim one suffix, URL scheme or name: the plugins named in
``ATO_PREFER_PLUGINS`` (comma-separated entry-point names, first wins), then core, then
Ato's own distributions (:data:`FIRST_PARTY`), then every other plugin in the order of its
entry-point name.  Core's built-in commands (``ato plugins``, the diagnostic) win always,
whatever ``ATO_PREFER_PLUGINS`` says.  The one that loses is reported, never silently
dropped.
``ATO_DISABLE_PLUGINS=name1,name2`` keeps plugins from loading at all.

Nothing outside this package touches ``pm.hook``: use the typed functions below.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import re
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from ato.errors import (
    AtoError,
    ConfigFileError,
    ConfigFileNotFoundError,
    PluginError,
    PluginNotInstalledError,
    UnknownPluginError,
)
from ato.plugins import hookspecs
from ato.plugins.interfaces import INTERFACES, config_data, missing_members
from ato.representable import a_type

ENTRY_POINT_GROUP = "ato"
#: Core's built-in plugins: ``{name shown by `ato plugins`: module}``.
DEFAULT_PLUGINS = {"core": "ato.plugins.builtin"}
#: Ato's own distributions, which take precedence over third-party plugins.
FIRST_PARTY = ("ato-core", "ato-formats", "ato-sql", "ato-hyperopt", "ato-mmlab", "ato-ui")
DISABLE_ENV = "ATO_DISABLE_PLUGINS"
PREFER_ENV = "ATO_PREFER_PLUGINS"

#: The ADict methods a config source may serve (its PLUGIN_NAME).
SOURCE_METHODS = ("load_mm_config", "compose_hierarchy")

#: What each of Ato's optional distributions provides, per seam: the one table behind
#: every "pip install X" hint.  Keys are file suffixes (format), URL schemes (tracker) and
#: names (source, search, command).
DISTRIBUTIONS = {
    "ato-formats": {"format": (".yaml", ".yml", ".toml", ".xyz")},
    "ato-sql": {"tracker": ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle",
                            "mssql"),
                "command": ("runs", "models", "data", "store"), "store": ("file",)},
    "ato-hyperopt": {"search": ("hyperband", "grid", "random", "tpe", "bohb",
                                "multi_hyperband", "asha"), "command": ("search",),
                     "executor": ("serial", "threads", "processes", "torch", "ray")},
    "ato-mmlab": {"format": (".py",), "source": SOURCE_METHODS},
    "ato-ui": {"command": ("ui",)},
}

#: The same table by seam: ``{kind: {key: distribution}}``.
PROVIDERS: dict[str, dict[str, str]] = {}
for _dist, _seams in DISTRIBUTIONS.items():
    for _kind, _keys in _seams.items():
        PROVIDERS.setdefault(_kind, {}).update(dict.fromkeys(_keys, _dist))

#: Each seam: its key, the label `ato plugins` prints, and its hook.
SEAMS = {
    "format": ("formats", "ato_register_formats"),
    "source": ("config sources", "ato_register_config_sources"),
    "tracker": ("trackers", "ato_register_trackers"),
    "search": ("search algorithms", "ato_register_search_algorithms"),
    "command": ("commands", "ato_register_commands"),
    "store": ("artifact stores", "ato_register_artifact_stores"),
    "executor": ("search executors", "ato_register_executors"),
}
_KIND_OF_HOOK = {hook: kind for kind, (_, hook) in SEAMS.items()}
#: The class attribute holding the keys a class claims, for seams not keyed by name.
_KEY_ATTR = {"format": "suffixes", "tracker": "schemes", "store": "schemes"}
_KEY_SYNTAX = {
    "format": (re.compile(r"^(\.[a-z0-9_+-]+)+$"), "a lower-case suffix with its dot, like '.conf'"),
    "tracker": (re.compile(r"^[a-z][a-z0-9.-]*$"), "a lower-case URL scheme without ':', like 'jsonl'"),
    "command": (re.compile(r"^[a-z][a-z0-9_-]*$"), "a lower-case word, like 'runs'"),
}
_KEY_SYNTAX["store"] = _KEY_SYNTAX["tracker"]


@dataclass
class PluginRecord:
    """One plugin as ``ato plugins`` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    target: str = ""          # what the entry point (or registration) names
    state: str = "loaded"     # loaded | disabled | broken
    reason: str = ""          # why disabled or broken
    builtin: bool = False

    @property
    def dist_label(self) -> str:
        if self.distribution is None:
            return "registered in-process"
        return f"{self.distribution} {self.version}" if self.version else self.distribution

    @property
    def key(self) -> tuple:
        """What tells two plugins apart even when they share an entry-point name."""
        return (self.name, self.distribution, self.target)

    def who(self) -> str:
        """``plugin 'name' (distribution version, entry point name = module)``."""
        kind = "built-in plugin" if self.builtin else "plugin"
        where = "module" if self.builtin or self.distribution is None else "entry point"
        point = f"{self.name} = {self.target}" if where == "entry point" else self.target
        return f"{kind} {self.name!r} ({self.dist_label}, {where} {point})"


@dataclass
class Seam:
    """What one seam holds after every plugin's hook was called and checked."""

    kind: str
    by_name: dict = field(default_factory=dict)     # PLUGIN_NAME -> class
    by_key: dict = field(default_factory=dict)      # suffix / scheme / name -> class
    owner: dict = field(default_factory=dict)       # class -> plugin name
    served: dict = field(default_factory=dict)      # plugin name -> [(PLUGIN_NAME, keys)]
    rejected: dict = field(default_factory=dict)    # key -> message (a broken claim)
    errors: list = field(default_factory=list)      # (plugin name, message)
    unknown: list = field(default_factory=list)     # plugins whose claims are unknown: a
                                                    # hook raised, or a refused class's keys
                                                    # could not be read
    conflicts: list = field(default_factory=list)   # (plugin name, message)
    records: dict = field(default_factory=dict)     # plugin name -> PluginRecord


_pm: pluggy.PluginManager | None = None
_records: list[PluginRecord] = []      # every plugin seen, in precedence order
_notes: list[str] = []                 # manager-level remarks (an unknown disabled name…)
_registries: dict[str, Seam] = {}
_lock = threading.RLock()             # the first lookup may come from several threads


def _env_names(var: str) -> list[str]:
    return [n.strip() for n in os.environ.get(var, "").split(",") if n.strip()]


def _one_line(error: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --------------------------------------------------------------------------- loading
def get_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A new manager with core's plugins and (optionally) every installed plugin.

    A plugin that fails to load is left out, never raised; :func:`plugin_manager` (the
    process-wide manager) keeps the record of why, for ``ato plugins``.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name, module in DEFAULT_PLUGINS.items():
        pm.register(importlib.import_module(module), name=name)
    if load_entrypoints:
        _load_entrypoints(pm, [], [])
    return pm


def _core_version() -> str | None:
    try:
        return metadata.version("ato-core")
    except metadata.PackageNotFoundError:
        return None


def _load_entrypoints(pm: pluggy.PluginManager, records: list, notes: list) -> None:
    """Register every ``ato`` entry point on ``pm`` in precedence order, appending a
    :class:`PluginRecord` per plugin (core's included) to ``records`` and remarks about
    the environment variables to ``notes``."""
    for name, module in DEFAULT_PLUGINS.items():
        records.append(PluginRecord(name, "ato-core", _core_version(), module, builtin=True))
    disabled = set(_env_names(DISABLE_ENV))
    entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    entry_points.sort(key=lambda ep: _rank(ep.name, getattr(ep.dist, "name", None)))
    for ep in entry_points:
        dist = ep.dist
        record = PluginRecord(ep.name, dist.name if dist else "unknown distribution",
                              dist.version if dist else None, ep.value)
        records.append(record)
        if ep.name in disabled:
            record.state, record.reason = "disabled", f"by {DISABLE_ENV}"
            continue
        taken = next((r for r in records[:-1] if r.name == ep.name and r.state != "disabled"),
                     None)
        if taken is not None:
            record.state = "broken"
            record.reason = (f"the entry-point name {ep.name!r} is already used by "
                             f"{taken.dist_label}; entry-point names must be unique")
            continue
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as e:  # a broken plugin must not lock users out
            record.state, record.reason = "broken", f"import failed: {_one_line(e)}"
            continue
        problem = register_checked(pm, plugin, ep.name)
        if problem:
            record.state, record.reason = "broken", problem
    known = {r.name for r in records}
    for name in sorted(disabled - known):
        notes.append(f"{DISABLE_ENV} names {name!r}, which is no installed plugin "
                      f"(installed: {', '.join(sorted(known))})")
    for name in _env_names(PREFER_ENV):
        if name not in known:
            notes.append(f"{PREFER_ENV} names {name!r}, which is no installed plugin "
                          f"(installed: {', '.join(sorted(known))})")


def register_checked(pm: pluggy.PluginManager, plugin, name: str) -> str | None:
    """Register ``plugin`` under ``name`` if it is a valid Ato plugin; otherwise leave the
    manager as it was and return what is wrong (one line)."""
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as e:
        # ValueError: pluggy refuses the same object under two names, or a name reused.
        # A validation error comes after pluggy stored the plugin: take it out again.
        if pm.get_plugin(name) is plugin:
            pm.unregister(plugin, name=name)
        return _one_line(e).replace("PluginValidationError: ", "", 1)
    callers = pm.get_hookcallers(plugin) or []
    specs = sorted(hook for hook in _KIND_OF_HOOK)
    unknown = sorted(c.name for c in callers if c.spec is None)
    problem = None
    if unknown:
        hook = unknown[0]
        close = difflib.get_close_matches(hook, specs, n=1)
        hint = f"; did you mean {close[0]}()?" if close else f"; Ato's hooks are {', '.join(specs)}"
        problem = f"@hookimpl {hook}() is not an Ato hook{hint}"
    else:
        marked = {c.name for c in callers}
        unmarked = [h for h in specs if h not in marked and callable(getattr(plugin, h, None))]
        if unmarked:
            problem = (f"{unmarked[0]}() lacks @hookimpl, so Ato would never call it "
                       f"(from ato.plugins import hookimpl)")
    if problem:
        pm.unregister(plugin)
    return problem


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    global _pm
    with _lock:
        if _pm is None:
            _registries.clear()
            _records.clear()
            _notes.clear()
            pm = get_plugin_manager(load_entrypoints=False)
            _load_entrypoints(pm, _records, _notes)
            _pm = pm
        return _pm


def reset() -> None:
    """Forget the process-wide manager and everything collected from it."""
    global _pm
    with _lock:
        _pm = None
        _registries.clear()
        _records.clear()
        _notes.clear()


def _rank(name: str, distribution: str | None) -> tuple:
    preferred = _env_names(PREFER_ENV)
    if name in preferred:
        return (0, preferred.index(name), "")
    if name in DEFAULT_PLUGINS:
        return (1, 0, name)
    if distribution in FIRST_PARTY:
        return (2, 0, name)
    return (3, 0, name)


def _seam_rank(kind: str, name: str, distribution: str | None) -> tuple:
    """:func:`_rank` within one seam, except that core's built-in commands (``ato
    plugins``, the diagnostic) come first whatever ATO_PREFER_PLUGINS says."""
    if kind == "command" and name in DEFAULT_PLUGINS:
        return (-1, 0, name)
    return _rank(name, distribution)


def _record(name: str, plugin=None) -> PluginRecord:
    """The record of a plugin by its registered name; a plugin registered in-process
    (``pm.register(obj, name=...)``) gets a fresh one naming the object."""
    for record in _records:
        if record.name == name and record.state == "loaded":
            return record
    if plugin is None:
        target = "?"
    else:
        target = getattr(plugin, "__name__", None) or (
            f"{type(plugin).__module__}.{type(plugin).__qualname__}")
    record = PluginRecord(name, None, None, target, builtin=name in DEFAULT_PLUGINS)
    if record.builtin:
        record.distribution, record.version = "ato-core", _core_version()
    return record


def plugin_records() -> list[PluginRecord]:
    """Every plugin, registered or not (disabled, broken), in precedence order."""
    pm = plugin_manager()
    with _lock:
        known = {r.name for r in _records if r.state == "loaded"}
        for name, plugin in pm.list_name_plugin():
            if name not in known:
                _records.append(_record(name, plugin))
        live = {name for name, _ in pm.list_name_plugin()}
        _records[:] = [r for r in _records if r.state != "loaded" or r.name in live]
        return sorted(_records, key=lambda r: _rank(r.name, r.distribution))


def notes() -> list[str]:
    """Remarks about the plugin settings themselves (an unknown name in an env var)."""
    plugin_manager()
    return list(_notes)


# --------------------------------------------------------------------------- collecting
def _class_label(kind: str, cls) -> str:
    return f"{kind} class {cls.__module__}.{cls.__qualname__}"


def _claimed_keys(kind: str, cls) -> tuple[list[str], str | None]:
    """The keys ``cls`` claims in its seam, and what is wrong with them (or None).  A class
    without a PLUGIN_NAME still claims the suffixes or schemes it lists, so that looking
    one of them up names the refused class."""
    label = _class_label(kind, cls)
    name = getattr(cls, "PLUGIN_NAME", None)
    if not isinstance(name, str) or not name:
        keys = _listed_keys(kind, cls, label, name)[0] if kind in _KEY_ATTR else []
        return keys, f"{label} has no PLUGIN_NAME (a non-empty string); got {name!r}"
    if kind == "source" and name not in SOURCE_METHODS:
        return [name], (f"{label} ({name!r}): PLUGIN_NAME is the ADict method a config "
                        f"source serves, one of {', '.join(SOURCE_METHODS)}; not {name!r}")
    if kind not in _KEY_ATTR:
        return _checked_syntax(kind, [name], label, name, "PLUGIN_NAME")
    return _listed_keys(kind, cls, label, name)


def _listed_keys(kind: str, cls, label: str, name) -> tuple[list[str], str | None]:
    """The suffixes or schemes ``cls`` lists (its :data:`_KEY_ATTR`), checked."""
    attr = _KEY_ATTR[kind]
    raw = getattr(cls, attr, None)
    if isinstance(raw, str):
        syntax = _KEY_SYNTAX.get(kind)
        also = ""  # name every problem: the string's own syntax too
        if syntax and not syntax[0].match(raw):
            also = f"; and {raw!r} is not {syntax[1]}"
        fixed = raw.lower() if kind in ("format", "tracker", "store", "command") else raw
        fixed = fixed if not syntax or syntax[0].match(fixed) else raw
        return [raw], (f"{label} ({name!r}): {attr} must be a tuple of strings, got the "
                       f"string {raw!r}; write ({fixed!r},) with the comma{also}")
    if not isinstance(raw, (tuple, list, set, frozenset)) or not raw:
        return [], (f"{label} ({name!r}): {attr} must be a non-empty tuple of strings, "
                    f"got {raw!r}")
    keys = sorted(raw, key=str) if isinstance(raw, (set, frozenset)) else list(raw)
    return _checked_syntax(kind, keys, label, name, attr)


def _checked_syntax(kind, keys, label, name, attr) -> tuple[list[str], str | None]:
    syntax = _KEY_SYNTAX.get(kind)
    for key in keys:
        if not isinstance(key, str):
            return [], f"{label} ({name!r}): {attr} holds {key!r}, not a string"
        if syntax and not syntax[0].match(key):
            valid = [k for k in keys if isinstance(k, str) and syntax[0].match(k)]
            return valid, f"{label} ({name!r}): {attr} {key!r} is not {syntax[1]}"
    return keys, None


def check_class(kind: str, cls) -> tuple[list[str], str | None]:
    """Check one class a hook returned against its seam.

    Returns ``(keys, problem)``: the suffixes, schemes or name it claims, and ``None`` if
    it is valid or one line saying what is wrong with it.
    """
    if cls is None:
        return [], "returned None in place of a class"
    if not isinstance(cls, type):
        return [], f"returned {cls!r} ({a_type(cls)}), not a class"
    keys, problem = _claimed_keys(kind, cls)
    if problem:
        return keys, problem
    interface = INTERFACES[kind]
    label = f"{_class_label(kind, cls)} ({cls.PLUGIN_NAME!r})"
    missing = missing_members(cls, interface)
    if missing:
        return keys, (f"{label} lacks {', '.join(missing)}, which {interface.__name__} "
                      f"requires")
    for member, value in vars(interface).items():
        method = isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value)
        if (method and not member.startswith("_") and hasattr(cls, member)
                and not callable(getattr(cls, member))):  # absent: an optional member
            return keys, (f"{label}: {member} is {getattr(cls, member)!r}, not a method "
                          f"as {interface.__name__} requires")
    return keys, None


def _collect_seam(hook_caller, kind: str, only=None) -> Seam:
    """Call each plugin's implementation of the seam's hook on its own, in precedence
    order, and keep what passes :func:`check_class` and claims nothing already taken.
    ``only`` (a predicate on a :class:`PluginRecord`) limits the call to those plugins."""
    seam = Seam(kind)
    hook = SEAMS[kind][1]
    impls = hook_caller.get_hookimpls()
    records = seam.records
    records.update({impl.plugin_name: _record(impl.plugin_name, impl.plugin) for impl in impls})
    if only is not None:
        impls = [impl for impl in impls if only(records[impl.plugin_name])]
    impls.sort(key=lambda impl: _seam_rank(kind, impl.plugin_name,
                                           records[impl.plugin_name].distribution))
    for impl in impls:
        name = impl.plugin_name
        record = records[name]
        try:
            result = impl.function()
        except (Exception, SystemExit) as e:
            seam.errors.append((name, f"{hook}() raised {_one_line(e)}"))
            seam.unknown.append(name)
            continue
        if result is None:  # pluggy's "no result": the plugin provides nothing here
            continue
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        for cls in items:
            keys, problem = check_class(kind, cls)
            if problem:
                message = problem if problem.startswith(kind) else f"{hook}() {problem}"
                seam.errors.append((name, message))
                for key in keys:
                    seam.rejected.setdefault(key, f"{record.who()}: {message}")
                if not keys and name not in seam.unknown:
                    seam.unknown.append(name)
                continue
            _admit(seam, record, cls, keys)
    return seam


def _admit(seam: Seam, record: PluginRecord, cls, keys: list[str]) -> None:
    """Add a valid class to its seam unless what it claims is taken (then report it)."""
    plugin_name = cls.PLUGIN_NAME
    kind = seam.kind
    holder = seam.by_name.get(plugin_name)
    if holder is cls:
        return
    taken = [holder] if holder is not None else [seam.by_key[k] for k in keys
                                                 if k in seam.by_key]
    if any(seam.owner[c] == record.name for c in taken):  # its own hook claims it twice
        mine = next(c for c in taken if seam.owner[c] == record.name)
        what = (f"the name {plugin_name!r}" if holder is not None else
                ", ".join(repr(k) for k in keys if k in seam.by_key and
                          seam.by_key[k] is mine))
        seam.errors.append((record.name, (
            f"{kind} {plugin_name!r} ({cls.__module__}.{cls.__qualname__}) claims {what}, "
            f"which {kind} {mine.PLUGIN_NAME!r} ({mine.__module__}.{mine.__qualname__}) of "
            f"the same plugin already claims: the plugin registers two {kind}s for "
            f"{'it' if ', ' not in what else 'them'}, a bug in the plugin; the first is "
            f"used")))
        if holder is not None:
            return
    prefer = f"set {PREFER_ENV}={record.name} to use it instead{_namesake_note(record)}"
    if kind == "command" and any(seam.records[seam.owner[c]].builtin for c in taken):
        prefer = "core's built-in commands cannot be replaced; give yours another name"
    if holder is not None:
        winner = seam.records[seam.owner[holder]]
        seam.conflicts.append((record.name, (
            f"{kind} {plugin_name!r} is also provided by {winner.who()}, which takes "
            f"precedence; {prefer}")))
        return
    free = [k for k in keys if k not in seam.by_key]
    for key in keys:
        if key in seam.by_key and seam.owner[seam.by_key[key]] != record.name:
            winner = seam.records[seam.owner[seam.by_key[key]]]
            seam.conflicts.append((record.name, (
                f"{kind} {plugin_name!r} claims {key!r}, already served by "
                f"{winner.who()}, which takes precedence; {prefer}")))
    if not free:
        return
    seam.by_name[plugin_name] = cls
    seam.owner[cls] = record.name
    for key in free:
        seam.by_key[key] = cls
    seam.served.setdefault(record.name, []).append(
        (plugin_name, free if kind in _KEY_ATTR else []))


def _namesake_note(record: PluginRecord) -> str:
    """Which plugin ATO_PREFER_PLUGINS=name means when other entry points share the name
    (they are broken as duplicates; the preference keeps this one)."""
    others = [r.dist_label for r in _records if r.name == record.name and r.key != record.key]
    if not others:
        return ""
    return (f" (the entry point {record.name!r} of {record.dist_label}; the one of "
            f"{', '.join(others)} is a broken duplicate)")


def collect(hook_caller, interface=None, *, strict: bool = True) -> dict:
    """``{PLUGIN_NAME: class}`` from one hook of a manager, every class checked.

    ``hook_caller`` is a hook of a manager, e.g. ``pm.hook.ato_register_formats`` (the
    seam follows from its name; ``interface`` is accepted for compatibility and must be
    the seam's).  With ``strict`` (the default, for tests of a plugin), any error or
    conflict raises :class:`ato.errors.PluginError` listing them; without it, they are
    left out silently.
    """
    kind = _KIND_OF_HOOK[hook_caller.name]
    if interface is not None and interface is not INTERFACES[kind]:
        raise TypeError(f"{hook_caller.name} is the {kind} seam; its interface is "
                        f"{INTERFACES[kind].__name__}, not {interface.__name__}")
    seam = _collect_seam(hook_caller, kind)
    problems = seam.errors + seam.conflicts
    if strict and problems:
        raise PluginError("; ".join(f"{seam.records[n].who()}: {m}" for n, m in problems))
    return dict(seam.by_name)


def check_plugin(plugin, name: str = "under-test") -> list[str]:
    """Every problem Ato would report for ``plugin`` (a module or object with
    ``@hookimpl`` functions), checked next to core's built-ins only: ``[]`` when it is a
    valid plugin.  Meant for a plugin's own test suite::

        assert check_plugin(my_plugin.plugin) == []
    """
    pm = get_plugin_manager(load_entrypoints=False)
    problem = register_checked(pm, plugin, name)
    if problem:
        return [problem]
    out = []
    for kind in SEAMS:
        seam = _collect_seam(getattr(pm.hook, SEAMS[kind][1]), kind)
        out += [m for n, m in seam.errors + seam.conflicts if n == name]
    return out


@contextlib.contextmanager
def registered(plugin, name: str):
    """Register ``plugin`` on the process-wide manager for the ``with`` block, so that
    ``ADict.from_file``, ``ato`` commands and every lookup see it (for tests)::

        with registered(my_plugin, "mine"):
            ADict.from_file("config.kv")

    Raises :class:`ato.errors.PluginError` with every problem :func:`check_plugin` finds.
    """
    problems = check_plugin(plugin, name)
    if problems:
        raise PluginError(f"plugin {name!r}: " + "; ".join(problems))
    pm = plugin_manager()
    with _lock:
        problem = register_checked(pm, plugin, name)
        if problem:
            raise PluginError(f"plugin {name!r}: {problem}")
        _registries.clear()
    try:
        yield plugin
    finally:
        with _lock:
            pm.unregister(plugin, name=name)
            _records[:] = [r for r in _records if not (r.name == name and r.distribution is None)]
            _registries.clear()


def _seam(kind: str) -> Seam:
    seam = _registries.get(kind)
    if seam is None:
        with _lock:
            seam = _registries.get(kind)
            if seam is None:
                hook = getattr(plugin_manager().hook, SEAMS[kind][1])
                seam = _registries[kind] = _collect_seam(hook, kind)
    return seam


def provider(kind: str, cls) -> PluginRecord:
    """The plugin that provides ``cls`` in seam ``kind`` (for messages about it)."""
    seam = _seam(kind)
    return seam.records[seam.owner[cls]]


def registry(kind: str) -> dict:
    """``{PLUGIN_NAME: class}`` for one seam: format, source, tracker, search, command,
    store or executor.
    Only valid classes that won their claims are in it."""
    return _seam(kind).by_name


def failures() -> list[tuple[str, str]]:
    """``(plugin name, error)`` for every plugin that failed to load and every error found
    in what a plugin provides (conflicts are not failures)."""
    out = [(r.name, r.reason) for r in plugin_records() if r.state == "broken"]
    for kind in SEAMS:
        out += _seam(kind).errors
    return out


def distribution_state(dist: str) -> tuple[str, list[PluginRecord]]:
    """Why one of Ato's optional distributions may not provide something, for messages:
    ``("disabled", records)`` (installed, these of its plugins switched off by
    ATO_DISABLE_PLUGINS), ``("broken", records)`` (installed, these failed to load),
    ``("loaded", records)`` (every plugin of it loaded), ``("no-plugin", [])`` (installed
    but registering no ``ato`` entry point) or ``("missing", [])`` (not installed).  A
    distribution may register several plugins (ato-sql has two).  Never infer "not
    installed" from a feature being absent: ask this."""
    mine = [r for r in plugin_records() if _same_dist(r.distribution, dist)]
    for state in ("disabled", "broken", "loaded"):
        found = [r for r in mine if r.state == state]
        if found:
            return state, found
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing", []
    return "no-plugin", []


def _same_dist(a: str | None, b: str) -> bool:
    """Distribution names compare normalized (PEP 503): ``ato_sql`` is ``ato-sql``."""
    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()
    return a is not None and norm(a) == norm(b)


def enable_hint(records: list[PluginRecord]) -> str:
    """How to switch disabled plugins back on: the ATO_DISABLE_PLUGINS value without them."""
    names = {r.name for r in records}
    rest = [n for n in _env_names(DISABLE_ENV) if n not in names]
    how = f"set {DISABLE_ENV}={','.join(rest)}" if rest else f"unset {DISABLE_ENV}"
    return f"{how} to enable {'it' if len(names) == 1 else 'them'}"


def _names(records: list[PluginRecord]) -> str:
    return ", ".join(repr(r.name) for r in records)


def _missing(kind: str, key: str, what: str) -> Exception:
    """The error for a lookup that found nothing: a broken claim, a missing or disabled
    distribution, or an unknown key with the close matches and any broken plugins."""
    seam = _seam(kind)
    if key in seam.rejected:
        return PluginError(f"{what}: {seam.rejected[key]}")
    dist = PROVIDERS.get(kind, {}).get(key)
    records = plugin_records()
    if dist:
        state, mine = distribution_state(dist)
        if state == "disabled":
            return PluginNotInstalledError(
                f"{what} needs the {dist} distribution, which is installed but its plugin "
                f"{_names(mine)} is disabled {mine[0].reason}; {enable_hint(mine)}")
        if state == "broken":
            return PluginError(f"{what} needs the {dist} distribution, which is installed "
                               f"but broken: {mine[0].who()}: {mine[0].reason}")
        if state == "loaded":
            errors = [(r, m) for r in mine for n, m in seam.errors if n == r.name]
            if errors:
                return PluginError(f"{what}: {errors[0][0].who()}: {errors[0][1]}")
        if state == "no-plugin":
            return PluginError(f"{what} needs the {dist} distribution, which is installed "
                               f"but registers no 'ato' entry point; reinstall it "
                               f"(pip install --force-reinstall {dist})")
        if state == "missing":
            return PluginNotInstalledError(f"{what} needs the {dist} distribution: "
                                           f"pip install {dist}")
    known = sorted(seam.by_key)
    # Case first ('ASHA' is 'asha'), then spelling: difflib's ratio ignores neither.
    close = ([k for k in known if k.lower() == str(key).lower()]
             or difflib.get_close_matches(str(key).lower(), known, n=1))
    message = f"{what}: no installed plugin provides {key!r}"
    message += f"; did you mean {close[0]!r}?" if close else ""
    message += f" (installed: {', '.join(known) or 'none'})"
    # Only plugins that might provide ``key``: those that failed before saying what they
    # provide — broken ones (they failed to load), and loaded ones whose hook of this seam
    # raised or returned a class whose claims cannot be read.  A refused claim of ``key``
    # itself was reported above; a plugin whose refused classes claim other keys cannot
    # provide it.
    # Broken means what `ato plugins` says: nothing of the plugin is usable.
    broken = [r for r in records if r.state == "broken"]
    failed = []
    for name in seam.unknown:
        record = seam.records[name]
        if not any(_seam(k).served.get(name) for k in SEAMS):
            broken.append(record)
        else:
            why = next(m for n, m in seam.errors if n == name)
            failed.append(f"{name!r} ({record.dist_label}): "
                          f"{why if len(why) <= 100 else why[:97] + '...'}")
    if broken:
        names = ", ".join(f"{r.name!r} ({r.dist_label})" for r in broken)
        message += (f"; {len(broken)} broken plugin(s) might provide it: {names} "
                    f"(details: ato plugins)")
    if failed:
        message += (f"; {len(failed)} loaded plugin(s) whose {SEAMS[kind][1]}() failed "
                    f"might provide it: {'; '.join(failed)}")
    return UnknownPluginError(message)


# --------------------------------------------------------------------------- formats
def format_for(path) -> type:
    """The format class serving ``path``, by its longest registered suffix.

    Raises :class:`~ato.errors.PluginNotInstalledError` (the suffix belongs to an Ato
    distribution that is not installed), :class:`~ato.errors.PluginError` (the plugin
    that claims it is broken) or :class:`~ato.errors.UnknownPluginError`.
    """
    name = os.path.basename(os.fspath(path)).lower()
    by_key = _seam("format").by_key
    matches = [s for s in by_key if name.endswith(s) and len(name) > len(s)]
    if matches:
        return by_key[max(matches, key=len)]
    suffix = os.path.splitext(name)[1]
    if not suffix:
        raise UnknownPluginError(f"{path}: cannot tell the format of a file without a suffix "
                                 f"(known suffixes: {', '.join(sorted(by_key))})")
    raise _missing("format", suffix, f"reading or writing '{suffix}' files ({path})")


def load_file(path, **kwargs):
    """Read a config file into an ADict (or a list of ADicts).

    Raises :class:`~ato.errors.ConfigFileNotFoundError` (no such file, naming the path),
    :class:`~ato.errors.ConfigFileError` (a directory, not UTF-8 text, malformed, or a top
    level that is not a mapping) and the lookup errors of :func:`format_for`.
    """
    from ato.adict import ADict

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ConfigFileNotFoundError(path)
    if os.path.isdir(path):
        raise ConfigFileError(path, "is a directory, not a config file")
    fmt = format_for(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(path, f"is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                                    f"{e.start})") from None
    data = parse_text(fmt, text, path, **kwargs)
    try:
        config_data(data, path)
    except ConfigFileError as e:
        raise PluginError(f"reading {path}: {provider('format', fmt).who()}: "
                          f"{fmt.__qualname__}.loads returned {_short(data)}, not a dict or "
                          f"a list of dicts ({str(e)[len(e.path) + 2:]}; a format raises "
                          f"ato.errors.ConfigFileError for a file holding something else)"
                          ) from None
    if isinstance(data, list):
        return [ADict._from_mapping(item) for item in data]
    return ADict._from_mapping(data)


def _short(value) -> str:
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 60 else text


def parse_text(fmt, text: str, path: str, **kwargs):
    """``fmt.loads(text, path)``, refusing (as :class:`~ato.errors.ConfigFileError` naming
    ``path``) data nested too deeply for Ato or a container that holds itself; every
    reader of config files goes through here.  An exception of a format that is not an
    Ato error (a format raises :class:`~ato.errors.ConfigFileError` for a malformed file)
    is the plugin's fault: :class:`~ato.errors.PluginError` naming it."""
    from ato.representable import MAX_NESTING, nesting_problem

    if text.startswith("\ufeff"):  # a UTF-8 byte order mark: not part of any format
        text = text[1:]
    try:
        data = fmt.loads(text, path, **kwargs)
    except RecursionError:
        raise ConfigFileError(path, f"mappings and lists nested too deeply to read (Ato "
                                    f"reads at most {MAX_NESTING} levels)") from None
    except AtoError:
        raise
    except Exception as e:
        raise PluginError(f"reading {path}: {provider('format', fmt).who()}: "
                          f"{fmt.__qualname__}.loads raised {_one_line(e)} (a format "
                          f"raises ato.errors.ConfigFileError for a malformed file)") from e
    problem = nesting_problem(data)
    if problem:
        raise ConfigFileError(path, problem)
    return data


def dump_file(adict, path, **kwargs) -> None:
    """Write an ADict atomically (see :func:`atomic_write_text`); a failure leaves any
    existing file untouched.  Missing parent folders are created (SPEC 1.12), but only
    once the format is known and the text is ready: a bad suffix or value creates
    nothing."""
    path = os.fspath(path)
    fmt = format_for(path)
    data = adict.to_dict()
    from ato.representable import MAX_NESTING, nesting_problem

    problem = nesting_problem(data)  # what no reader would take back (every format)
    if problem:
        raise ConfigFileError(path, f"cannot be written: {problem}; Ato reads at most "
                                    f"{MAX_NESTING} levels")
    try:
        text = fmt.dumps(data, path, **kwargs)
    except AtoError:
        raise
    except Exception as e:
        raise PluginError(f"writing {path}: {provider('format', fmt).who()}: "
                          f"{fmt.__qualname__}.dumps raised {_one_line(e)} (a format raises "
                          f"ato.errors.ConfigFileError for data it cannot hold)") from e
    if not isinstance(text, str):
        owner = provider("format", fmt)
        raise PluginError(f"writing {path}: {owner.who()}: {fmt.__qualname__}.dumps returned "
                          f"{a_type(text)}, not the text (a str)")
    atomic_write_text(path, text)


_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask, read without leaving it changed."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: into a temporary file beside it,
    fsynced, then renamed over ``path``, so a reader sees the old file or the new one.

    Permissions are those ``open(path, 'w')`` would give: an existing file keeps its mode;
    a new one gets ``0o666 & ~umask``.  Missing parent folders are created (mode ``0o777 &
    ~umask``, like ``mkdir -p``).  Raises ``OSError`` when the folder cannot be created or
    the file written (e.g. a parent is a file: ``NotADirectoryError``/``FileExistsError``)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- other seams
def config_source(name: str):
    """The ``load`` callable of the config source serving the ADict method ``name``."""
    cls = registry("source").get(name)
    if cls is None:
        raise _missing("source", name, f"ADict.{name}")
    return cls.load


#: A URL's scheme: a letter, then letters, digits, ``+ - .``, then ``:``.  One letter
#: alone is a Windows drive (``C:\\runs.db``), not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class NotAURLError(AtoError, ValueError):
    """A tracker URL was given without a scheme (a plain path such as ``runs.db``)."""


def url_scheme(url) -> str | None:
    """The lower-case scheme of ``url`` without any ``+driver`` part (``'postgresql'`` for
    ``postgresql+psycopg://h/db``), or ``None`` when ``url`` has no scheme (a path)."""
    match = _SCHEME.match(str(url))
    return match.group(1).split("+", 1)[0].lower() if match else None


def tracker_for_url(url: str) -> type:
    """The tracker backend class serving ``url``'s scheme (``sqlite``, ``postgresql``…;
    a ``+driver`` part is ignored).

    Raises :class:`NotAURLError` for a string without a scheme (``experiments.db``),
    suggesting ``sqlite:///experiments.db``; otherwise the lookup errors of
    :func:`format_for`."""
    scheme = url_scheme(url)
    if scheme is None and not str(url).strip():
        raise NotAURLError(
            f"the tracker URL is empty ({str(url)!r}): give the database your runs log to, "
            f"e.g. sqlite:///experiments.db or postgresql://user@host/experiments")
    if scheme is None:
        raise NotAURLError(
            f"tracker URL {str(url)!r} is not a URL (it has no scheme such as 'sqlite:' or "
            f"'postgresql:'); for a SQLite file write {'sqlite:///' + str(url)!r}")
    cls = _seam("tracker").by_key.get(scheme)
    if cls is None:
        raise _missing("tracker", scheme, f"tracking to {scheme!r} URLs")
    return cls


def search_algorithm(name: str) -> type:
    """The search-algorithm class registered as ``name`` (``hyperband``, ``asha``…)."""
    cls = registry("search").get(name)
    if cls is None:
        raise _missing("search", name, f"the search algorithm {name!r}")
    return cls


def executor(name: str) -> type:
    """The search-executor class registered as ``name`` (``threads``, ``ray``…)."""
    cls = registry("executor").get(name)
    if cls is None:
        raise _missing("executor", name, f"the search executor {name!r}")
    return cls


def store_for_url(url: str) -> type:
    """The artifact-store class serving the scheme of ``url`` (``s3://…``).  A plain
    path (no scheme, or a Windows drive) is the local store, scheme ``file``, as
    :func:`ato.artifacts.open_store` treats it."""
    scheme = url_scheme(url) or "file"
    cls = _seam("store").by_key.get(scheme)
    if cls is None:
        raise _missing("store", scheme, f"artifact stores at {scheme!r} URLs")
    return cls


def commands() -> dict:
    """``{subcommand name: command class}`` of every valid ``ato`` subcommand."""
    return registry("command")


def command_for(name: str) -> type | None:
    """The class of ``ato <name>``, or ``None`` when no valid plugin provides it.

    Same answer as ``commands().get(name)``, but for a command of one of Ato's own
    distributions (the :data:`DISTRIBUTIONS` table) only core's built-in plugin and that
    distribution's plugins are asked: ``ato ui`` does not import the modules of
    ``ato runs`` or ``ato search``.  They rank before every third-party plugin, so
    nothing another plugin registers could win the name; with ``ATO_PREFER_PLUGINS`` set,
    or when that distribution does not provide the command (missing, disabled, broken),
    every plugin is asked, as for any other name.  The narrow answer is not kept:
    :func:`commands` and ``ato plugins`` still see every plugin."""
    seam = _registries.get("command")
    dist = PROVIDERS["command"].get(name)
    if seam is None and dist is not None and not _env_names(PREFER_ENV):
        hook = plugin_manager().hook.ato_register_commands
        with _lock:
            narrow = _collect_seam(hook, "command",
                                   only=lambda r: r.builtin or _same_dist(r.distribution, dist))
        cls = narrow.by_name.get(name)
        if cls is not None:
            return cls
    return commands().get(name)


def command_problem(name: str) -> Exception | None:
    """Why ``ato <name>`` is not available when Ato can say more than "invalid choice":
    its distribution is missing or disabled, or the plugin providing it is broken."""
    if name in commands():
        return None
    error = _missing("command", name, f"'ato {name}'")
    return None if isinstance(error, UnknownPluginError) else error


def describe_plugins() -> list[dict]:
    """One row per plugin, for ``ato plugins``: ``name``, ``distribution``, ``version``,
    ``entry_point``, ``state`` (loaded / disabled / broken), ``reason``, ``provides``
    (``{seam label: ["name (keys)"]}``), ``errors`` and ``conflicts`` (lists of lines)."""
    seams = {kind: _seam(kind) for kind in SEAMS}
    rows = []
    for record in plugin_records():
        provides, errors, conflicts = {}, [], []
        for kind, seam in seams.items():
            holder = seam.records.get(record.name)
            if holder is None or holder.key != record.key:
                continue  # a namesake (a duplicate entry-point name) registered nothing
            entries = seam.served.get(record.name, [])
            if entries:
                provides[SEAMS[kind][0]] = [
                    f"{n} ({', '.join(keys)})" if keys else n for n, keys in entries]
            errors += [m for n, m in seam.errors if n == record.name]
            conflicts += [m for n, m in seam.conflicts if n == record.name]
        state, reason = record.state, record.reason
        if state == "loaded" and errors and not provides:
            state, reason = "broken", errors[0]
            errors = errors[1:]
        rows.append({"name": record.name, "distribution": record.distribution,
                     "version": record.version, "entry_point": record.target,
                     "state": state, "reason": reason, "provides": provides,
                     "errors": errors, "conflicts": conflicts})
    return rows
