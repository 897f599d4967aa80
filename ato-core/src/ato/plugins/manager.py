"""The one plugin manager, loaded lazily on the first lookup (never at ``import ato.scope``).

Built-in core plugins register by module name (``DEFAULT_PLUGINS``); every installed
distribution, first-party or not, registers through the ``ato`` entry-point group.  A
plugin that fails to import is recorded in :func:`failures` and skipped; set
``ATO_DISABLE_PLUGINS=name1,name2`` to block plugins by entry-point name.

Nothing outside this package touches ``pm.hook``: use the typed functions below.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from importlib import metadata

import pluggy

from ato.errors import ConfigFileError, PluginNotInstalledError, UnknownPluginError
from ato.plugins import hookspecs
from ato.plugins.interfaces import INTERFACES, missing_members

DEFAULT_PLUGINS = ("ato.plugins.builtin",)
ENTRY_POINT_GROUP = "ato"

#: Which distribution provides a first-party feature, for "install X" messages.
PROVIDERS = {
    "format": {".yaml": "ato-formats", ".yml": "ato-formats", ".toml": "ato-formats",
               ".xyz": "ato-formats", ".py": "ato-mmlab"},
    "source": {"load_mm_config": "ato-mmlab", "compose_hierarchy": "ato-mmlab"},
    "tracker": {"sqlite": "ato-sql", "postgresql": "ato-sql", "postgres": "ato-sql",
                "mysql": "ato-sql", "mariadb": "ato-sql"},
    "search": {"hyperband": "ato-hyperopt", "grid": "ato-hyperopt", "random": "ato-hyperopt",
               "multi_hyperband": "ato-hyperopt", "asha": "ato-hyperopt"},
    "command": {"runs": "ato-sql", "models": "ato-sql", "data": "ato-sql", "store": "ato-sql"},
    "store": {},
}

#: Each seam: its key, the label `ato plugins` prints, and its hook.
SEAMS = {
    "format": ("formats", "ato_register_formats"),
    "source": ("config sources", "ato_register_config_sources"),
    "tracker": ("trackers", "ato_register_trackers"),
    "search": ("search algorithms", "ato_register_search_algorithms"),
    "command": ("commands", "ato_register_commands"),
    "store": ("artifact stores", "ato_register_artifact_stores"),
}

_pm: pluggy.PluginManager | None = None
_failures: list[tuple[str, str]] = []
_distributions: dict[str, str] = {}
_registries: dict[str, dict] = {}


def get_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A new manager with the core plugins and (optionally) every installed plugin."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entrypoints:
        _load_entrypoints(pm)
    pm.check_pending()
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    blocked = {n.strip() for n in os.environ.get("ATO_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            if ep.dist is not None:
                _distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"
        except Exception as e:  # a broken plugin must not lock users out
            _failures.append((ep.name, f"{type(e).__name__}: {e}"))


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    global _pm
    if _pm is None:
        _failures.clear()
        _pm = get_plugin_manager()
    return _pm


def reset() -> None:
    """Forget the process-wide manager and everything collected from it."""
    global _pm
    _pm = None
    _registries.clear()


def failures() -> list[tuple[str, str]]:
    """``(entry-point name, error)`` for every plugin that failed to load."""
    plugin_manager()
    return list(_failures)


def collect(hook_caller, interface=None) -> dict:
    """Turn a hook's results into ``{PLUGIN_NAME: class}``, refusing duplicate names and
    (given the seam's ``interface``) classes that lack one of its members."""
    found: dict = {}
    for result in reversed(hook_caller()):
        for cls in result if isinstance(result, (list, tuple)) else [result]:
            name = getattr(cls, "PLUGIN_NAME", None)
            if not name:
                raise ValueError(f"{cls!r} has no PLUGIN_NAME")
            missing = missing_members(cls, interface) if interface is not None else []
            if missing:
                raise UnknownPluginError(
                    f"{cls.__module__}.{cls.__qualname__} ({name!r}) lacks "
                    f"{', '.join(missing)} of {interface.__name__}")
            if name in found and found[name] is not cls:
                raise ValueError(
                    f"{cls.__module__}.{cls.__qualname__} registers {name!r}, already used by "
                    f"{found[name].__module__}.{found[name].__qualname__}"
                )
            found[name] = cls
    return found


def registry(kind: str) -> dict:
    """``{PLUGIN_NAME: class}`` for one seam: format, source, tracker, search or command."""
    if kind not in _registries:
        caller = getattr(plugin_manager().hook, SEAMS[kind][1])
        _registries[kind] = collect(caller, INTERFACES[kind])
    return _registries[kind]


def _missing(kind: str, name: str, what: str) -> Exception:
    dist = PROVIDERS.get(kind, {}).get(name)
    if dist:
        return PluginNotInstalledError(f"{what} needs the {dist} distribution: pip install {dist}")
    known = sorted(registry(kind))
    return UnknownPluginError(f"{what}: no installed plugin provides {name!r} "
                              f"(installed: {', '.join(known) or 'none'})")


# --------------------------------------------------------------------------- formats
def format_for(path) -> type:
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    for fmt in registry("format").values():
        if suffix in fmt.suffixes:
            return fmt
    if not suffix:
        raise UnknownPluginError(f"{path}: cannot tell the format of a file without a suffix")
    raise _missing("format", suffix, f"reading or writing '{suffix}' files ({path})")


def load_file(path, **kwargs):
    """Read a config file into an ADict (or a list of ADicts)."""
    from ato.adict import ADict

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist.")
    fmt = format_for(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    data = fmt.loads(text, path, **kwargs)
    if isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise ConfigFileError(path, f"item {i} is a {type(item).__name__}, not a mapping")
        return [ADict._from_mapping(item) for item in data]
    if not isinstance(data, dict):
        raise ConfigFileError(path, f"the top level is a {type(data).__name__}, not a mapping")
    return ADict._from_mapping(data)


def dump_file(adict, path, **kwargs) -> None:
    """Write an ADict atomically; a failure leaves any existing file untouched."""
    path = os.fspath(path)
    fmt = format_for(path)
    text = fmt.dumps(adict.to_dict(), path, **kwargs)
    atomic_write_text(path, text)


def atomic_write_text(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
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
    cls = registry("source").get(name)
    if cls is None:
        raise _missing("source", name, f"ADict.{name}")
    return cls.load


def tracker_for_url(url: str) -> type:
    scheme = str(url).split(":", 1)[0].split("+", 1)[0].lower()
    for cls in registry("tracker").values():
        if scheme in cls.schemes:
            return cls
    raise _missing("tracker", scheme, f"tracking to {scheme!r} URLs")


def search_algorithm(name: str) -> type:
    cls = registry("search").get(name)
    if cls is None:
        raise _missing("search", name, f"the search algorithm {name!r}")
    return cls


def store_for_url(url: str) -> type:
    """The artifact-store class serving the scheme of ``url`` (``s3://…``)."""
    scheme = str(url).split("://", 1)[0].lower()
    for cls in registry("store").values():
        if scheme in cls.schemes:
            return cls
    raise _missing("store", scheme, f"artifact stores at {scheme!r} URLs")


def commands() -> dict:
    return registry("command")


def describe_plugins() -> list[dict]:
    """What every registered plugin provides, for ``ato plugins``."""
    pm = plugin_manager()
    rows = []
    for name, plugin in pm.list_name_plugin():
        provides = {}
        for label, hook_name in SEAMS.values():
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            try:
                result = impl()
            except Exception as e:  # report it, keep listing the others
                provides[label] = [f"FAILED: {type(e).__name__}: {e}"]
                continue
            classes = result if isinstance(result, (list, tuple)) else [result]
            names = []
            for cls in classes:
                extra = getattr(cls, "suffixes", None) or getattr(cls, "schemes", None)
                names.append(f"{cls.PLUGIN_NAME} ({', '.join(extra)})" if extra else cls.PLUGIN_NAME)
            provides[label] = names
        rows.append({"name": name, "distribution": _distributions.get(name, "ato-core (built in)"),
                     "provides": provides})
    return rows
