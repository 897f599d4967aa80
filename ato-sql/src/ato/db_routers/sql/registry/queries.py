"""The registry's read-only queries, as the tracker protocol's records
(:mod:`ato.tracking.registry`): what :class:`ato.db_routers.sql.finder.SQLFinder` answers
under the ``registry`` capability, without writing or creating anything.

:class:`RegistryReader` takes a ``read(sql, **params) -> rows`` callable, so the finder's
read-only engine (and its handling of a database that has no tables yet) is reused; it
imports nothing heavy.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import datetime, timezone

from ato.db_routers.sql import values
from ato.terminal import did_you_mean
from ato.tracking.registry import (
    KINDS,
    MAX_VERSION,
    AliasEvent,
    Lineage,
    Provenance,
    RegistryAsset,
    RegistryError,
    RegistryVersion,
    RunUse,
    parse_ref,
)


class AmbiguousNameError(RegistryError):
    """A name held by several assets; ``choices`` lists them as ``(kind, project)``.

    The message says how to pick one from Python (``project=``/``kind=``); the CLI and
    ``ato://`` resolution re-word it with :meth:`how` for their own syntax."""

    def __init__(self, name: str, choices: list[tuple[str, str]], how: str | None = None):
        self.name, self.choices = name, sorted(choices)
        listing = ", ".join(f"{k} in project {p!r}" for k, p in self.choices)
        super().__init__(f"{name!r} is ambiguous ({listing}): {how or self.how()}")

    @property
    def kinds(self) -> list[str]:
        return sorted({k for k, _ in self.choices})

    @property
    def projects(self) -> list[str]:
        return sorted({p for _, p in self.choices})

    def how(self, project: str = "project={!r}", kind: str = "kind={!r}",
            quote=lambda p: p) -> str:
        """'name the project …' / 'name the kind …' with each choice in the given syntax
        (each project passed through ``quote`` first: ``shlex.quote`` for a command line)."""
        parts = []
        if len(self.projects) > 1:
            parts.append("name the project: " + " or ".join(project.format(quote(p))
                                                            for p in self.projects))
        if len(self.kinds) > 1:
            parts.append("name the kind: " + " or ".join(kind.format(k) for k in self.kinds))
        return "; ".join(parts)


VERSION_COLUMNS = (
    "v.id, p.name, a.kind, a.name, v.version, v.digest, v.size, v.file_count, v.is_dir, "
    "v.source, v.reference, v.store_url, v.run_id, v.step, v.score, v.meta, v.state, "
    "v.created_by, v.created_at")
VERSION_FROM = ("registry_versions v JOIN registry_assets a ON a.id = v.asset_id "
                "JOIN projects p ON p.id = a.project_id")


def cli_quote(text: str) -> str:
    """``text`` as a command-line hint writes it: ``shlex.quote`` when every character
    prints, else bash's ``$'…'`` with control characters escaped (``$'tab\\tx'``), as
    file names are escaped, so a tab or a newline cannot break the line nor pass unseen."""
    if text.isprintable():
        return shlex.quote(text)
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "'": "\\'", "\\": "\\\\"}
    body = "".join(named.get(c) or (c if c.isprintable() else
                                    f"\\x{ord(c):02x}" if ord(c) < 0x80 else
                                    f"\\u{ord(c):04x}" if ord(c) < 0x10000 else
                                    f"\\U{ord(c):08x}") for c in text)
    return f"$'{body}'"


