"""``ato runs list|show|best|diff``: readable tables (or ``--json``) over the tracker.

It reads only through the tracker protocol (``ato.tracking.open_finder``), so it works on
any backend's URL; an optional capability the backend lacks (artifacts, fingerprints,
``--where``) is reported in one line instead of failing."""

from __future__ import annotations

import argparse
import json
import os

from ato.errors import AtoError
from ato.terminal import display_width
from ato.tracking.secrets import without_passwords


def flatten(config) -> dict:
    """:func:`ato.tracking.flatten`, imported on first use: registering the ``ato runs``
    command (which every ``ato`` invocation does) must not import the tracker layer."""
    from ato.tracking import flatten as _flatten

    return _flatten(config)

DEFAULT_DB = "sqlite:///experiments.db"


class _Absent:
    """A config key one of two diffed runs lacks (``<absent>`` in text, see ``_diff_json``)."""

    def __repr__(self):
        return "<absent>"


ABSENT = _Absent()


def _tags(run) -> list:
    """The run's tags as every output shows them (passwords masked)."""
    return [without_passwords(str(t)) for t in (run.tags or [])]


def _config(run) -> dict:
    """The run's config, nested, as every output shows it (passwords masked)."""
    return without_passwords(run.config.to_dict())


def _error(run):
    error = getattr(run, "error", None)
    return None if error is None else without_passwords(str(error))


def _finder(args):
    from ato.tracking import open_finder

    return open_finder(args.db)


def _summary(s) -> dict:
    return {"latest": s.last, "latest_step": s.last_step, "min": s.min, "max": s.max,
            "steps": s.count}


def _summaries(finder, run_ids, keys=None) -> dict:
    """``{run_id: {key: {'latest', 'latest_step', 'min', 'max', 'steps'}}}``."""
    return {run_id: {k: _summary(s) for k, s in by_key.items()}
            for run_id, by_key in finder.get_metric_summaries(run_ids, keys).items()}


def _optional(finder, capability: str, fetch, run_id):
    """``fetch(run_id)``, or ``None`` when the backend lacks ``capability``."""
    return fetch(run_id) if finder.supports(capability) else None


def _statuses(text: str) -> list[str]:
    """``--status failed,killed`` → ``['failed', 'killed']``, each a known status."""
    from ato.tracking import STATUSES

    wanted = [s.strip() for s in text.split(",") if s.strip()]
    for status in wanted or [text]:
        if status not in STATUSES:
            raise argparse.ArgumentTypeError(
                f"{status!r} is not a status (choose from {', '.join(STATUSES)})")
    return wanted


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _run_id(text: str) -> int:
    """A run id argument (:func:`ato.tracking.parse_run_id`: plain digits, 1 to 2^63 - 1;
    past that no database can hold it: SQLite raised OverflowError)."""
    from ato.tracking import MAX_RUN_ID, parse_run_id

    value = parse_run_id(text)
    if value is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not a run id (run ids are whole numbers from 1 to {MAX_RUN_ID})")
    return value


def _json_text(data) -> str:
    """``--json`` output: strict JSON (RFC 8259); ±inf and NaN as ``{"$numberDouble": …}``
    (see :mod:`ato.db_routers.sql.values`)."""
    from ato.db_routers.sql import values

    return values.dumps(data, indent=2, ensure_ascii=False)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if value is ABSENT:
        return "<absent>"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


#: The widest a text table's cell is (display columns); longer ones end with "…" (--json
#: has every value whole).  The last column is never cut: nothing stands to its right, so
#: a long value there (a path in ``runs show``) widens only its own line.
CELL_WIDTH = 60


