"""``ato://project/name@ref`` as a config value: resolved to a local path when a Scope builds.

A Scope's build ends by looking for string values that start with ``ato://`` (in nested
mappings and lists); only when there is one is this module imported.  Each such value is
replaced by the local, digest-verified path of that registry version, found through the
tracker protocol: ``open_finder(url).resolve(uri)`` of the backend serving the config's
tracker URL (``experiment.sql.db_path``), else ``$ATO_DB``.  The replacement is recorded
as a write (``manual --why KEY`` shows the URI it came from); ``manual`` itself shows the
values unresolved.

Errors: one :class:`ConfigURIError` naming the key, the URI and why (no tracker URL, a
backend without the ``registry`` capability, an unknown name/version/alias, a file that no
longer matches its digest).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ato.errors import AtoError
from ato.scoping.scope import mentions_uri

SCHEME = "ato://"


class ConfigURIError(AtoError, LookupError):
    """A config value ``ato://…`` that could not be resolved; the message names the key."""


def tracker_of(config) -> str | None:
    """The tracker URL URIs are resolved against: the config's ``experiment.sql.db_path``,
    else ``$ATO_DB``, else ``None``."""
    from ato.tracking import url_of

    try:
        return url_of(config)
    except (KeyError, TypeError):
        return os.environ.get("ATO_DB") or None


def check_scheme(key: str | None, value: str) -> None:
    """Refuse ``value``, a string starting ``ato:`` in any case, unless it starts exactly
    ``ato://`` then a project: ``ato:/x``, ``ato:///x``, ``ato:x`` or ``ATO://x`` would
    otherwise reach the function as plain text.  The error names the key, the value and
    the form it should have."""
    if value.startswith(SCHEME) and value[len(SCHEME):len(SCHEME) + 1] not in ("", "/"):
        return
    where = f"config key {key!r}: " if key is not None else ""
    rest = value[4:].lstrip("/")
    raise ConfigURIError(
        f"{where}{value!r} looks like an ato:// URI (a malformed one): write "
        f"ato://project/name@ref, the scheme in lower case and two slashes"
        + (f" (did you mean {SCHEME}{rest}?)" if rest else ""))


class _Resolver:
    """Resolves URIs against one tracker URL, opening its finder once."""

    def __init__(self, url: str | None, verify: bool = True):
        self.url, self.verify = url, verify
        self._finder = None

    def __call__(self, key: str | None, uri: str) -> str:
        where = f"config key {key!r}: {uri}" if key is not None else uri
        if not self.url:
            raise ConfigURIError(f"{where}: no tracker to resolve it from; set "
                                 f"experiment.sql.db_path in the config or $ATO_DB")
        try:
            if self._finder is None:
                from ato.tracking import open_finder

                self._finder = open_finder(self.url)
            return self._finder.resolve(uri, verify=self.verify)
        except ConfigURIError:
            raise
        except (AtoError, LookupError, OSError, ValueError) as e:
            reason = str(e)
            if isinstance(e, KeyError) and e.args:
                reason = str(e.args[0])
            reason = reason.removeprefix(f"{uri}: ")  # the backend may name the URI too
            raise ConfigURIError(f"{where}: {reason}") from e


def resolve_uri(uri: str, tracker: str | None = None, verify: bool = True) -> str:
    """The local path of ``uri`` in the tracker at URL ``tracker`` (default ``$ATO_DB``).

    Errors: :class:`ConfigURIError` naming the URI and why (no key: there is none)."""
    if isinstance(uri, str) and mentions_uri(uri):
        check_scheme(None, uri)
    return _Resolver(tracker or os.environ.get("ATO_DB"), verify)(None, uri)


def resolve_config_uris(config, recorder=None, verify: bool = True) -> dict[str, tuple[str, str]]:
    """Replace every ``ato://`` string value of ``config`` (an ADict) by its local path, in
    place; returns ``{dotted key: (uri, path)}``.  URIs are found at any depth of mappings,
    lists and tuples; a list (or tuple) holding one is written back whole, its items named
    ``key[i]`` and mappings inside it ``key[i].x`` (in errors and in the result).  With a :class:`ato.provenance.Recorder`, each
    write is attributed to the URI."""
    resolver = _Resolver(tracker_of(config), verify)
    done: dict[str, tuple[str, str]] = {}

    def value_of(key: str, value):
        """``value`` with every URI inside it resolved, at any depth of mappings, lists and
        tuples (a tuple stays a tuple, a named tuple keeps its type, a mapping its type)."""
        if isinstance(value, str):
            if not mentions_uri(value):
                return value
            check_scheme(key, value)
            path = resolver(key, value)
            done[key] = (value, path)
            return path
        if not mentions_uri(value):
            return value
        data = getattr(value, "_data", value)
        if isinstance(data, Mapping):
            items = {k: value_of(f"{key}.{k}", v) for k, v in data.items()}
            try:
                return type(value)(items)
            except TypeError:  # a mapping type that cannot be built from a dict
                return items
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return type(value)(*(value_of(f"{key}[{i}]", v) for i, v in enumerate(value)))
        if isinstance(value, (list, tuple)):
            return type(value)(value_of(f"{key}[{i}]", v) for i, v in enumerate(value))
        return value

    def walk(node, prefix: str) -> None:
        data = getattr(node, "_data", node)
        for k, v in list(data.items()):
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(getattr(v, "_data", v), Mapping):
                walk(v, key)
                continue
            if not mentions_uri(v):
                continue
            new = value_of(key, v)
            if recorder is not None:
                from ato.provenance import Source

                recorder.source = Source("ato:// URI", v if isinstance(v, str) else key)
            node[k] = new

    walk(config, "")
    return done


__all__ = ["SCHEME", "ConfigURIError", "check_scheme", "mentions_uri", "resolve_config_uris", "resolve_uri",
           "tracker_of"]
