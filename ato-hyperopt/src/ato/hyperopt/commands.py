"""``ato search status STUDY``: where a study shared by many workers stands;
``ato search list``: every study; ``ato search requeue STUDY --failed``: run a study's
failed trials again (the one command here that writes).

It reads only through the study-coordination protocol (:func:`ato.tracking.open_coordinator`
with ``readonly=True``), so it works on any backend declaring ``"studies"`` and never
creates, migrates or writes the store.  A missing database or study is one line and exit
status 2."""

from __future__ import annotations

import json
import math
import os
from collections import Counter

from ato.errors import AtoError
from ato.tracking.secrets import db_option, hide_passwords

DEFAULT_DB = "sqlite:///experiments.db"


class StudyNotFoundError(AtoError, LookupError):
    """No study of that name in the tracker store."""


class SearchArgumentError(AtoError, ValueError):
    """An ``ato search`` argument that cannot name anything (an empty study id, an empty
    or in-memory ``--db``)."""


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(str(text))




def resolve_db(given) -> str:
    """The tracker URL to read: ``--db``, else ``$ATO_DB``, else the default; refused with :class:`SearchArgumentError` when it cannot name a store that
    another process wrote: empty, spaces around it, an in-memory SQLite database."""
    if given is not None:
        text, origin = str(given), "--db"
    elif os.environ.get("ATO_DB") is not None:
        text, origin = os.environ["ATO_DB"], "$ATO_DB"
    else:
        return DEFAULT_DB
    if not text.strip():
        raise SearchArgumentError(
            f"{origin} is empty: give the tracker URL the workers use, e.g. --db "
            f"{DEFAULT_DB} or --db postgresql://user@host/experiments")
    if text != text.strip():
        raise SearchArgumentError(f"{origin} {text!r} has spaces around it; did you mean "
                                  f"--db {_quote(text.strip())}?")
    scheme, sep, rest = text.partition("://")
    if sep and scheme.split("+")[0].lower() == "sqlite":
        path = (rest[1:] if rest.startswith("/") else rest).split("?", 1)[0]
        if path in ("", ":memory:") or path.startswith("file::memory:"):
            raise SearchArgumentError(
                f"{origin} {display_url(text)} is an in-memory SQLite database, empty in "
                f"every new process: give the file the workers share, e.g. --db "
                f"sqlite:///path/to/experiments.db")
    return text


def check_study_id(study, action: str, url: str | None = None) -> str:
    """``study`` when it can name a study; else :class:`SearchArgumentError`."""
    if not isinstance(study, str) or not study.strip():
        listing = "ato search list" + (f" {db_option(url)}" if url else "")
        raise SearchArgumentError(
            f"{action}: the study id is empty ({study!r}); give the study_id the workers "
            f"share ({listing} shows the studies)")
    return study


def display_url(url: str) -> str:
    """``url`` with a password replaced by ``***`` (``postgresql://u:***@host/db``)."""
    return hide_passwords(str(url))


def _better(mode: str, a: float, b: float) -> bool:
    return a > b if mode == "max" else a < b


def _known(coordinator, study: str) -> str:
    """``; did you mean 'x'?`` / ``; its studies: a, b`` for a missing study (a backend
    without ``study_names`` says nothing more); a suggested command carries the ``--db``."""
    import difflib

    names = getattr(coordinator, "study_names", None)
    try:
        known = list(names()) if callable(names) else None
    except Exception:
        known = None
    if known is None:
        return ""
    if not known:
        return "; it holds no study yet"
    close = difflib.get_close_matches(study, known, n=1, cutoff=0.6)
    if close:
        return (f"; did you mean {close[0]!r}? (ato search list {db_option(coordinator.url)} "
                f"shows all {len(known)})")
    shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
    return f"; its studies: {shown}"