def _clip(text: str, width: int | None = CELL_WIDTH) -> str:
    """``text`` on one line, at most ``width`` display columns (``…`` where cut; ``None``:
    whole)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    if width is None or display_width(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = display_width(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def table(headers: list[str], rows: list[list]) -> str:
    """A text table: cells clipped to :data:`CELL_WIDTH` display columns but in the last
    column, aligned by display width (a wide character takes two columns)."""
    last = len(headers) - 1
    cells = [[_clip(_fmt(c), None if i == last else CELL_WIDTH) for i, c in enumerate(row)]
             for row in rows]
    widths = [max([display_width(h)] + [display_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    widths[last] = min(widths[last], max(display_width(headers[last]), CELL_WIDTH))  # the rule
    line = "  ".join(_pad(h, w) for h, w in zip(headers, widths))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(_pad(c, w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(out)


def _tag_list(tags: list, sep: str = ",") -> str:
    """Tags joined for a text table: a tag holding the separator, a quote, leading or
    trailing space (or nothing) is quoted as JSON writes it, so ``a,b`` is one tag."""
    def one(t: str) -> str:
        if not t or "," in t or '"' in t or t != t.strip():
            return json.dumps(t, ensure_ascii=False)
        return t

    return sep.join(one(t) for t in tags)


def _parse_tag_list(text: str) -> list[str]:
    """``--tags`` as the tables write tags (:func:`_tag_list`): comma-separated, a tag
    holding a comma, a quote or surrounding spaces given in JSON quotes (``'"a,b",x'``)."""
    decoder, tags, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i] == '"':
            try:
                tag, end = decoder.raw_decode(text, i)
            except ValueError as e:
                raise AtoError(f"--tags {text!r}: a quoted tag is not closed ({e.msg}: "
                               f"character {e.pos + 1})") from None
            if end < len(text) and text[end] != ",":
                raise AtoError(f"--tags {text!r}: expected ',' after the quoted tag at "
                               f"character {end + 1}")
            tags.append(tag)
            i = end + 1
        else:
            end = text.find(",", i)
            end = len(text) if end < 0 else end
            if text[i:end].strip():
                tags.append(text[i:end].strip())
            i = end + 1
    return tags


def _run_json(run, metrics: dict | None = None) -> dict:
    return {"id": run.id, "project": run.project_name, "status": run.status,
            "error": _error(run), "tags": _tags(run),
            "start_time": str(run.start_time) if run.start_time else None,
            "end_time": str(run.end_time) if run.end_time else None,
            "structural_hash": run.structural_hash, "config": _config(run),
            **({"metrics": metrics} if metrics is not None else {})}


def _summaries_of(finder, run):
    return _summaries(finder, [run.id]).get(run.id, {})


def cmd_list(args) -> int:
    finder = _finder(args)
    keys = [k for k in (args.metrics or "").split(",") if k]
    tags = _parse_tag_list(args.tags or "")
    runs = finder.find_runs(args.project, tags=tags or None, status=args.status,
                            where=args.where, limit=args.limit, last=args.last)
    summaries = _summaries(finder, [r.id for r in runs], keys) if keys else {}
    _say_unknown_metrics(finder, runs, keys, summaries)
    best = "max" if args.mode == "max" else "min"
    if args.json:
        print(_json_text([_run_json(r, summaries.get(r.id, {}) if keys else None) for r in runs]))
        return 0
    headers = ["id", "project", "status", "tags", "start"]
    for key in keys:
        headers += [f"{key} latest", f"{key} {best}", f"{key} steps"]
    rows = []
    for r in runs:
        row = [r.id, r.project_name, r.status, _tag_list(_tags(r)),
               r.start_time.strftime("%Y-%m-%d %H:%M:%S") if r.start_time else None]
        for key in keys:
            s = summaries.get(r.id, {}).get(key)
            row += [s["latest"], s[best], s["steps"]] if s else [None, None, 0]
        rows.append(row)
    print(table(headers, rows))
    print(f"{len(runs)} run{'s' if len(runs) != 1 else ''}")
    return 0


def _say_unknown_metrics(finder, runs, keys: list, summaries: dict) -> None:
    """One stderr line per ``--metrics`` key that no listed run logged (a misspelling
    otherwise shows as a silent column of ``-``): the close names and the metrics the
    listed runs have.  The listing itself goes on (exit 0)."""
    missing = [k for k in keys if not any(k in summaries.get(r.id, {}) for r in runs)]
    if not missing or not runs:
        return
    import sys

    from ato.terminal import did_you_mean

    names = sorted({k for by_key in _summaries(finder, [r.id for r in runs]).values()
                    for k in by_key})
    there = (f" (the listed runs have: {', '.join(names[:20])}"
             f"{', …' if len(names) > 20 else ''})" if names else
             " (the listed runs have no metrics)")
    for key in missing:
        print(f"ato runs list: no listed run has metric {key!r} (--metrics)"
              f"{did_you_mean(key, names)}{there}", file=sys.stderr)


def _get_run(finder, run_id):
    run = finder.find_run(run_id)
    if run is None:
        raise AtoError(f"no run with id {run_id} in {finder.url}")
    return run


def cmd_show(args) -> int:
    finder = _finder(args)
    run = _get_run(finder, args.run_id)
    summaries = _summaries_of(finder, run)
    artifacts = _optional(finder, "artifacts", finder.get_artifacts, run.id)
    fingerprints = _optional(finder, "fingerprints", finder.get_fingerprints, run.id)
    lineage = _optional(finder, "registry", finder.run_lineage, run.id)
    if args.json:
        data = _run_json(run, summaries)
        data["inputs"], data["outputs"] = (None, None) if lineage is None else (
            [_version_json(v) for v in lineage.inputs], [_version_json(v) for v in lineage.outputs])
        data["artifacts"] = None if artifacts is None else [
            {"path": a.path, "data_type": a.data_type, "metadata": a.metadata} for a in artifacts]
        data["fingerprints"] = None if fingerprints is None else [
            {"trace_id": f.trace_id, "type": f.trace_type, "fingerprint": f.fingerprint}
            for f in fingerprints]
        print(_json_text(data))
        return 0
    print(f"run {run.id}  project {run.project_name}  status {run.status}")
    if _error(run):
        print(f"error: {_error(run)}")
    print(f"tags: {_clip(_tag_list(_tags(run), ', '), 200) or '-'}   started {run.start_time}   "
          f"ended {run.end_time or '-'}")
    print(f"structural hash: {run.structural_hash}\n")
    print(table(["key", "value"], [[k, v] for k, v in flatten(_config(run)).items()]))
    if summaries:
        print()
        print(table(["metric", "latest", "min", "max", "steps"],
                    [[k, s["latest"], s["min"], s["max"], s["steps"]] for k, s in summaries.items()]))
    if artifacts:
        print()
        print(table(["artifact", "type", "metadata"],
                    [[a.path, a.data_type, a.metadata] for a in artifacts]))
    if fingerprints:
        print()
        print(table(["trace", "type", "fingerprint"],
                    [[f.trace_id, f.trace_type, f.fingerprint[:16]] for f in fingerprints]))
    if lineage is not None and (lineage.inputs or lineage.outputs):
        print()
        print(table(["", "kind", "name", "version", "digest", "state", "aliases"],
                    [[role, v.kind, v.name, f"v{v.version}", v.digest[:12], v.state,
                      ", ".join(v.aliases) or "-"]
                     for role, versions in (("input", lineage.inputs), ("output", lineage.outputs))
                     for v in versions]))
    missing = [c for c, v in (("artifacts", artifacts), ("fingerprints", fingerprints)) if v is None]
    if missing:
        print(f"\n({' and '.join(missing)}: not kept by the {finder.plugin_name!r} tracker backend)")
    return 0


def _version_json(v) -> dict:
    """A registry version as ``ato runs show --json`` lists a run's inputs and outputs."""
    return {"project": v.project, "kind": v.kind, "name": v.name, "version": v.version,
            "digest": v.digest, "state": v.state, "aliases": list(v.aliases),
            "uri": v.uri}