def as_time(value) -> datetime | None:
    """A stored time as a naive UTC ``datetime`` (SQLite hands back text)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _meta(value):
    """A version's stored meta (SQLite: JSON text, PostgreSQL: the parsed value) with
    non-finite floats decoded (:mod:`ato.db_routers.sql.values`)."""
    return values.loads(value)


def version_record(row, aliases=(), created: bool = False, hashed_files: int = 0
                   ) -> RegistryVersion:
    """A :data:`VERSION_COLUMNS` row as a :class:`RegistryVersion`."""
    return RegistryVersion(
        project=row[1], kind=row[2], name=row[3], version=int(row[4]), digest=row[5],
        size=int(row[6]), file_count=int(row[7]), is_dir=bool(row[8]), source=row[9],
        reference=row[10], store_url=row[11], run_id=row[12], step=row[13],
        score=None if row[14] is None else float(row[14]), meta=_meta(row[15]), state=row[16],
        created_by=row[17], created_at=as_time(row[18]), aliases=tuple(sorted(aliases)),
        created=created, hashed_files=hashed_files)


def tag_list(value) -> tuple[str, ...]:
    """The tags of an asset as stored (a JSON list, as text on SQLite), sorted."""
    if isinstance(value, (str, bytes)):
        import json

        value = json.loads(value)
    return tuple(sorted(t for t in value or () if isinstance(t, str)))


def _asset_filter(sql: str, project: str | None, kind: str | None) -> tuple[str, dict]:
    """``sql`` (over ``registry_assets a`` joined to ``projects p``) narrowed to ``project``
    and ``kind`` when given, with its bound parameters."""
    params: dict = {}
    if project is not None:
        sql += " AND p.name = :p"
        params["p"] = project
    if kind is not None:
        sql += " AND a.kind = :k"
        params["k"] = kind
    return sql, params


def input_kind(kind: str, error: type[Exception] = RegistryError) -> str:
    """``kind`` of a lineage question (``'dataset'`` or ``'model'``), or ``error``."""
    if kind not in ("dataset", "model"):
        raise error(f"kind={kind!r}: a run uses a 'dataset' or a 'model'")
    return kind


def _sort_key(v: RegistryVersion):
    return (v.project, v.kind, v.name, v.version)


class RegistryReader:
    """Read-only registry queries over ``read``; ``available()`` says whether the database
    has the registry's tables (a database of schema < 4 opened read-only has none: it then
    holds no models or datasets).  ``runs(where, **params)`` returns :class:`RunUse` records,
    by id, of the runs a condition on ``experiments e`` selects, with their effective
    statuses; without it, the recorded status is reported.

    ``errors`` is ``(not-found class, ambiguous-name class)`` raised by the lookups
    (default :class:`~ato.tracking.RegistryError` and :class:`AmbiguousNameError`; the
    writing :class:`~ato.db_routers.sql.registry.Registry` passes its own subclasses), and
    ``label`` ends a not-found message (``" in <database>"``)."""

    def __init__(self, read: Callable, available: Callable[[], bool] = lambda: True,
                 runs: Callable | None = None, *, errors: tuple[type, type] | None = None,
                 label: str = ""):
        self._read = read
        self._available = available
        self._runs = runs
        self._not_found, self._ambiguous = errors or (RegistryError, AmbiguousNameError)
        self._label = label

    # ------------------------------------------------------------------ lookups
    def asset_row(self, name: str, project: str | None = None, kind: str | None = None):
        """``(asset id, project, kind, name, description)`` of one asset.

        Errors: :class:`RegistryError` when there is none or several match."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be 'model' or 'dataset', not {kind!r}")
        what = kind or "model or dataset"
        where = f" in project {project!r}" if project else ""
        if not self._available():
            raise self._not_found(f"no {what} named {name!r}{where}{self._label}: this "
                                  f"database has no registry yet")
        select = ("SELECT a.id, p.name, a.kind, a.name, a.description FROM registry_assets a "
                  "JOIN projects p ON p.id = a.project_id WHERE a.name = :n")
        sql, params = _asset_filter(select, project, kind)
        rows = self._read(sql, n=name, **params)
        if not rows:
            if project is not None and not self._read("SELECT 1 FROM projects WHERE name = :p",
                                                      p=project):
                raise self._not_found(f"no {what} named {name!r}{where}{self._label}: "
                                      f"{self.no_project(project)}")
            hint = ""
            if kind is not None:
                other = "dataset" if kind == "model" else "model"
                sql, params = _asset_filter(select, project, other)
                if self._read(sql, n=name, **params):
                    command = "ato data" if other == "dataset" else "ato models"
                    hint = (f"; a {other} named {name!r} exists{where}: {command} show "
                            f"{cli_quote(name)}")
            if not hint and project is not None:
                sql, params = _asset_filter(select, None, kind)
                elsewhere = sorted({r[1] for r in self._read(sql, n=name, **params)})
                if elsewhere:
                    listing = ", ".join(repr(p) for p in elsewhere)
                    hint = (f"; {'it exists' if len(elsewhere) == 1 else 'they exist'} in "
                            f"project{'s' if len(elsewhere) > 1 else ''} {listing}: pass "
                            f"project={elsewhere[0]!r} (on the command line --project "
                            f"{cli_quote(elsewhere[0])})")
            if not hint:
                hint = self._close_names(name, project, kind)
            raise self._not_found(f"no {what} named {name!r}{where}{self._label}{hint}")
        if len(rows) > 1:
            raise self._ambiguous(name, [(r[2], r[1]) for r in rows])
        return rows[0]

    def projects(self) -> list[str]:
        """The names of the projects in the database, sorted."""
        return [r[0] for r in self._read("SELECT name FROM projects ORDER BY name")]

    def no_project(self, project: str) -> str:
        """'there is no project P (projects: …) — did you mean …?': why a lookup in
        ``project`` found nothing, when the database has no such project."""
        known = self.projects()
        listing = ", ".join(repr(p) for p in known[:20]) + (" …" if len(known) > 20 else "")
        return (f"there is no project {project!r} (projects: {listing or 'none'})"
                + did_you_mean(project, known))

    def _close_names(self, name: str, project: str | None, kind: str | None) -> str:
        """' — did you mean …?' among the names of ``kind`` (in ``project``), or ''."""
        sql, params = _asset_filter("SELECT DISTINCT a.name FROM registry_assets a JOIN "
                                    "projects p ON p.id = a.project_id WHERE 1 = 1",
                                    project, kind)
        return did_you_mean(name, [r[0] for r in self._read(sql, **params)])

    def version_id(self, name: str, ref=None, project: str | None = None,
                   kind: str | None = None) -> int:
        """The database id of version ``ref`` (number, ``'vN'``, alias; ``None``: latest)."""
        try:
            ref = parse_ref(ref)  # a bad ref is named before the name is looked up
        except RegistryError as e:
            raise self._not_found(str(e)) from None
        asset_id, project, kind, name, _ = self.asset_row(name, project, kind)
        if isinstance(ref, int):
            # a number beyond the column names no version (SQLite cannot even bind it)
            rows = [] if ref > MAX_VERSION else self._read(
                "SELECT id FROM registry_versions WHERE asset_id = :a AND version = :n",
                a=asset_id, n=ref)
            what = f"version {ref}"
        else:
            rows = self._read("SELECT version_id FROM registry_aliases WHERE asset_id = :a "
                              "AND alias = :al", a=asset_id, al=ref)
            what = f"alias {ref!r}"
        if not rows:
            known = [r[0] for r in self._read("SELECT alias FROM registry_aliases WHERE "
                                              "asset_id = :a ORDER BY alias", a=asset_id)]
            top = self._read("SELECT MAX(version) FROM registry_versions WHERE asset_id = :a",
                             a=asset_id)[0][0]
            raise RegistryError(f"{kind} {name!r} (project {project!r}) has no {what} "
                                f"(versions 1..{top or 0}; aliases: {', '.join(known) or 'none'})")
        return rows[0][0]

    def _versions(self, where: str, order: str = " ORDER BY v.id", from_: str = VERSION_FROM,
                  **params) -> list[tuple[int, RegistryVersion]]:
        """``(id, version)`` of the versions ``where`` selects in ``from_`` (which joins
        ``registry_versions v``, ``registry_assets a``, ``projects p``), each once, with their
        aliases (one more query, on the same join)."""
        rows = self._read(f"SELECT {VERSION_COLUMNS} FROM {from_} WHERE {where}{order}",
                          **params)
        if not rows:
            return []
        aliases: dict = {}
        for alias, vid in self._read(
                f"SELECT DISTINCT al.alias, al.version_id FROM {from_} JOIN registry_aliases al "
                f"ON al.version_id = v.id WHERE {where}", **params):
            aliases.setdefault(vid, []).append(alias)
        seen: dict = {}
        for r in rows:
            if r[0] not in seen:
                seen[r[0]] = version_record(r, aliases.get(r[0], ()))
        return list(seen.items())

    def _linked(self, links: str, where: str, **params) -> list[RegistryVersion]:
        """Versions reached through ``links`` (registry_links aliases ending in ``lv``)."""
        from_ = (f"{links} JOIN registry_versions v ON v.id = lv.version_id JOIN registry_assets "
                 f"a ON a.id = v.asset_id JOIN projects p ON p.id = a.project_id")
        return [v for _, v in self._versions(where, "", from_, **params)]

    def version(self, version_id: int, created: bool = False, hashed_files: int = 0
                ) -> RegistryVersion:
        """The version with database id ``version_id``."""
        (_, v), = self._versions("v.id = :vid", vid=version_id)
        if created or hashed_files:
            from dataclasses import replace

            v = replace(v, created=created, hashed_files=hashed_files)
        return v

    # ------------------------------------------------------------------ the protocol
    def registry_assets(self, kind: str | None = None, project: str | None = None
                        ) -> list[RegistryAsset]:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be 'model' or 'dataset', not {kind!r}")
        if not self._available():
            return []
        # latest: what the alias 'latest' names (the newest version not deleted); size:
        # the bytes of the versions whose files were not collected
        sql = ("SELECT a.id, p.name, a.kind, a.name, a.description, COUNT(v.id), NULL, "
               "COALESCE(SUM(CASE WHEN v.state = 'collected' THEN 0 ELSE v.size END), 0) "
               "FROM registry_assets a JOIN projects p ON "
               "p.id = a.project_id LEFT JOIN registry_versions v ON v.asset_id = a.id WHERE 1 = 1")
        params = {}
        if kind:
            sql += " AND a.kind = :k"
            params["k"] = kind
        if project:
            sql += " AND p.name = :p"
            params["p"] = project
        sql += (" GROUP BY a.id, p.name, a.kind, a.name, a.description "
                "ORDER BY p.name, a.kind, a.name")
        rows = self._read(sql, **params)
        aliases: dict = {}
        for asset_id, alias, number in self._read(
                "SELECT al.asset_id, al.alias, v.version FROM registry_aliases al JOIN "
                "registry_versions v ON v.id = al.version_id ORDER BY al.alias"):
            aliases.setdefault(asset_id, {})[alias] = number
        tags = {asset_id: tag_list(value) for asset_id, value in self._read(
            "SELECT id, tags FROM registry_assets")}  # JSON: not a GROUP BY column on PG
        return [RegistryAsset(project=r[1], kind=r[2], name=r[3], description=r[4],
                              versions=int(r[5]),
                              latest=aliases.get(r[0], {}).get("latest"), size=int(r[7]),
                              aliases=aliases.get(r[0], {}), tags=tags.get(r[0], ()))
                for r in rows]

    def registry_versions(self, name: str, project: str | None = None,
                          kind: str | None = None) -> list[RegistryVersion]:
        asset_id = self.asset_row(name, project, kind)[0]
        return [v for _, v in self._versions("v.asset_id = :a", " ORDER BY v.version",
                                             a=asset_id)]

    def alias_history(self, name: str, alias: str | None = None, project: str | None = None,
                      kind: str | None = None) -> list[AliasEvent]:
        asset_id, project, kind, name, _ = self.asset_row(name, project, kind)
        sql = ("SELECT alias, from_version, to_version, actor, run_id, at FROM "
               "registry_alias_events WHERE asset_id = :a")
        params = {"a": asset_id}
        if alias is not None:
            sql += " AND alias = :al"
            params["al"] = alias
        return [AliasEvent(project=project, kind=kind, name=name, alias=r[0], from_version=r[1],
                           to_version=r[2], actor=r[3], run_id=r[4], at=as_time(r[5]))
                for r in self._read(sql + " ORDER BY id", **params)]

    def run_lineage(self, run_id: int) -> Lineage:
        run_id = int(run_id)
        if not self._available():
            return Lineage(run_id)
        inputs, outputs = (
            sorted(self._linked("registry_links lv", "lv.run_id = :r AND lv.role = :role",
                                r=run_id, role=role), key=_sort_key)
            for role in ("input", "output"))
        return Lineage(run_id, tuple(inputs), tuple(outputs))

    def _run_uses(self, where: str, **params) -> list[RunUse]:
        """The runs ``where`` selects (on ``experiments e``), by id."""
        if self._runs is not None:
            return self._runs(where, **params)
        return [RunUse(r[0], r[1], r[2], as_time(r[3])) for r in self._read(
            f"SELECT e.id, p.name, e.status, e.start_time FROM experiments e JOIN projects p "
            f"ON p.id = e.project_id WHERE {where} ORDER BY e.id", **params)]

    def runs_using(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[RunUse]:
        """Runs that used a version of *dataset* ``name`` (of *model* ``name`` with
        ``kind='model'``; the kind is implied, as in :meth:`Registry.runs_using`)."""
        vid = self.version_id(name, ref, project, input_kind(kind))
        return self._run_uses("e.id IN (SELECT run_id FROM registry_links WHERE version_id = :v "
                              "AND role = 'input')", v=vid)

    def produced_by(self, name: str, ref=None, project: str | None = None) -> Provenance:
        version = self.version(self.version_id(name, ref, project, "model"))
        if version.run_id is None:
            return Provenance(version)
        uses = self._run_uses("e.id = :r", r=version.run_id)
        if not uses:
            return Provenance(version)
        config = self._read("SELECT config FROM experiments WHERE id = :r", r=version.run_id)
        fingerprints = {f"{t} ({k})": f for t, k, f in self._read(
            "SELECT trace_id, trace_type, fingerprint FROM fingerprints WHERE run_id = :r "
            "ORDER BY trace_id, trace_type", r=version.run_id)}
        inputs = self._linked("registry_links lv", "lv.run_id = :r AND lv.role = 'input'",
                              r=version.run_id)
        return Provenance(version, uses[0], values.loads(config[0][0]) if config else None,
                          fingerprints, tuple(sorted(inputs, key=_sort_key)))

    def downstream(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[RegistryVersion]:
        vid = self.version_id(name, ref, project, input_kind(kind))
        return sorted(
            self._linked("registry_links li JOIN registry_links lv ON lv.run_id = li.run_id "
                         "AND lv.role = 'output'", "li.version_id = :d AND li.role = 'input'",
                         d=vid),
            key=lambda v: (v.run_id if v.run_id is not None else -1, v.name, v.version))