def _budget(text):
    """A payload's exact budget text (``'9'``, ``'10/9'``) as a Fraction; no budget: 0."""
    from fractions import Fraction

    try:
        return Fraction(str(text)) if text is not None else Fraction(0)
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def _runs_hint(study: str, url: str) -> str:
    """Where a search that is no shared study keeps its trials (``study_id`` not given,
    or a tracker without study coordination): its runs, tagged ``study:<id>`` — with the
    command that lists them, on the same ``--db``.  A text that no search accepts as a
    ``study_id`` (``a/b``, ``..``, with a space or a comma) is said to be none instead."""
    from ato.hyperopt.trial import is_path_name

    if not is_path_name(study) or any(c.isspace() or c == "," for c in study):
        return (f"; {study!r} is not a valid study id (a study_id cannot contain '/', '\\', "
                f"spaces or commas, be '.' or '..', or hold control characters), so no "
                f"search ran under it")
    return (f" (a search without an explicit study_id, or on a tracker that does not "
            f"coordinate studies, shares no study: its trials are the runs tagged "
            f"study:{study}; see them with: ato runs list {db_option(url)} --tags "
            f"{_quote('study:' + study)})")


def _multi_fidelity(algorithm) -> bool:
    """Whether the registered algorithm ``algorithm`` gives its trials ``__trial__`` and
    ``__checkpoint_dir__`` (``MULTI_FIDELITY``); unknown or not installed: ``False``."""
    if not isinstance(algorithm, str) or not algorithm:
        return False
    try:
        from ato.plugins.manager import search_algorithm

        return bool(getattr(search_algorithm(algorithm), "MULTI_FIDELITY", False))
    except Exception:
        return False


def _identity(study: str, meta: dict, payload: dict, multi_fidelity: bool) -> dict:
    """What a trial of the study is to its objective: the searched ``values``, the
    ``trial_id`` its config gets as ``__trial__`` and its ``checkpoint_dir``
    (``__checkpoint_dir__``).

    The study's ``key`` names one evaluation (one configuration at one budget and rung,
    the tracker run's ``trial:`` tag); ``__trial__`` names the configuration in its
    bracket, the same on every rung — ``<config_hash>-b<bracket>`` (:mod:`ato.hyperopt.trial`),
    so several keys share one ``__trial__`` and one directory.  Both come from the payload
    the workers stored: its config's ``__trial__`` / ``__checkpoint_dir__`` when the
    queueing worker filled them (HyperBand, ``multi_hyperband``, BOHB), else, for a
    multi-fidelity algorithm whose payload carries ``config_hash`` (ASHA), built the way
    :func:`ato.hyperopt.trial.fill` builds them under the study's stored
    ``checkpoint_root``.  ``None`` where the algorithm has no such keys."""
    config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
    values = payload.get("values") if isinstance(payload.get("values"), dict) else None
    trial_id, directory = config.get("__trial__"), config.get("__checkpoint_dir__")
    chash = payload.get("config_hash")
    if trial_id is None and multi_fidelity and isinstance(chash, str) and chash:
        try:
            trial_id = f"{chash}-b{int(payload.get('bracket') or 0)}"
        except (TypeError, ValueError):
            trial_id = None
    root = meta.get("checkpoint_root")
    if directory is None and trial_id is not None and isinstance(root, str) and root:
        directory = os.path.join(root, study, str(trial_id))
    return {"values": values, "trial_id": trial_id, "checkpoint_dir": directory}