def cmd_best(args) -> int:
    finder = _finder(args)
    best = finder.find_best_run(args.project, args.metric, mode=args.mode)
    if isinstance(best, dict):
        raise AtoError(f"{best['error']} (project {args.project!r}, metric {args.metric!r})")
    summary = _summaries(finder, [best.id], [args.metric])[best.id].get(args.metric, {})
    if args.json:
        print(_json_text(_run_json(best, {args.metric: summary})))
        return 0
    value = summary.get("max" if args.mode == "max" else "min")
    print(f"best run for {args.metric} ({args.mode}): {best.id}  value {_fmt(value)}  "
          f"status {best.status}")
    print(table(["key", "value"], [[k, v] for k, v in flatten(_config(best)).items()]))
    return 0


def diff(finder, a, b) -> dict:
    """What differs between two runs: config, structure, fingerprints, tags, status, metrics."""
    ca, cb = flatten(_config(a)), flatten(_config(b))
    config = {k: [ca.get(k, ABSENT), cb.get(k, ABSENT)] for k in sorted(set(ca) | set(cb))
              if ca.get(k, ABSENT) != cb.get(k, ABSENT)}
    fingerprints = None
    if finder.supports("fingerprints"):
        fa = {(f.trace_id, f.trace_type): f.fingerprint for f in finder.get_fingerprints(a.id)}
        fb = {(f.trace_id, f.trace_type): f.fingerprint for f in finder.get_fingerprints(b.id)}
        fingerprints = {f"{t} ({k})": [fa.get((t, k)), fb.get((t, k))]
                        for t, k in sorted(set(fa) | set(fb)) if fa.get((t, k)) != fb.get((t, k))}
    keys = finder.metric_keys([a.id, b.id])
    sums = _summaries(finder, [a.id, b.id], keys)
    metrics = {}
    for key in keys:
        sa, sb = sums.get(a.id, {}).get(key), sums.get(b.id, {}).get(key)
        metrics[key] = {"latest": [sa and sa["latest"], sb and sb["latest"]],
                        "max": [sa and sa["max"], sb and sb["max"]],
                        "min": [sa and sa["min"], sb and sb["min"]]}
    return {"runs": [a.id, b.id], "same_structure": a.structural_hash == b.structural_hash,
            "config": config, "fingerprints": fingerprints,
            "tags": [_tags(a), _tags(b)] if a.tags != b.tags else None,
            "status": [a.status, b.status] if a.status != b.status else None,
            "metrics": metrics}


