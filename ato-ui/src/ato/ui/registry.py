"""The dashboard's models and data pages: registered models and datasets, their versions,
alias history and lineage, and a run's inputs and outputs — read-only.

Endpoints (all ``GET``; errors are ``{"error": message}`` with status 400/404/503):

``/api/registry``             ``kind`` (``model``/``dataset``), ``project``: every
                              registered asset
``/api/registry/asset``       ``name``, ``kind``, ``project``, ``alias`` (history filter):
                              one asset's versions and alias history
``/api/registry/version``     ``name``, ``kind``, ``project``, ``ref`` (``3``, ``v3`` or an
                              alias): one version and its lineage
``/api/registry/run/{id}``    the dataset versions a run used and the model versions it
                              produced

Every response has ``available`` (``False`` with a ``reason`` when the tracker backend
does not declare the ``registry`` capability: the pages say so and show nothing else).

Shapes (times are seconds since the Unix epoch, UTC):

- asset: ``{"project", "kind", "name", "description", "tags", "versions", "latest", "size",
  "aliases": {alias: version}}``
- version: ``{"project", "kind", "name", "version", "digest", "size", "file_count",
  "is_dir", "step", "score", "run", "created", "created_by", "aliases", "state",
  "storage", "source", "reference", "meta", "uri"}`` where ``storage`` is ``stored``
  (files in the artifact store), ``in place`` (a file list; the data stays where it was)
  or ``reference`` (a URI recorded without reading or copying it)
- alias move: ``{"alias", "from", "to", "actor", "run", "at"}`` (``from``/``to``
  ``None``: created/removed)

The registry is read only through the tracker protocol's finder (capability ``registry``,
:mod:`ato.tracking.registry`: ``registry_assets``, ``registry_versions``,
``alias_history``, ``run_lineage``, ``runs_using``, ``produced_by``, ``downstream``), so
any backend that declares it is shown; one adapter function per call below.
"""

from __future__ import annotations

from ato.tracking.registry import version_uri
from ato.ui.data import BadRequest, _epoch, _finite, run_id_param

KINDS = ("model", "dataset")


class NotFound(LookupError):
    """An asset, version or run that does not exist (HTTP 404)."""


class Ambiguous(LookupError):
    """A name several assets hold, no project (or kind) given to pick one (HTTP 409)."""