def summarize(coordinator, study: str, *, stale_after: float | None = None) -> dict:
    """The study's status as a JSON-able dict: ``study``, ``meta``, ``mode``, ``counts``
    (per state and ``total``), ``best`` (``{key, metric, budget, rung, bracket, values,
    trial_id, checkpoint_dir, payload, worker}`` or ``None``: the best completed trial at
    the largest budget any completed trial reached),
    ``running`` (``[{key, worker, host, since, attempt, budget, rung, bracket, values,
    trial_id, checkpoint_dir, payload}]``), ``queued`` (count),
    ``failed`` (``[{key, error, traceback, attempts, values, trial_id}]``: ``error`` the
    summary ``'ValueError: bad lr'``, ``traceback`` the objective's, ``None`` when none was
    recorded), ``rungs`` (``[{bracket, rung, completed,
    running, queued, failed, total}]`` for trials whose payload names both) and
    ``workers`` (``alive``: a heartbeat within ``stale_after`` seconds — default the
    study's own ``stale_after``, else 60; ``left``: the worker finished and left, which is
    not dead).  Times are ISO 8601 strings in UTC.  ``key`` is the study's name for one
    evaluation; ``trial_id`` is the ``__trial__`` its objective sees and
    ``checkpoint_dir`` the configuration's state directory, ``__checkpoint_dir__`` outside
    a call (inside one the objective writes in ``<that>/../.attempts/<trial_id>-*``)
    (:func:`_identity`; ``None`` for an algorithm without them).

    Errors: :class:`StudyNotFoundError` naming the study and the store."""
    from ato.hyperopt.workers import runs_of, split_error

    record = coordinator.get_study(study)
    if record is None:
        raise StudyNotFoundError(f"no study {study!r} in {display_url(coordinator.url)}"
                                 + _known(coordinator, study)
                                 + _runs_hint(study, coordinator.url))
    meta = record.get("meta") or {}
    if stale_after is None:  # the workers' own setting, stored with the study
        stored = meta.get("stale_after")
        stale_after = float(stored) if isinstance(stored, (int, float)) and stored > 0 else 60.0
    mode = meta.get("mode") if meta.get("mode") in ("max", "min") else None
    multi_fidelity = _multi_fidelity(meta.get("algorithm"))

    def identity(s) -> dict:
        return _identity(study, meta, s.payload or {}, multi_fidelity)

    states = coordinator.trials(study)
    counts = Counter(s.state for s in states)
    # the best at the largest budget any completed trial reached: a rung-0 metric at
    # budget 1 is not comparable with the max-budget ones (and usually looks better)
    best, best_budget = None, None
    for s in states:
        if s.state != "completed" or s.metric is None or math.isnan(s.metric):
            continue
        budget = _budget(s.payload.get("budget"))
        if best is None or budget > best_budget or (
                budget == best_budget and _better(mode or "max", s.metric, best.metric)):
            best, best_budget = s, budget
    rungs: dict[tuple, Counter] = {}
    for s in states:
        bracket, rung = s.payload.get("bracket"), s.payload.get("rung")
        if bracket is not None and rung is not None:
            rungs.setdefault((bracket, rung), Counter())[s.state] += 1

    def when(moment):
        return None if moment is None else moment.isoformat(sep=" ", timespec="seconds")

    return {
        "study": study, "url": display_url(coordinator.url), "meta": meta, "mode": mode,
        "stale_after": stale_after,
        "created_at": when(record.get("created_at")),
        "counts": {**{state: counts.get(state, 0)
                      for state in ("completed", "running", "queued", "failed")},
                   "total": len(states)},
        "best": None if best is None else {"key": best.key, "metric": best.metric,
                                           "budget": best.payload.get("budget"),
                                           "rung": best.payload.get("rung"),
                                           "bracket": best.payload.get("bracket"),
                                           **identity(best),
                                           "payload": best.payload, "worker": best.worker},
        "running": [{"key": s.key, "worker": s.worker, "host": s.host,
                     "since": when(s.claimed_at), "attempt": s.attempts,
                     "budget": s.payload.get("budget"), "rung": s.payload.get("rung"),
                     "bracket": s.payload.get("bracket"), **identity(s), "payload": s.payload}
                    for s in states if s.state == "running"],
        "queued": counts.get("queued", 0),
        "failed": [{"key": s.key, "error": split_error(s.error)[0],
                    "traceback": split_error(s.error)[1],
                    "attempts": runs_of(s.attempts, s.error),
                    **{k: v for k, v in identity(s).items() if k != "checkpoint_dir"}}
                   for s in states if s.state == "failed"],
        "rungs": [{"bracket": b, "rung": r, **{state: c.get(state, 0) for state in
                                               ("completed", "running", "queued", "failed")},
                   "total": sum(c.values())}
                  for (b, r), c in sorted(rungs.items(), key=lambda item: tuple(map(str, item[0])))],
        "workers": [{"worker": w["worker"], "host": w["host"], "pid": w["pid"],
                     "alive": w["alive"] and w.get("left_at") is None,
                     "left": w.get("left_at") is not None,
                     "heartbeat_at": when(w["heartbeat_at"])}
                    for w in coordinator.workers(study, stale_after=stale_after)],
    }


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"$numberDouble": "NaN" if value != value else
                ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def json_text(status: dict) -> str:
    """Strict JSON (RFC 8259) for ``--json``: ±inf and NaN as ``{"$numberDouble": …}``,
    as ``ato runs --json`` writes them."""
    return json.dumps(_strict(status), indent=2, ensure_ascii=False, allow_nan=False,
                      default=str)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _values(values) -> str | None:
    """Searched values as ``lr=0.001 width=64`` (``None``: none stored)."""
    if not values:
        return None
    return " ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _table(headers: list[str], rows: list[list]) -> list[str]:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return out