def _diff_json(d: dict) -> dict:
    """``diff`` for ``--json``: a key one run lacks is ``null`` in ``config`` and listed in
    ``absent`` (``{key: [absent in a, absent in b]}``), so it is never confused with a
    value (the string "<absent>" was)."""
    out = dict(d)
    out["config"] = {k: [None if v is ABSENT else v for v in pair] for k, pair in d["config"].items()}
    out["absent"] = {k: [v is ABSENT for v in pair] for k, pair in d["config"].items()
                     if ABSENT in pair}
    return out


def cmd_diff(args) -> int:
    finder = _finder(args)
    a, b = _get_run(finder, args.run_a), _get_run(finder, args.run_b)
    d = diff(finder, a, b)
    if args.json:
        print(_json_text(_diff_json(d)))
        return 0
    print(f"run {a.id} vs run {b.id}: structure "
          f"{'identical' if d['same_structure'] else 'DIFFERS (keys or types changed)'}")
    print()
    if d["config"]:
        print(table(["config", f"run {a.id}", f"run {b.id}"], [[k, *v] for k, v in d["config"].items()]))
    else:
        print("config: identical")
    for label in ("tags", "status"):
        if d[label]:
            show = (lambda v: _clip(_tag_list(v, ", "), 200) or "-") if label == "tags" else _fmt
            print(f"\n{label}: {show(d[label][0])}  vs  {show(d[label][1])}")
    if d["fingerprints"] is None:
        print(f"\n(code fingerprints: not kept by the {finder.plugin_name!r} tracker backend)")
    elif d["fingerprints"]:
        print()
        print(table(["code fingerprint", f"run {a.id}", f"run {b.id}"],
                    [[k, (v[0] or "-")[:16], (v[1] or "-")[:16]] for k, v in d["fingerprints"].items()]))
    if d["metrics"]:
        print()
        print(table(["metric", f"latest {a.id}", f"latest {b.id}", f"max {a.id}", f"max {b.id}",
                     f"min {a.id}", f"min {b.id}"],
                    [[k, *m["latest"], *m["max"], *m["min"]] for k, m in d["metrics"].items()]))
    return 0


class RunsCommand:
    PLUGIN_NAME = "runs"
    help = "list, show, compare and rank tracked runs"

    @staticmethod
    def add_arguments(parser) -> None:
        db_default = os.environ.get("ATO_DB", DEFAULT_DB)
        common = {"default": db_default,
                  "help": f"tracker URL (default: $ATO_DB or {DEFAULT_DB})"}
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        p = sub.add_parser("list", help="runs as a table")
        p.add_argument("--db", **common)
        p.add_argument("--project", help="only this project")
        p.add_argument("--metrics", help="comma-separated metric keys to summarise")
        p.add_argument("--mode", choices=("max", "min"), default="max", help="what 'best' means")
        p.add_argument("--where", help="typed config filter, e.g. \"lr < 0.01 and model == 'x'\"")
        p.add_argument("--tags", help="comma-separated tags that must all be present (a tag "
                                      "holding a comma in JSON quotes, as the tables show it: "
                                      "'\"a,b\",x')")
        p.add_argument("--status", type=_statuses,
                       help="running, completed, failed, killed or crashed; several "
                            "comma-separated (failed,killed)")
        p.add_argument("--limit", type=_count, help="only the first N runs")
        p.add_argument("--last", type=_count, help="only the most recent N runs")
        p.add_argument("--json", action="store_true")
        p.set_defaults(_run=cmd_list)
        p = sub.add_parser("show", help="one run in detail")
        p.add_argument("run_id", type=_run_id)
        p.add_argument("--db", **common)
        p.add_argument("--json", action="store_true")
        p.set_defaults(_run=cmd_show)
        p = sub.add_parser("best", help="the run with the best value of a metric")
        p.add_argument("--db", **common)
        p.add_argument("--project", required=True)
        p.add_argument("--metric", required=True)
        p.add_argument("--mode", choices=("max", "min"), default="max")
        p.add_argument("--json", action="store_true")
        p.set_defaults(_run=cmd_best)
        p = sub.add_parser("diff", help="what differs between two runs")
        p.add_argument("run_a", type=_run_id)
        p.add_argument("run_b", type=_run_id)
        p.add_argument("--db", **common)
        p.add_argument("--json", action="store_true")
        p.set_defaults(_run=cmd_diff)

    @staticmethod
    def run(args) -> int:
        return args._run(args)
