"""``ato models``, ``ato data`` and ``ato store``: the registry from the command line.

Every action takes ``--db`` (default ``$ATO_DB`` or ``sqlite:///experiments.db``),
``--project`` where a name could be ambiguous, and ``--json`` for machine-readable output.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time

from ato.errors import AtoError
from ato.tracking.secrets import db_option

DEFAULT_DB = "sqlite:///experiments.db"


def _registry(args, readonly: bool = False, store: bool = False):
    """The :class:`Registry` of ``--db``.  The database is first opened as ``ato runs``
    opens it (:func:`~ato.db_routers.sql.engine.open_engine`, read-only): a missing SQLite
    file (nothing is created), a file that is not a database, a server that refuses the
    connection, a missing database or role is one line naming the URL and the reason
    (:class:`~ato.db_routers.sql.engine.TrackerUnavailableError`, exit status 2).
    ``readonly`` (the actions that only read: list, show, history, diff): the registry
    reads through that read-only connection and never creates or upgrades a table.
    ``store`` (``ato store verify``, ``du`` and ``gc`` without ``--delete``): read-only as
    well when the registry's tables are there; a tracker written before the registry
    existed has them added first, as registering would."""
    from ato.db_routers.sql.engine import open_engine

    from .core import Registry

    engine = open_engine(args.db, readonly=True)
    if store:
        registry = Registry(args.db, store=getattr(args, "store", None), engine=engine)
        if registry._tables_exist():
            return registry
    return Registry(args.db, store=getattr(args, "store", None),
                    engine=engine if readonly else None)


def human(n) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def table(headers: list[str], rows: list[list]) -> str:
    """Columns padded by the terminal width of each cell (:func:`ato.terminal.display_width`:
    a CJK file name takes two columns per character)."""
    from ato.terminal import display_width

    # every cell escaped as file names are: a tab or newline in a project name (or any
    # text) cannot break the columns; an already escaped cell prints as it is
    cells = [["-" if c is None else escaped(str(c)) for c in row] for row in rows]
    widths = [max([display_width(h)] + [display_width(r[i]) for r in cells])
              for i, h in enumerate(headers)]

    def line(row) -> str:
        return "  ".join(c + " " * (w - display_width(c)) for c, w in zip(row, widths)).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _dump(data) -> None:
    """``--json`` output as ``ato runs --json`` writes it: strict JSON, ±inf and NaN as
    ``{"$numberDouble": …}`` (a meta holding NaN printed a ``NaN`` token)."""
    from ato.db_routers.sql import values

    print(values.dumps(data, indent=2, ensure_ascii=False))


def _short(v) -> str:
    return (v.reference and f"ref {escaped(v.reference)}") or v.digest[:12]


def escaped(path) -> str:
    """``path`` as a table cell or line shows it: as is when every character prints,
    else quoted with escapes (``'a\\nb.bin'``), so that a newline, a tab or a terminal
    escape in a file name cannot break the layout or pass for another name."""
    if path is None:
        return "-"
    return path if path.isprintable() else repr(path)


def _size(v) -> str:
    """The size cell of a version: ``-`` for a reference that declared none."""
    return "-" if v.reference and not v.size else human(v.size)


# --------------------------------------------------------------------------- models & data
def cmd_list(args) -> int:
    registry = _registry(args, readonly=True)
    if args.project:  # '0 models' would not say that the project does not exist
        registry.check_project(args.project, args.kind)
    rows = registry.assets(kind=args.kind, project=args.project)
    if args.json:
        _dump(rows)
        return 0
    # size: every version whose files are still stored (live and pruned, each counted in
    # full); 'ato store du' counts each blob once, live ones apart
    tagged = any(r["tags"] for r in rows)
    print(table(["project", "name", "versions", "latest", "size (live+pruned)", "aliases"]
                + (["tags"] if tagged else []),
                [[r["project"], r["name"], r["versions"], r["latest"] and f"v{r['latest']}",
                  _asset_size(args, r),
                  ", ".join(f"{a}=v{n}" for a, n in r["aliases"].items()) or None]
                 + ([", ".join(r["tags"]) or None] if tagged else []) for r in rows]))
    print(f"{len(rows)} {args.kind}{'s' if len(rows) != 1 else ''}")
    return 0


def _asset_size(args, asset: dict) -> str:
    """The size cell of ``ato data/models list``: ``-`` for a dataset whose versions are
    all references that declared no size (recorded as 0 bytes, not known to be empty)."""
    if asset["size"] or asset["kind"] != "dataset":
        return human(asset["size"])
    versions = _registry(args, readonly=True).versions(asset["name"], asset["project"],
                                                       asset["kind"])
    return "-" if versions and all(v.reference for v in versions) else human(0)


def cmd_show(args) -> int:
    registry = _registry(args, readonly=True)
    if args.ref is None:
        versions = registry.versions(args.name, args.project, args.kind)
        if args.json:
            _dump([v.to_dict() for v in versions])
            return 0
        first = versions[0] if versions else None
        print(f"{args.kind} {escaped(args.name)}"
              + (f"  (project {escaped(first.project)})" if first else ""))
        description = registry.description(first) if first else None
        if description:
            print(description)
        tags = registry.tags(args.name, args.project, args.kind)
        if tags:
            print(f"tags: {', '.join(tags)}")
        scored = any(v.score is not None for v in versions)
        print(table(["version", "digest", "size", "files", "run", "step"]
                    + (["score"] if scored else []) + ["state", "aliases", "created"],
                    [[f"v{v.version}", _short(v), _size(v), v.file_count, v.run_id, v.step]
                     + ([None if v.score is None else f"{v.score:g}"] if scored else [])
                     + [v.state, ", ".join(v.aliases) or None, str(v.created_at)[:19]]
                     for v in versions]))
        return 0
    v = registry.get(args.name, args.ref, args.project, args.kind)
    files = registry.files(v)
    if args.kind == "model":
        lineage = registry.produced_by(v.name, f"v{v.version}", v.project)
        lineage["used_by"] = registry.runs_using(v.name, f"v{v.version}", v.project, "model")
        lineage["downstream"] = registry.downstream(v.name, f"v{v.version}", v.project, "model")
    else:
        lineage = {"runs": registry.runs_using(v.name, f"v{v.version}", v.project),
                   "downstream": registry.downstream(v.name, f"v{v.version}", v.project)}
    if args.json:
        _dump({**v.to_dict(), "files": files, "lineage": lineage})
        return 0
    def row(label: str, value) -> None:
        print(f"{label:<12}{value}")

    print(f"{v.uri}  ({v.kind}, {v.state})")
    description = registry.description(v)
    if description:
        row("description", description)
    row("digest", v.digest)
    if v.reference:
        row("reference", f"{escaped(v.reference)} (recorded by reference: not copied, not "
            f"verified)")
        row("size", f"{human(v.size)} (as declared; a reference has no file list)"
            if v.size else "- (not declared)")
    else:
        row("size", f"{human(v.size)} in {v.file_count} file{'s' if v.file_count != 1 else ''}")
    row("source", escaped(v.source))
    where = "no (recorded by reference)" if v.reference else "no (recorded in place)"
    row("stored", v.store_url or where)
    row("run", f"{v.run_id or '-'}   step {v.step if v.step is not None else '-'}   "
        f"score {v.score if v.score is not None else '-'}")
    row("aliases", ", ".join(v.aliases) or "-")
    row("created", f"{v.created_at} by {v.created_by}")
    if v.meta:
        row("meta", json.dumps(v.meta, default=str))
    if files and (v.is_dir or args.files):
        print()
        shown = files if args.files else files[:20]
        print(table(["file", "size", "digest"], [[escaped(f["path"]), human(f["size"]),
                                                   f["digest"][:12]]
                                                  for f in shown]))
        if len(shown) < len(files):
            print(f"... {len(files) - len(shown)} more (--files lists all)")
    print()
    if args.kind == "model":
        if lineage["run"] is None:
            print("lineage: registered outside a run")
        else:
            run = lineage["run"]
            print(f"produced by run {run['run_id']} ({run['status']}, started {run['start_time']})")
            for d in lineage["datasets"]:
                print(f"  used dataset {d['name']} v{d['version']} ({d['digest'][:12]})")
            for d in lineage["models"]:
                print(f"  started from model {d['name']} v{d['version']} ({d['digest'][:12]})")
            for trace, fp in sorted(lineage["fingerprints"].items()):
                print(f"  code {trace}: {fp[:16]}")
        if lineage["used_by"]:
            _print_uses(lineage["used_by"], lineage["downstream"])
    else:
        _print_uses(lineage["runs"], lineage["downstream"])
    return 0


def _print_uses(runs: list[dict], downstream: list[dict]) -> None:
    """``used by N runs: …`` and the model versions those runs produced."""
    print(f"used by {len(runs)} run{'s' if len(runs) != 1 else ''}: "
          f"{', '.join(str(r['run_id']) for r in runs) or '-'}")
    for d in downstream:
        alias = f" ({', '.join(d['aliases'])})" if d["aliases"] else ""
        print(f"  fed model {d['model']} v{d['version']}{alias} via run {d['run_id']}")


def cmd_tag(args) -> int:
    registry = _registry(args)
    if args.description is not None:
        registry.describe(args.name, args.description or None, args.project, args.kind)
    if args.tags:
        tags = registry.tag(args.name, args.tags, args.project, args.kind, delete=args.delete)
    elif args.delete or args.description is None:
        raise AtoError(f"tag: give the tags to {'remove' if args.delete else 'add'}, or "
                       f"--description TEXT")
    else:
        tags = registry.tags(args.name, args.project, args.kind)
    if args.json:
        _dump({"name": args.name, "tags": tags, "description": args.description or None})
        return 0
    print(f"{args.kind} {args.name}: tags {', '.join(tags) or '-'}"
          + (f"; description {'removed' if not args.description else 'set'}"
             if args.description is not None else ""))
    return 0


def cmd_alias(args) -> int:
    registry = _registry(args)
    if args.delete:
        # a REF given with --delete must be what the alias points at (a check, so that a
        # stale script line cannot remove an alias that has moved since)
        number = registry.delete_alias(args.name, args.alias, args.project, args.kind,
                                       ref=args.ref)
        if args.json:
            _dump({"alias": args.alias, "removed_from": number})
        else:
            print(f"removed alias {args.alias} (was v{number}) from {args.name}")
        return 0
    if args.ref is None:
        raise AtoError("give the version to point the alias at (e.g. 'ato models alias "
                       f"{shlex.quote(args.name)} {shlex.quote(args.alias)} 3'), or --delete")
    v = registry.set_alias(args.name, args.alias, args.ref, args.project, args.kind)
    if args.json:
        _dump(v.to_dict())
    else:
        print(f"{args.name}@{args.alias} -> v{v.version} ({v.digest[:12]})")
    return 0


def cmd_delete(args) -> int:
    registry = _registry(args)
    before = {v.version: v.state for v in registry.versions(args.name, args.project, args.kind)}
    done = registry.delete_versions(args.name, args.refs, args.project, args.kind)
    if args.json:
        _dump([v.to_dict() for v in done])
        return 0
    let_go = [v for v in done if before.get(v.version) == "live"]
    db = db_option(args.db)
    kept = [v for v in done if before.get(v.version) != "live"]
    if let_go:
        print(f"deleted {done[0].kind} {done[0].name} "
              + ", ".join(f"v{v.version}" for v in let_go)
              + f": marked pruned (the record and its lineage stay); 'ato store gc {db}' "
                f"shows what that frees, 'ato store gc --delete {db}' frees it")
    for v in kept:
        print(f"v{v.version} was already {before.get(v.version)}")
    return 0


def cmd_history(args) -> int:
    rows = _registry(args, readonly=True).alias_history(args.name, args.alias, args.project,
                                                        args.kind)
    if args.json:
        _dump(rows)
        return 0
    print(table(["when", "alias", "from", "to", "by", "run"],
                [[r["at"][:19], r["alias"], r["from"] and f"v{r['from']}",
                  r["to"] and f"v{r['to']}", r["actor"], r["run_id"]] for r in rows]))
    return 0


def cmd_diff(args) -> int:
    d = _registry(args, readonly=True).diff(args.name, args.a, args.b, args.project, args.kind)
    if args.json:
        _dump(d)
        return 0
    print(f"{d['kind']} {d['name']} v{d['from']} -> v{d['to']}: {len(d['added'])} added, "
          f"{len(d['removed'])} removed, {len(d['changed'])} changed, {d['unchanged']} unchanged")
    for f in d["added"]:
        print(f"+ {escaped(f['path'])}  ({human(f['size'])})")
    for f in d["removed"]:
        print(f"- {escaped(f['path'])}  ({human(f['size'])})")
    for f in d["changed"]:
        print(f"M {escaped(f['path'])}  ({human(f['from']['size'])} -> {human(f['to']['size'])})")
    return 0


# --------------------------------------------------------------------------- store
def cmd_verify(args) -> int:
    from .core import location

    registry = _registry(args, store=True)
    try:
        rows = registry.verify(quick=args.quick)
    except KeyboardInterrupt:
        # one line, and the hashing threads stop with the process: verify writes nothing,
        # and a thread deep in a large blob would otherwise hold the exit until it is done
        print("ato store verify: interrupted before every blob was checked (nothing changed)",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
    bad = [r for r in rows if r["status"] != "ok"]
    mode = ("quick: sizes only, bytes changed in place are not detected" if args.quick
            else "full: every blob re-hashed")
    if args.json:
        _dump({"mode": "quick" if args.quick else "full", "checked": len(rows), "problems": bad})
        return 1 if bad else 0
    for r in bad:
        if r["what"] == "database":
            print(f"UNREADABLE database {r['database']} sharing "
                  f"{location(registry.store(r['store']))} ({r['reason']}): "
                  f"its blobs were not checked")
            continue
        if r["what"] == "store":
            print(f"MISSING   {r['reason']} ({_plural(r['blobs'], 'recorded blob')} not "
                  f"checked)")
            continue
        what = " checkout" if r["what"] == "checkout" else ""
        held = f"; held by {', '.join(r['databases'])}" if r["databases"] else ""
        print(f"{r['status'].upper():9} {r['digest']}{what}  ({human(r['size'])}) in "
              f"{location(registry.store(r['store']))}{held}")
        if r["what"] == "blob":
            print(f"          {registry.repair_hint(r['store'], r['digest'], r['status'])}")
    blobs = sum(r["what"] == "blob" for r in rows)
    gone = sum(r["what"] == "store" for r in rows)
    checkouts = sum(r["what"] == "checkout" for r in rows)
    print(f"{blobs} blob{'s' if blobs != 1 else ''}"
          + (f" and {checkouts} checkout{'s' if checkouts != 1 else ''}" if checkouts else "")
          + f" checked ({mode}), {len(bad)} problem{'s' if len(bad) != 1 else ''}"
          + (f" ({_plural(gone, 'store')} not found)" if gone else "")
          + ("; resolving a damaged checkout's version rebuilds it"
             if any(r["what"] == "checkout" for r in bad) else ""))
    return 1 if bad else 0


def cmd_du(args) -> int:
    data = _registry(args, store=True).du()
    if args.json:
        _dump(data)
        return 0
    print(table(["store", "on disk", "blobs", "live", "held by other databases", "collectable",
                 "temporary"],
                [[d.get("location", url), human(d["bytes_on_disk"]), d["blobs_on_disk"],
                  human(d["live_bytes"]),
                  human(d["other_bytes"]) if d["databases"][1:] else None,
                  human(d["collectable_bytes"]), human(d["temporary_bytes"])]
                 for url, d in data.items()]))
    for url, d in data.items():
        if [n for n in d.get("names", []) if n != url]:
            print(f"{escaped(url.removeprefix('file://'))}: also recorded as "
                  f"{', '.join(escaped(n.removeprefix('file://')) for n in d['names'] if n != url)}"
                  f" (the same store, counted once)")
    for url, d in data.items():
        if d.get("unreadable"):
            print(f"{url}: 'held by other databases' and 'collectable' unknown: "
                  f"{d['unreadable']}")
    return 0


def _spared_temporary(registry, rows, grace: float) -> dict:
    """Per store, the temporary files gc did not list: ``{url: {'younger_than_grace':
    {'files', 'bytes'}, 'in_use': {'files', 'bytes'}}}`` (``in_use``: older, but a live
    process holds its lock), only for stores holding some."""
    listed = {(r["store"], r["digest"]) for r in rows if r["reason"] == "temporary file"}
    limit = time.time() - grace
    out = {}
    for url, files in registry.temporary().items():
        young = [t for t in files if t.mtime >= limit]
        held = [t for t in files if t.mtime < limit and (url, t.name) not in listed]
        if young or held:
            out[url] = {"younger_than_grace": {"files": len(young),
                                               "bytes": sum(t.size for t in young)},
                        "in_use": {"files": len(held), "bytes": sum(t.size for t in held)}}
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def cmd_gc(args) -> int:
    from ato.db_routers.sql.engine import display_url

    from .core import location

    if args.grace < 0:
        raise AtoError(f"--grace {args.grace:g}: a number of seconds >= 0")
    reg = _registry(args, store=not args.delete)
    forget = args.forget_db or []
    rows = reg.gc(dry_run=not args.delete, grace=args.grace, forget=forget)
    total = sum(r["size"] for r in rows)
    spared = _spared_temporary(reg, rows, args.grace)
    if args.json:
        _dump({"dry_run": not args.delete, "items": rows, "bytes": total,
               "forget": [display_url(db) for db in forget],
               "spared_temporary": spared})
        return 0
    for db in forget:
        print(f"{'forgot' if args.delete else 'would forget'} database {display_url(db)} "
              f"in {location(reg.store())}")
    for r in rows:
        print(f"{'remove' if args.delete else 'would remove'} {r['digest']}  "
              f"{human(r['size'])}  ({r['reason']})")
    verb = "freed" if args.delete else "would free"
    print(f"{verb} {human(total)} ({total} bytes) in {len(rows)} "
          f"file{'s' if len(rows) != 1 else ''}" +
          ("" if args.delete else "; dry run, pass --delete to remove them" +
           (" (and forget the databases)" if forget else "")))
    for url, s in spared.items():
        young, held = s["younger_than_grace"], s["in_use"]
        parts = []
        if young["files"]:
            parts.append(f"{_plural(young['files'], 'temporary file')} "
                         f"({human(young['bytes'])}) younger than --grace {args.grace:g} s "
                         f"(a registration may still be writing them; a smaller --grace "
                         f"lists those no running process holds)")
        if held["files"]:
            parts.append(f"{_plural(held['files'], 'older temporary file')} "
                         f"({human(held['bytes'])}) held by a running process")
        print(f"not listed in {location(reg.store(url)).removeprefix('file://')}/tmp: "
              + "; ".join(parts))
    return 0


# --------------------------------------------------------------------------- commands
def _run(args) -> int:
    """Run the chosen action; a name held in several projects is re-worded in CLI terms
    (``--project P``; the command itself names the kind)."""
    from .queries import AmbiguousNameError, cli_quote

    try:
        return args._run(args)
    except AmbiguousNameError as e:
        raise AmbiguousNameError(e.name, e.choices, e.how(project="--project {}",
                                                          quote=cli_quote)) from None


def _common(p) -> None:
    default = os.environ.get("ATO_DB", DEFAULT_DB)
    p.add_argument("--db", default=default, help=f"tracker URL (default: $ATO_DB or {DEFAULT_DB})")
    p.add_argument("--json", action="store_true", help="print JSON")


def _asset_actions(parser, kind: str) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help=f"every registered {kind}")
    _common(p)
    p.add_argument("--project", help="only this project")
    p.set_defaults(_run=cmd_list, kind=kind)
    p = sub.add_parser("show", help=f"the versions of a {kind}, or one version with its lineage")
    p.add_argument("name")
    p.add_argument("ref", nargs="?", help="version number (3 or v3) or alias")
    p.add_argument("--project")
    p.add_argument("--files", action="store_true", help="list every file")
    _common(p)
    p.set_defaults(_run=cmd_show, kind=kind)
    p = sub.add_parser("tag", help=f"add tags to a {kind} (or --delete them), or set its "
                                   f"--description")
    p.add_argument("name")
    p.add_argument("tags", nargs="*", metavar="TAG")
    p.add_argument("--delete", action="store_true", help="remove the tags given")
    p.add_argument("--description", help="set the description ('' removes it)")
    p.add_argument("--project")
    _common(p)
    p.set_defaults(_run=cmd_tag, kind=kind)
    p = sub.add_parser("delete", help=f"let {kind} versions go: 'ato store gc --delete' then "
                                      f"frees their files (the records stay, marked pruned)")
    p.add_argument("name")
    p.add_argument("refs", nargs="+", metavar="REF", help="version number (3 or v3) or alias")
    p.add_argument("--project")
    _common(p)
    p.set_defaults(_run=cmd_delete, kind=kind)
    return sub


class ModelsCommand:
    PLUGIN_NAME = "models"
    help = "registered models: versions, aliases, alias history, lineage"

    @staticmethod
    def add_arguments(parser) -> None:
        sub = _asset_actions(parser, "model")
        p = sub.add_parser("alias", help="point an alias at a version (or --delete it)")
        p.add_argument("name")
        p.add_argument("alias")
        p.add_argument("ref", nargs="?", help="version number (3 or v3) or another alias; "
                                              "with --delete, the version the alias must "
                                              "point at to be removed")
        p.add_argument("--delete", action="store_true", help="remove the alias")
        p.add_argument("--project")
        _common(p)
        p.set_defaults(_run=cmd_alias, kind="model")
        p = sub.add_parser("history", help="who moved an alias, when, from which version")
        p.add_argument("name")
        p.add_argument("alias", nargs="?", help="one alias (default: all)")
        p.add_argument("--project")
        _common(p)
        p.set_defaults(_run=cmd_history, kind="model")

    @staticmethod
    def run(args) -> int:
        return _run(args)


class DataCommand:
    PLUGIN_NAME = "data"
    help = "versioned datasets: versions, files, what changed, what used them"

    @staticmethod
    def add_arguments(parser) -> None:
        sub = _asset_actions(parser, "dataset")
        p = sub.add_parser("diff", help="files added, removed and changed between two versions")
        p.add_argument("name")
        p.add_argument("a", help="version number or alias")
        p.add_argument("b", help="version number or alias")
        p.add_argument("--project")
        _common(p)
        p.set_defaults(_run=cmd_diff, kind="dataset")

    @staticmethod
    def run(args) -> int:
        return _run(args)


class StoreCommand:
    PLUGIN_NAME = "store"
    help = "the artifact store: verify blobs, disk usage, garbage collection"

    @staticmethod
    def add_arguments(parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        store_help = "store URL or directory (default: $ATO_STORE or the one beside a SQLite file)"
        p = sub.add_parser("verify", help="re-hash every blob (of every database sharing the "
                                          "store); exit 1 if one is missing or modified")
        p.add_argument("--quick", action="store_true",
                       help="compare sizes only (reads no blob): finds removed, truncated or "
                            "grown files, not bytes changed in place")
        p.add_argument("--store", help=store_help)
        _common(p)
        p.set_defaults(_run=cmd_verify)
        p = sub.add_parser("du", help="bytes on disk, live and collectable per store")
        p.add_argument("--store", help=store_help)
        _common(p)
        p.set_defaults(_run=cmd_du)
        p = sub.add_parser("gc", help="free blobs no kept version holds (dry run by default)")
        p.add_argument("--delete", action="store_true", help="really remove them")
        p.add_argument("--grace", type=float, default=3600.0,
                       help="spare unrecorded and temporary files younger than this many "
                            "seconds (default 3600)")
        p.add_argument("--forget-db", action="append", metavar="URL",
                       help="drop a database that no longer exists from the store's list of "
                            "databases sharing it (repeatable); gc then stops sparing what it "
                            "referenced. Only with --delete: a dry run says 'would forget' "
                            "and keeps it")
        p.add_argument("--store", help=store_help)
        _common(p)
        p.set_defaults(_run=cmd_gc)

    @staticmethod
    def run(args) -> int:
        return _run(args)