#: How many failed trials ``ato search status`` lists without ``--all``.
FAILED_SHOWN = 20


def render(status: dict, show_all: bool = False) -> str:
    """The human-readable form of :func:`summarize`'s dict: the first
    :data:`FAILED_SHOWN` failed trials (each error's last line) and a summary of the rest,
    unless ``show_all``."""
    from ato.hyperopt.workers import one_line

    c = status["counts"]
    meta = status["meta"]
    described = ", ".join(f"{k} {meta[k]}" for k in ("algorithm", "metric") if k in meta)
    lines = [f"study {status['study']}  ({status['url']})" + (f"  {described}" if described else ""),
             f"trials: {c['completed']} done, {c['running']} running, {c['queued']} queued, "
             f"{c['failed']} failed ({c['total']} in all)"]
    stopped = meta.get("stopped")
    if isinstance(stopped, dict):
        lines.append(f"stopped by fail_fast={stopped.get('fail_fast')} (worker "
                     f"{stopped.get('worker')}): {stopped.get('failed')} trials failed with "
                     f"the same error, none completed; `ato search requeue "
                     f"{status['study']} --failed"
                     + (f" {db_option(status['url'])}" if status.get("url") else "")
                     + "` runs them again after a fix")
    best = status["best"]
    mode = status["mode"]
    if best is None:
        lines.append("best so far: - (no completed trial with a metric)")
    else:
        how = mode or "max (the study records no mode)"
        where = "".join(f"  {k} {best[k]}" for k in ("budget", "rung", "bracket")
                        if best.get(k) is not None) if best.get("budget") is not None else ""
        at = ", at the largest budget reached" if best.get("budget") is not None else ""
        lines.append(f"best so far ({how}{at}): "
                     f"{_fmt(best['metric'])}{where}  key {best['key']}"
                     + (f"  worker {best['worker']}" if best["worker"] else ""))
        if best.get("values"):
            lines.append(f"  values: {_values(best['values'])}")
        if best.get("trial_id") is not None:
            lines.append(f"  __trial__: {best['trial_id']}")
        if best.get("checkpoint_dir") is not None:
            lines.append(f"  checkpoint dir: {best['checkpoint_dir']}")
    if status["running"]:
        lines.append("running:")
        lines += _table(["key", "worker", "host", "since (UTC)", "attempt", "budget", "rung",
                         "__trial__", "values"],
                        [[r["key"], r["worker"], r["host"], r["since"], r["attempt"],
                          r.get("budget"), r.get("rung"), r.get("trial_id"),
                          _values(r.get("values"))]
                         for r in status["running"]])
        roots = {os.path.dirname(str(r["checkpoint_dir"])) for r in status["running"]
                 if r.get("checkpoint_dir") is not None}
        for root in sorted(roots):
            lines.append(f"  checkpoint dirs: {root}/<__trial__> (a running attempt writes in "
                         f"{root}/.attempts/<__trial__>-*, its state once it returns)")
    if status["failed"]:
        failed = status["failed"]
        shown = failed if show_all else failed[:FAILED_SHOWN]
        lines.append("failed:")
        lines += _table(["key", "attempts", "values", "error"],
                        [[f["key"], f["attempts"], _values(f.get("values")),
                          one_line(f["error"])] for f in shown])
        if len(shown) < len(failed):
            from collections import Counter

            common = Counter(one_line(f["error"]) for f in failed).most_common(3)
            lines.append(f"  ... {len(failed) - len(shown)} more failed trials (--all shows "
                         f"every one, --json the whole errors); the most common errors: "
                         + "; ".join(f"{e} (x{n})" for e, n in common))
    if status["rungs"]:
        lines.append("rungs:")
        lines += _table(["bracket", "rung", "done", "running", "queued", "failed", "total"],
                        [[r["bracket"], r["rung"], r["completed"], r["running"], r["queued"],
                          r["failed"], r["total"]] for r in status["rungs"]])
    if status["workers"]:
        lines.append("workers:")
        lines += _table(["worker", "host", "pid", "alive", "last heartbeat (UTC)"],
                        [[w["worker"], w["host"], w["pid"],
                          "left" if w.get("left") else "yes" if w["alive"] else "no",
                          w["heartbeat_at"]] for w in status["workers"]])
    return "\n".join(lines)