def _get(obj, key, default=None):
    """A field of a protocol record (a frozen dataclass; a plain dict works as well)."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _unsupported_reason(finder) -> str | None:
    """``None`` when the finder declares the ``registry`` capability, else why not."""
    if finder.supports("registry"):
        return None
    name = getattr(finder, "plugin_name", "this")
    return (f"the {name!r} tracker backend does not record models or datasets (it does not "
            f"declare the 'registry' capability)")


def _lookup(fn, *args, **kwargs):
    """Call a registry query; an unknown name or ref (``LookupError``) becomes
    :class:`NotFound`."""
    try:
        return fn(*args, **kwargs)
    except LookupError as e:
        if getattr(e, "choices", None):  # ambiguous (several projects or kinds): the
            # registry's message, which the CLI prints too, names them and how to pick
            raise Ambiguous(str(e)) from e
        raise NotFound(str(e)) from e


# ---------------------------------------------------------------------------- adapters
# One function per protocol call (ato.tracking.registry.RegistryFinder).
def registry_assets(finder, kind=None, project=None) -> list:
    return finder.registry_assets(kind=kind, project=project)


def registry_versions(finder, name, project=None, kind=None) -> list:
    return _lookup(finder.registry_versions, name, project=project, kind=kind)


def registry_version(finder, name, ref, project=None, kind=None):
    """The version ``ref`` (a number, ``vN``, an alias or ``latest``) names, from
    :func:`registry_versions`."""
    from ato.tracking.registry import RegistryError, parse_ref

    try:
        ref = parse_ref(ref)  # the protocol's one reading of a ref
    except RegistryError as e:
        raise BadRequest(str(e)) from None
    versions = registry_versions(finder, name, project=project, kind=kind)
    for v in versions:
        if (_get(v, "version") == ref if isinstance(ref, int)
                else ref in (_get(v, "aliases") or ())):
            return v
    top = max((_get(v, "version") for v in versions), default=0)
    what = f"version {ref}" if isinstance(ref, int) else f"alias {ref!r}"
    raise NotFound(f"{kind or 'asset'} {name!r} has no {what} (versions 1..{top})")


def alias_history(finder, name, alias=None, project=None, kind=None) -> list:
    return _lookup(finder.alias_history, name, alias=alias, project=project, kind=kind)


def runs_using(finder, name, ref=None, project=None, kind="dataset") -> list:
    return _lookup(finder.runs_using, name, ref=ref, project=project, kind=kind)


def produced_by(finder, name, ref=None, project=None):
    return _lookup(finder.produced_by, name, ref=ref, project=project)


def downstream(finder, name, ref=None, project=None, kind="dataset") -> list:
    return _lookup(finder.downstream, name, ref=ref, project=project, kind=kind)


def run_lineage(finder, run_id: int) -> tuple[list, list]:
    """``(inputs, outputs)``: the versions a run used and produced."""
    lineage = finder.run_lineage(int(run_id))
    return list(_get(lineage, "inputs") or ()), list(_get(lineage, "outputs") or ())


# ---------------------------------------------------------------------------- shapes
def _storage(v) -> str:
    if _get(v, "reference"):
        return "reference"
    return "stored" if _get(v, "store_url") else "in place"


def version_row(v) -> dict:
    project, name, number = _get(v, "project"), _get(v, "name"), _get(v, "version")
    return {"project": project, "kind": _get(v, "kind"), "name": name, "version": number,
            "digest": _get(v, "digest"), "size": _get(v, "size"),
            "file_count": _get(v, "file_count"), "is_dir": bool(_get(v, "is_dir")),
            "step": _get(v, "step"), "score": _finite(_get(v, "score")),
            "run": _get(v, "run_id"), "created": _epoch(_get(v, "created_at")),
            "created_by": _get(v, "created_by"), "aliases": list(_get(v, "aliases") or []),
            "state": _get(v, "state"), "storage": _storage(v), "source": _get(v, "source"),
            "reference": _get(v, "reference"),
            "meta": None if _get(v, "meta") is None else _finite(dict(_get(v, "meta"))),
            "uri": version_uri(project, _get(v, "kind"), name, number)}


def asset_row(a) -> dict:
    return {"project": _get(a, "project"), "kind": _get(a, "kind"), "name": _get(a, "name"),
            "description": _get(a, "description"), "versions": _get(a, "versions"),
            "latest": _get(a, "latest"), "size": _get(a, "size"),
            "aliases": dict(_get(a, "aliases") or {}), "tags": list(_get(a, "tags") or ())}


def move_row(m) -> dict:
    return {"alias": _get(m, "alias"), "from": _get(m, "from_version"),
            "to": _get(m, "to_version"),
            "actor": _get(m, "actor"), "run": _get(m, "run_id"), "at": _epoch(_get(m, "at"))}


# ---------------------------------------------------------------------------- view
class RegistryView:
    """The registry questions the pages ask, answered from one read-only finder."""

    def __init__(self, finder):
        self.finder = finder

    def _check(self) -> str | None:
        return _unsupported_reason(self.finder)

    def assets(self, kind: str | None = None, project: str | None = None) -> dict:
        """``{"available", "reason", "assets": [asset…]}``, by project, kind and name."""
        reason = self._check()
        if reason:
            return {"available": False, "reason": reason, "assets": []}
        rows = [asset_row(a) for a in registry_assets(self.finder, kind=kind, project=project)]
        return {"available": True, "reason": None, "assets": rows}

    def asset(self, name: str, kind: str, project: str | None = None,
              alias: str | None = None) -> dict:
        """``{"available", "asset", "versions": [version…] (newest first), "history":
        [alias move…] (oldest first)}``; raises :class:`NotFound`."""
        reason = self._check()
        if reason:
            return {"available": False, "reason": reason}
        found = [a for a in registry_assets(self.finder, kind=kind, project=project)
                 if _get(a, "name") == name]
        if not found:
            where = f" in project {project!r}" if project else ""
            elsewhere = sorted({str(_get(a, "project")) for a in registry_assets(
                self.finder, kind=kind) if _get(a, "name") == name}) if project else []
            hint = (f"; it exists in project{'s' if len(elsewhere) > 1 else ''} "
                    f"{', '.join(repr(p) for p in elsewhere)}: pass project="
                    f"{elsewhere[0]}" if elsewhere else "")
            raise NotFound(f"no {kind} named {name!r}{where}{hint}")
        if len(found) > 1:
            projects = ", ".join(sorted(str(_get(a, "project")) for a in found))
            raise BadRequest(f"{kind} {name!r} exists in several projects ({projects}): "
                             f"pass project")
        project = _get(found[0], "project")
        versions = registry_versions(self.finder, name, project=project, kind=kind)
        history = [move_row(m) for m in alias_history(self.finder, name, alias=alias,
                                                      project=project, kind=kind)]
        return {"available": True, "asset": asset_row(found[0]),
                "versions": [version_row(v) for v in reversed(list(versions))],
                "history": history}

    def version(self, name: str, kind: str, ref, project: str | None = None) -> dict:
        """One version and its lineage. A model: ``{"version", "produced_by": {"run":
        {"id", "project", "status", "start"} | None, "inputs": [version…] (what the run
        used), "fingerprints": count}}``. Both kinds: ``"runs": [{"id", "project",
        "status", "start"}]`` (the runs that used it: ``use_dataset``, or ``use_model`` for
        a model) and ``"downstream": [version…]`` (every version produced by such a run).
        Raises :class:`NotFound`, :class:`Ambiguous` for a name several projects hold."""
        reason = self._check()
        if reason:
            return {"available": False, "reason": reason}
        v = registry_version(self.finder, name, ref, project=project, kind=kind)
        row = version_row(v)
        out: dict = {"available": True, "version": row}
        ref, project = row["version"], row["project"]
        if kind == "model":
            made = produced_by(self.finder, name, ref, project=project)
            run = _get(made, "run")
            out["produced_by"] = {
                "run": None if run is None else {
                    "id": _get(run, "run_id"), "project": _get(run, "project"),
                    "status": _get(run, "status"), "start": _epoch(_get(run, "start_time"))},
                "inputs": [version_row(d) for d in _get(made, "inputs") or ()],
                "fingerprints": len(_get(made, "fingerprints") or {})}
        # a dataset: the runs that used it; a model: the runs that started from it
        # (use_model) — with what each produced, as 'ato models show' lists them
        out["runs"] = [{"id": _get(r, "run_id"), "project": _get(r, "project"),
                        "status": _get(r, "status"), "start": _epoch(_get(r, "start_time"))}
                       for r in runs_using(self.finder, name, ref, project=project, kind=kind)]
        out["downstream"] = [version_row(d) for d in downstream(self.finder, name, ref,
                                                                 project=project, kind=kind)]
        return out

    def run_io(self, run_id: int) -> dict:
        """``{"available", "reason", "inputs": [version…], "outputs": [version…]}``."""
        reason = self._check()
        if reason:
            return {"available": False, "reason": reason, "inputs": [], "outputs": []}
        if self.finder.find_run(run_id) is None:
            raise NotFound(f"no run with id {run_id}")
        inputs, outputs = run_lineage(self.finder, run_id)
        return {"available": True, "reason": None, "inputs": [version_row(v) for v in inputs],
                "outputs": [version_row(v) for v in outputs]}


# ---------------------------------------------------------------------------- routes
def routes(store, call, handler, json_response) -> list:
    """The API routes of the models and data pages (mounted by :func:`ato.ui.app.create_app`
    before its catch-all). ``store`` is the app's :class:`~ato.ui.data.Store` (or its lazy
    proxy), ``call`` runs a function in a worker thread, ``handler`` turns
    :class:`BadRequest`/``AtoError`` into 400/503, ``json_response(data, status)``."""
    from starlette.routing import Route

    views: dict = {}

    def view() -> RegistryView:
        finder = store.finder
        if id(finder) not in views:
            views[id(finder)] = RegistryView(finder)
        return views[id(finder)]

    def kind_of(q) -> str | None:
        kind = q.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise BadRequest(f"kind must be model or dataset, not {kind!r}")
        return kind

    def named(q) -> tuple[str, str]:
        name = q.get("name")
        if not name:
            raise BadRequest("name (a model or dataset name) is required")
        kind = kind_of(q)
        if kind is None:
            raise BadRequest("kind (model or dataset) is required")
        return name, kind

    async def answer(fn):
        try:
            return json_response(await call(fn))
        except NotFound as e:
            return json_response({"error": str(e)}, 404)
        except Ambiguous as e:
            return json_response({"error": str(e)}, 409)

    async def assets(request):
        q = request.query_params
        kind, project = kind_of(q), q.get("project") or None
        return await answer(lambda: view().assets(kind, project))

    async def asset(request):
        q = request.query_params
        name, kind = named(q)
        project, alias = q.get("project") or None, q.get("alias") or None
        return await answer(lambda: view().asset(name, kind, project, alias))

    async def version(request):
        q = request.query_params
        name, kind = named(q)
        ref = q.get("ref") or "latest"
        project = q.get("project") or None
        return await answer(lambda: view().version(name, kind, ref, project))

    async def run_io(request):
        run_id = run_id_param(request.path_params["run_id"])
        return await answer(lambda: view().run_io(run_id))

    return [Route("/api/registry", handler(assets, "kind", "project")),
            Route("/api/registry/asset", handler(asset, "name", "kind", "project", "alias")),
            Route("/api/registry/version", handler(version, "name", "kind", "ref", "project")),
            Route("/api/registry/run/{run_id}", handler(run_io))]
