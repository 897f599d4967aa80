"""Model registry and dataset versioning for the SQL tracker (docs/models-and-data.md).

``logger.use_dataset(name, path)`` and ``logger.log_model(name, path, ...)`` delegate to
:func:`use_dataset` and :func:`log_model`; :class:`Registry` is the whole API, and
:func:`resolve` turns ``ato://project/name@alias`` into a local, verified path.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ato.tracking.registry import RegistryVersion

    from .core import Registry

_registries: dict = {}
_lock = threading.Lock()


def registry_for(config) -> Registry:
    """The :class:`Registry` of a config's tracker (one per URL and store per process)."""
    from ato.db_routers.sql.logger import config_value, tracker_url

    from .core import Registry

    url = tracker_url(config)
    store = config_value(config, "experiment.sql.store")
    key = (url, str(store) if store else None, os.environ.get("ATO_STORE"))
    with _lock:
        if key not in _registries:
            _registries[key] = Registry(url, store=key[1])
        return _registries[key]


def use_dataset(logger, name: str, path, *, copy: bool = False, aliases=(), etag=None,
                size=None, description=None, meta=None) -> RegistryVersion:
    """Record which version of dataset ``name`` the logger's current run uses.

    ``path`` is a file or directory (hashed; unchanged files are not read again), or a
    remote URI (``s3://…``, ``https://…``) recorded by reference with ``etag``/``size``.
    ``copy=True`` also stores the files in the artifact store.  Returns the tracker
    protocol's :class:`~ato.tracking.RegistryVersion` (``created`` is ``False`` when the
    data was unchanged)."""
    import re

    text_path = path if isinstance(path, str) else None
    if text_path is not None and re.match(r"[A-Za-z][A-Za-z0-9+.\-]+://", text_path) \
            and not text_path.lower().startswith("file:"):
        return use_reference(logger, name, text_path, etag=etag, size=size, aliases=aliases,
                             meta=meta)
    if etag is not None or size is not None:
        from .core import RegistryError, check_name

        check_name("dataset", name)
        given = ", ".join(f"{k}={v!r}" for k, v in (("etag", etag), ("size", size))
                          if v is not None)
        raise RegistryError(f"dataset {name!r}: {given} describe remote data recorded by "
                            f"reference (a URI such as s3://…); {path!r} is a local path, "
                            f"whose content is hashed")
    # a local path, file:///… included: Registry.register checks it (an empty path, a
    # malformed URI such as 's3:/x', file://relative are errors)
    return registry_for(logger.config).use_dataset(
        logger.project_name, name, path, run_id=logger.get_current_run_id(), copy=copy,
        aliases=aliases, description=description, meta=meta).record()


def use_reference(logger, name: str, uri: str, *, etag=None, size=None, aliases=(),
                  meta=None) -> RegistryVersion:
    """Record remote data ``uri`` by reference as a version of dataset ``name`` used by the
    logger's current run (see :meth:`Registry.use_reference`)."""
    return registry_for(logger.config).use_reference(
        logger.project_name, name, uri, etag=etag, size=size,
        run_id=logger.get_current_run_id(), aliases=aliases, meta=meta).record()


def use_model(logger, name: str, ref=None, *, project: str | None = None
              ) -> RegistryVersion:
    """Record that the logger's current run uses version ``ref`` of model ``name`` (alias,
    number or ``'vN'``; ``None``: ``latest``) of ``project`` (default: the logger's) as an
    input; see :meth:`Registry.use_model`.  Returns its
    :class:`~ato.tracking.RegistryVersion`; :func:`resolve` of its ``uri`` gives the
    local, verified path to load."""
    if project is not None and not isinstance(project, str):
        from .core import RegistryError

        raise RegistryError(f"model {name!r}: project={project!r} must be a str "
                            f"(got {type(project).__name__})")
    return registry_for(logger.config).use_model(
        logger.project_name if project is None else project, name, ref,
        run_id=logger.get_current_run_id()).record()


def log_model(logger, name: str, path, *, step=None, aliases=(), keep=None, score=None,
              mode="max", description=None, meta=None, wait: bool = True):
    """Store the model at ``path`` as a new version of ``name`` produced by the logger's
    current run (see :meth:`Registry.log_model`); returns its
    :class:`~ato.tracking.RegistryVersion`.

    ``wait=False`` returns as soon as the file is copied into the store (the training loop
    may overwrite it next) with a :class:`~ato.db_routers.sql.registry.core.PendingVersion`
    whose ``result()`` is that record; the logger waits for it when the run ends."""
    result = registry_for(logger.config).log_model(
        logger.project_name, name, path, run_id=logger.get_current_run_id(), step=step,
        aliases=aliases, keep=keep, score=score, mode=mode, description=description,
        meta=meta, wait=wait)
    if wait:
        return result.record()
    pending = result.map(lambda version: version.record())
    track = getattr(logger, "_track_registration", None)
    if track is not None:
        track(pending)
    return pending


def resolve(uri: str, config=None, db: str | None = None, verify: bool = True) -> str:
    """The local path of ``ato://project/name@ref`` in the tracker of ``config`` (or the
    URL ``db``, or ``$ATO_DB``), verified against its digest."""
    from ato.db_routers.sql.engine import open_engine

    from .core import Registry, RegistryError

    store = None
    if config is not None:
        from ato.db_routers.sql.logger import config_value, tracker_url

        db = tracker_url(config)
        store = config_value(config, "experiment.sql.store")
    else:
        db = db or os.environ.get("ATO_DB")
        if not db:
            raise RegistryError(f"resolving {uri}: give config=, db= or set $ATO_DB")
    # resolving only reads: a read-only engine, as a finder's (nothing created or upgraded;
    # a database that is not a tracker is refused, naming its tables)
    registry = Registry(db, store=str(store) if store else None,
                        engine=open_engine(db, readonly=True))
    return registry.resolve(uri, verify=verify)


__all__ = ["BackgroundRegistrationError", "PendingVersion", "Registry", "RegistryError",
           "Version", "log_model", "parse_uri", "registry_for", "resolve", "use_dataset",
           "use_model", "use_reference", "wait_pending"]


def __getattr__(name: str):
    """``Registry``, ``RegistryError``, ``Version``, ``PendingVersion``, ``parse_uri``, … from
    :mod:`.core`, imported
    on first use: ``ato --help`` and ``ato ui`` load this package's commands without
    paying for SQLAlchemy."""
    if name in ("BackgroundRegistrationError", "PendingVersion", "Registry", "RegistryError",
                "Version", "parse_uri", "wait_pending"):
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