def cmd_status(args) -> int:
    from ato.tracking import open_coordinator

    url = resolve_db(args.db)
    check_study_id(args.study_id, "status", url)
    coordinator = open_coordinator(url, readonly=True)
    try:
        status = summarize(coordinator, args.study_id, stale_after=args.stale_after)
    finally:
        coordinator.close()
    if args.json:
        print(json_text(status))
    else:
        print(render(status, show_all=args.all))
    return 0


def cmd_list(args) -> int:
    from ato.tracking import open_coordinator

    url = resolve_db(args.db)
    coordinator = open_coordinator(url, readonly=True)
    try:
        names = getattr(coordinator, "study_names", None)
        if not callable(names):
            raise StudyNotFoundError(f"the tracker at {display_url(url)} cannot list its "
                                     f"studies; ask for one: ato search status STUDY_ID "
                                     f"{db_option(url)}")
        rows = []
        for name in names():
            record = coordinator.get_study(name) or {}
            meta = record.get("meta") or {}
            counts = Counter(s.state for s in coordinator.trials(name))
            created = record.get("created_at")
            rows.append([name, meta.get("algorithm"), counts.get("completed", 0),
                         counts.get("running", 0), counts.get("queued", 0),
                         counts.get("failed", 0),
                         None if created is None else created.isoformat(sep=" ", timespec="seconds")])
    finally:
        coordinator.close()
    if args.json:
        keys = ["study", "algorithm", "completed", "running", "queued", "failed", "created_at"]
        print(json_text([dict(zip(keys, row)) for row in rows]))
    elif not rows:
        print(f"no study in {display_url(url)} (a search without an explicit study_id "
              f"shares no study: its trials are runs tagged study:<id>; see them with: ato "
              f"runs list {db_option(url)} --tags study:<id>)")
    else:
        print("\n".join(_table(["study", "algorithm", "done", "running", "queued", "failed",
                                "created (UTC)"], rows)))
    return 0


def cmd_requeue(args) -> int:
    from ato.tracking import open_coordinator

    url = resolve_db(args.db)
    check_study_id(args.study_id, "requeue", url)
    if not args.failed:
        raise SearchArgumentError("requeue: say which trials: --failed (the only kind that "
                                  "can be run again)")
    # the study must be there before anything opens the store for writing: a writable
    # coordinator creates a missing database (a mistyped --db would leave an empty file)
    coordinator = open_coordinator(url, readonly=True)
    try:
        record = coordinator.get_study(args.study_id)
        if record is None:
            raise StudyNotFoundError(f"no study {args.study_id!r} in {display_url(url)}"
                                     + _known(coordinator, args.study_id))
    finally:
        coordinator.close()
    forget = _proposes_from_history((record.get("meta") or {}).get("algorithm"))
    coordinator = open_coordinator(url)
    try:
        requeue = getattr(coordinator, "requeue_failed", None)
        if not callable(requeue):
            raise StudyNotFoundError(f"the tracker at {display_url(url)} cannot requeue "
                                     f"trials; start a new study_id instead")
        count = requeue(args.study_id, forget=True) if forget else requeue(args.study_id)
    finally:
        coordinator.close()
    if not count:
        print(f"study {args.study_id!r} has no failed trial; nothing requeued")
        return 0
    trials = f"{count} failed trial{'s' if count != 1 else ''}"
    if forget:
        print(f"forgot {trials} of study {args.study_id!r}: its algorithm proposes "
              f"{'them' if count != 1 else 'it'} again, between its promotions, when the "
              f"workers start again (same study_id)")
    else:
        print(f"requeued {trials} of study {args.study_id!r}; start the workers again "
              f"(same study_id) to run {'them' if count != 1 else 'it'}")
    return 0


def _proposes_from_history(algorithm) -> bool:
    """Whether the study's algorithm proposes its trials from the study's history (its
    class's ``PROPOSES_FROM_HISTORY``, e.g. ASHA): its failed trials are then forgotten
    rather than requeued."""
    if not algorithm:
        return False
    try:
        from ato.hyperopt import get_algorithm

        return bool(getattr(get_algorithm(str(algorithm)), "PROPOSES_FROM_HISTORY", False))
    except Exception:  # an algorithm not installed here: requeue its trials as they are
        return False


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


class SearchCommand:
    PLUGIN_NAME = "search"
    help = "inspect searches shared by many workers through the tracker database"

    @staticmethod
    def add_arguments(parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        p = sub.add_parser("status", help="trials done / running / queued / failed, best so "
                                          "far, rungs filled, workers")
        p.add_argument("study_id", help="the study_id the workers share")
        p.add_argument("--db", default=None,
                       help=f"tracker URL (default: $ATO_DB or {DEFAULT_DB})")
        p.add_argument("--stale-after", type=_seconds, default=None, metavar="SECONDS",
                       help="a worker silent this long is shown as not alive (default: the "
                            "study's own stale_after, else 60)")
        p.add_argument("--json", action="store_true", help="strict JSON instead of tables")
        p.add_argument("--all", action="store_true",
                       help=f"list every failed trial (without it: the first {FAILED_SHOWN} "
                            f"and a summary)")
        p.set_defaults(_run=cmd_status)
        p = sub.add_parser("list", help="every study in the tracker store, with its counts")
        p.add_argument("--db", default=None,
                       help=f"tracker URL (default: $ATO_DB or {DEFAULT_DB})")
        p.add_argument("--json", action="store_true", help="strict JSON instead of a table")
        p.set_defaults(_run=cmd_list)
        p = sub.add_parser("requeue", help="put a study's failed trials back in its queue, so "
                                           "the next workers run them again")
        p.add_argument("study_id", help="the study_id the workers share")
        p.add_argument("--failed", action="store_true",
                       help="requeue every failed trial (required)")
        p.add_argument("--db", default=None,
                       help=f"tracker URL (default: $ATO_DB or {DEFAULT_DB})")
        p.set_defaults(_run=cmd_requeue)

    @staticmethod
    def run(args) -> int:
        return args._run(args)


__all__ = ["SearchArgumentError", "SearchCommand", "StudyNotFoundError", "check_study_id",
           "resolve_db", "json_text", "render", "summarize"]
