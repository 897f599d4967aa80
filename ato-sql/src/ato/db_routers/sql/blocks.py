"""Metric block summaries (schema step 6): what lets a long series be reduced for a chart
without reading every row.

For every run, key and block size ``S`` in :data:`SIZES`, the table ``metric_blocks``
holds one row per block of steps ``[b * S, b * S + S - 1]`` (``b = step // S``, floor
division, so negative steps have blocks too) that holds at least one point:

- its minimum and its maximum among the values that are numbers (NaN never is one;
  ``NULL`` while every value of the block is NaN), each with its step and row id; ties
  go to the smallest ``(step, id)``, as :func:`ato.tracking.reduce_points` resolves them
  (``id`` is the logging order);
- its last point: the greatest ``(step, id)``.

``metric_block_counts`` holds, per run and key, how many rows of ``metrics`` the blocks
summarise.  The logger's flush writes the rows, the blocks and that count in one
transaction (:func:`write_blocks`), merging into existing blocks, so several processes
logging the same run (ranks) stay exact.  A reader trusts the blocks of ``(run, key)``
only while that count equals ``metric_summaries.count`` (kept by the database's
triggers for every writer): rows written by anything else than this logger, and any
update or delete of ``metrics`` (the step-6 triggers drop the blocks of the pairs
touched), make the reader fall back to the raw rows — never to a wrong answer.

:func:`reduce_with_blocks` answers ``reduce_points`` from O(log span) block rows per
bucket plus raw rows at the bucket edges.
"""

from __future__ import annotations

import functools
import json
import re

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ato.db_routers.sql.schema import Base

#: Block sizes in steps, each a multiple of the one before (see docs/performance.md,
#: "The chart read alone", for the measurement behind them).
SIZES = (4, 16, 64, 256, 1024)


class MetricBlock(Base):
    """One block of ``size`` steps of one run's metric ``key`` (see the module)."""

    __tablename__ = "metric_blocks"
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    lo_value: Mapped[float | None] = mapped_column(Float)
    lo_step: Mapped[int | None] = mapped_column(BigInteger)
    lo_id: Mapped[int | None] = mapped_column(BigInteger)
    hi_value: Mapped[float | None] = mapped_column(Float)
    hi_step: Mapped[int | None] = mapped_column(BigInteger)
    hi_id: Mapped[int | None] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False)


class MetricBlockCount(Base):
    """How many ``metrics`` rows of ``(run_id, key)`` the blocks summarise."""

    __tablename__ = "metric_block_counts"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)


_COLUMNS = ("run_id", "key", "size", "block", "lo_value", "lo_step", "lo_id",
            "hi_value", "hi_step", "hi_id", "last_step", "last_id")


# --------------------------------------------------------------------------- aggregation
def aggregate(rows) -> tuple[dict, dict]:
    """Blocks of ``rows`` (``(id, run_id, key, value, step)``, value a float that may be
    NaN, any order): ``({(run_id, key, size, block): entry}, {(run_id, key): count})``.

    An entry is a list ``[lo_value, lo_step, lo_id, hi_value, hi_step, hi_id, last_step,
    last_id]`` (the lo/hi items ``None`` when every value is NaN).  The smallest size is
    built from the rows, each larger one from the size below it."""
    size0 = SIZES[0]
    level: dict = {}
    counts: dict = {}
    for id_, run_id, key, value, step in rows:
        pair = (run_id, key)
        counts[pair] = counts.get(pair, 0) + 1
        k = (run_id, key, size0, step // size0)
        e = level.get(k)
        number = value == value
        if e is None:
            level[k] = ([value, step, id_, value, step, id_] if number
                        else [None] * 6) + [step, id_]
            continue
        if number:
            if e[0] is None or (value, step, id_) < (e[0], e[1], e[2]):
                e[0:3] = value, step, id_
            if e[3] is None or (-value, step, id_) < (-e[3], e[4], e[5]):
                e[3:6] = value, step, id_
        if (step, id_) > (e[6], e[7]):
            e[6:8] = step, id_
    out = dict(level)
    for size, below in zip(SIZES[1:], SIZES):
        ratio = size // below
        up: dict = {}
        for (run_id, key, _, block), e in level.items():
            k = (run_id, key, size, block // ratio)
            u = up.get(k)
            if u is None:
                up[k] = list(e)
            else:
                merge(u, e)
        out.update(up)
        level = up
    return out, counts


def merge(into: list, e: list) -> None:
    """Fold entry ``e`` into entry ``into`` (both in :func:`aggregate`'s form)."""
    if e[0] is not None:
        if into[0] is None or (e[0], e[1], e[2]) < (into[0], into[1], into[2]):
            into[0:3] = e[0:3]
        if into[3] is None or (-e[3], e[4], e[5]) < (-into[3], into[4], into[5]):
            into[3:6] = e[3:6]
    if (e[6], e[7]) > (into[6], into[7]):
        into[6:8] = e[6:8]


# --------------------------------------------------------------------------- writing
def _earlier(kind: str, new: str, old: str, sign: str) -> str:
    """SQL: the ``kind`` (lo/hi) candidate of ``new`` beats that of ``old``."""
    v, s, i = (f"{kind}_value", f"{kind}_step", f"{kind}_id")
    return (f"({new}.{v} IS NOT NULL AND ({old}.{v} IS NULL OR {new}.{v} {sign} {old}.{v} "
            f"OR ({new}.{v} = {old}.{v} AND ({new}.{s} < {old}.{s} "
            f"OR ({new}.{s} = {old}.{s} AND {new}.{i} < {old}.{i})))))")


def _upsert_sql(placeholders: str) -> str:
    t, x = "metric_blocks", "excluded"
    sets = []
    for kind, sign in (("lo", "<"), ("hi", ">")):
        cond = _earlier(kind, x, t, sign)
        sets += [f"{kind}_{c} = CASE WHEN {cond} THEN {x}.{kind}_{c} ELSE {t}.{kind}_{c} END"
                 for c in ("value", "step", "id")]
    later = (f"({x}.last_step > {t}.last_step OR ({x}.last_step = {t}.last_step "
             f"AND {x}.last_id > {t}.last_id))")
    sets += [f"last_{c} = CASE WHEN {later} THEN {x}.last_{c} ELSE {t}.last_{c} END"
             for c in ("step", "id")]
    return (f"INSERT INTO metric_blocks ({', '.join(_COLUMNS)}) {placeholders} "
            f"ON CONFLICT (run_id, key, size, block) DO UPDATE SET {', '.join(sets)}")


_PG_TYPES = ("integer", "varchar", "integer", "bigint", "double precision", "bigint",
             "bigint", "double precision", "bigint", "bigint", "bigint", "bigint")
_UPSERT_SQLITE = _upsert_sql(f"VALUES ({', '.join('?' * len(_COLUMNS))})")
_UPSERT_PG = _upsert_sql("SELECT * FROM unnest(" + ", ".join(
    f"%s::{t}[]" for t in _PG_TYPES) + ")")
_COUNT_SQL = ("INSERT INTO metric_block_counts (run_id, key, rows) VALUES ({p}, {p}, {p}) "
              "ON CONFLICT (run_id, key) DO UPDATE SET "
              "rows = metric_block_counts.rows + excluded.rows")


def write_blocks(cur, sqlite: bool, rows) -> None:
    """Merge the blocks of ``rows`` (see :func:`aggregate`; ids as stored) into
    ``metric_blocks`` and add their counts to ``metric_block_counts``, with the DB-API
    cursor ``cur`` inside the caller's write transaction.  Rows are written in key order,
    so concurrent writers of one run lock block rows in the same order (no deadlock)."""
    blocks, counts = aggregate(rows)
    if not blocks:
        return
    params = [(*k, *blocks[k]) for k in sorted(blocks)]
    pairs = sorted(counts.items())
    if sqlite:
        cur.executemany(_UPSERT_SQLITE, params)
        cur.executemany(_COUNT_SQL.format(p="?"), [(*pair, n) for pair, n in pairs])
    else:
        cur.execute(_UPSERT_PG, [list(c) for c in zip(*params)])
        cur.executemany(_COUNT_SQL.format(p="%s"), [(*pair, n) for pair, n in pairs])


def backfill(conn) -> None:
    """Build the blocks of every ``(run_id, key)`` already in ``metrics`` (migration step
    6, inside its transaction; ``conn`` a SQLAlchemy connection), one pair at a time."""
    from sqlalchemy import text

    sqlite = conn.dialect.name == "sqlite"
    cur = conn.connection.cursor()
    try:
        pairs = conn.execute(text("SELECT DISTINCT run_id, key FROM metrics")).all()
        for run_id, key in pairs:
            rows = conn.execute(text(
                "SELECT id, run_id, key, value, step FROM metrics "
                "WHERE run_id = :r AND key = :k"), {"r": run_id, "k": key}).all()
            write_blocks(cur, sqlite, [(i, r, k, float(v), s) for i, r, k, v, s in rows])
    finally:
        cur.close()


def _sqlite_drop(ref: str) -> str:
    return (f"DELETE FROM metric_blocks WHERE run_id = {ref}.run_id AND key = {ref}.key; "
            f"DELETE FROM metric_block_counts WHERE run_id = {ref}.run_id AND key = {ref}.key;")


#: Any update or delete of ``metrics`` drops the blocks of the (run, key) pairs it touches:
#: their reader then uses the raw rows.
TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS ato_metric_blocks_delete",
        "DROP TRIGGER IF EXISTS ato_metric_blocks_update",
        f"CREATE TRIGGER ato_metric_blocks_delete AFTER DELETE ON metrics BEGIN "
        f"{_sqlite_drop('OLD')} END",
        f"CREATE TRIGGER ato_metric_blocks_update AFTER UPDATE OF run_id, key, value, step, "
        f"timestamp ON metrics BEGIN {_sqlite_drop('OLD')} {_sqlite_drop('NEW')} END",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS ato_metric_blocks_delete ON metrics",
        "DROP TRIGGER IF EXISTS ato_metric_blocks_update ON metrics",
        """CREATE OR REPLACE FUNCTION ato_metric_blocks_dropped() RETURNS trigger
        LANGUAGE plpgsql AS $ato$ BEGIN
            DELETE FROM metric_blocks b USING (SELECT DISTINCT run_id, key FROM ato_old) t
                WHERE b.run_id = t.run_id AND b.key = t.key;
            DELETE FROM metric_block_counts b USING (SELECT DISTINCT run_id, key FROM ato_old) t
                WHERE b.run_id = t.run_id AND b.key = t.key;
            RETURN NULL;
        END $ato$""",
        """CREATE OR REPLACE FUNCTION ato_metric_blocks_updated() RETURNS trigger
        LANGUAGE plpgsql AS $ato$ BEGIN
            DELETE FROM metric_blocks b USING (SELECT run_id, key FROM ato_old UNION
                                               SELECT run_id, key FROM ato_new) t
                WHERE b.run_id = t.run_id AND b.key = t.key;
            DELETE FROM metric_block_counts b USING (SELECT run_id, key FROM ato_old UNION
                                                     SELECT run_id, key FROM ato_new) t
                WHERE b.run_id = t.run_id AND b.key = t.key;
            RETURN NULL;
        END $ato$""",
        """CREATE TRIGGER ato_metric_blocks_delete AFTER DELETE ON metrics
            REFERENCING OLD TABLE AS ato_old FOR EACH STATEMENT
            EXECUTE FUNCTION ato_metric_blocks_dropped()""",
        """CREATE TRIGGER ato_metric_blocks_update AFTER UPDATE ON metrics
            REFERENCING OLD TABLE AS ato_old NEW TABLE AS ato_new FOR EACH STATEMENT
            EXECUTE FUNCTION ato_metric_blocks_updated()""",
    ],
}


# --------------------------------------------------------------------------- reading
def cover(a: int, b: int, block_ranges: list, raw_ranges: list) -> None:
    """Append to ``block_ranges`` ``(size, first block, last block)`` and to ``raw_ranges``
    ``(first step, last step)`` that together cover the steps ``[a, b]`` exactly, each
    step once: the aligned blocks of the largest size that fit, then towards each edge the
    blocks of the next smaller size, and raw steps where no block fits — at most two
    ranges per size, whatever the span (a middle run of largest blocks is one range)."""
    todo = [(a, b, len(SIZES) - 1)]
    while todo:
        a, b, level = todo.pop()
        while level >= 0:
            size = SIZES[level]
            lo = -((-a) // size)  # first block starting at or after a
            hi = (b + 1) // size - 1  # last block ending at or before b
            if lo <= hi:
                block_ranges.append((size, lo, hi))
                if (hi + 1) * size <= b:
                    todo.append(((hi + 1) * size, b, level - 1))
                b = lo * size - 1
            level -= 1
            if a > b:
                break
        else:
            raw_ranges.append((a, b))


def _merged(ranges: list) -> list:
    """Sorted, overlapping or adjacent ``(lo, hi)`` ranges joined."""
    out: list = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return out


def _merged_blocks(ranges: list) -> list:
    by_size: dict = {}
    for size, lo, hi in ranges:
        by_size.setdefault(size, []).append((lo, hi))
    return [(size, lo, hi) for size, rs in sorted(by_size.items()) for lo, hi in _merged(rs)]


@functools.lru_cache(maxsize=256)
def plan(f0: int, f1: int, buckets: int) -> tuple[tuple, tuple]:
    """``(block ranges, raw step ranges)`` that cover every bucket of the series whose
    first and last points are at steps ``f0`` and ``f1`` (see :func:`reduce_with_blocks`),
    merged where adjacent.  Cached: the runs of one chart mostly share their first and
    last steps, so a chart of 100 runs plans once."""
    span = f1 - f0 + 1
    block_ranges: list = []
    raw_ranges: list = [(f0, f0), (f1, f1)]
    for i in range(buckets):
        s0 = f0 - ((-i * span) // buckets)
        s1 = f0 - ((-(i + 1) * span) // buckets) - 1
        cover(max(s0, f0 + 1), min(s1, f1 - 1), block_ranges, raw_ranges)
    return (tuple(map(tuple, _merged_blocks(block_ranges))),
            tuple(map(tuple, _merged(raw_ranges))))


def reduce_with_blocks(conn, dialect: str, run_id: int, key: str, first, last, buckets: int
                       ) -> list:
    """The rows ``(run_id, key, value, step, timestamp)`` that ``reduce_points`` keeps,
    in order, read with the SQLAlchemy connection ``conn`` inside the caller's snapshot.

    ``first`` and ``last`` are ``(id, step)`` of the series' (or window's) first and last
    point by ``(step, id)``; ``buckets`` is ``B`` (see :func:`chosen_ids`)."""
    ids = chosen_ids(conn, dialect, key, {run_id: (first, last)}, buckets)[run_id]
    return rows_by_id(conn, dialect, ids, "run_id, key, value, step, timestamp", "step, id")


def rows_by_id(conn, dialect: str, ids, columns: str, order: str) -> list:
    """``SELECT columns FROM metrics`` of the rows whose id is in ``ids``, ``ORDER BY
    order`` (both SQL text written by the caller, never user input), the ids one bound
    parameter (a JSON array on SQLite, an array on PostgreSQL)."""
    if dialect == "sqlite":
        pick, param = "IN (SELECT value FROM json_each(:ids))", json.dumps(sorted(ids))
    else:
        pick, param = "= ANY(CAST(:ids AS BIGINT[]))", sorted(ids)
    cur = conn.connection.cursor()
    try:
        cur.execute(*_driver(dialect, f"SELECT {columns} FROM metrics WHERE id {pick} "
                                      f"ORDER BY {order}", {"ids": param}))
        return cur.fetchall()
    finally:
        cur.close()


def chosen_ids(conn, dialect: str, key: str, ends: dict, buckets: int) -> dict:
    """``{run_id: set of metrics row ids}``: the points ``reduce_points`` keeps of each
    run's series of ``key``, read with the SQLAlchemy connection ``conn`` inside the
    caller's snapshot.

    ``ends`` maps each run to ``((first id, first step), (last id, last step))``, the
    series' (or window's) first and last point by ``(step, id)``; ``buckets`` is ``B``.
    Bucket ``i`` covers the steps ``[f0 + ceil(i * span / B), f0 + ceil((i + 1) * span /
    B) - 1]``; the steps of the first and the last point are read raw (those two points
    belong to no bucket).

    One statement per set of runs sharing their first and last steps (a chart's runs
    mostly do, and share :func:`plan`): the candidates — block rows of the plan's block
    ranges and raw rows of its step ranges, each tagged with its run and bucket, narrow
    rows of numbers — combined here: per bucket the smallest ``(value, step, id)``, the
    largest value with the smallest ``(step, id)``, the greatest ``(step, id)``."""
    groups: dict = {}
    for run_id, ((first_id, f0), (last_id, f1)) in ends.items():
        groups.setdefault((f0, f1), []).append((run_id, first_id, last_id))
    out: dict = {}
    cur = conn.connection.cursor()
    try:
        for (f0, f1), runs in groups.items():
            blocks, raws = plan(f0, f1, buckets)
            sql, params = _candidates_sql(dialect, blocks, raws, runs)
            params.update(k=key, f0=f0, nb=buckets, span=f1 - f0 + 1)
            cur.execute(*_driver(dialect, sql, params))
            chosen: dict = {}
            for g, lv, ls, li, hv, hs, hid, zs, zi in cur.fetchall():
                c = chosen.get(g)
                if c is None:
                    chosen[g] = [lv, ls, li, hv, hs, hid, zs, zi]
                    continue
                if lv is not None:
                    if c[0] is None or lv < c[0] or (lv == c[0] and (ls, li) < (c[1], c[2])):
                        c[0], c[1], c[2] = lv, ls, li
                    if c[3] is None or hv > c[3] or (hv == c[3] and (hs, hid) < (c[4], c[5])):
                        c[3], c[4], c[5] = hv, hs, hid
                if zs > c[6] or (zs == c[6] and zi > c[7]):
                    c[6], c[7] = zs, zi
            for run_id, first_id, last_id in runs:
                out[run_id] = {first_id, last_id}
            for g, c in chosen.items():
                ids = out[g // buckets]
                ids.add(c[7])
                if c[0] is not None:
                    ids.add(c[2])
                    ids.add(c[5])
        return out
    finally:
        cur.close()


def _candidates_sql(dialect: str, blocks, raws, runs) -> tuple[str, dict]:
    """The candidates statement of :func:`chosen_ids` for ``runs`` (``(run_id, first id,
    last id)``) sharing one plan: rows ``(run_id * B + bucket, lo value, lo step, lo id,
    hi value, hi step, hi id, last step, last id)``."""
    params: dict = {}
    if dialect == "sqlite":
        number = "typeof(m.value) IN ('integer', 'real')"
        # The ranges and runs are read once into ephemeral tables (MATERIALIZED), not
        # parsed again for every run.
        head = ("WITH pb AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS sz, "
                "json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi "
                "FROM json_each(:pb)), "
                "pr AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS lo, "
                "json_extract(value, '$[1]') AS hi FROM json_each(:pr)), "
                "r AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS run, "
                "json_extract(value, '$[1]') AS first, json_extract(value, '$[2]') AS last "
                "FROM json_each(:runs))")
        block_src, raw_src = "r CROSS JOIN pb p", "r CROSS JOIN pr p"
        params.update(pb=json.dumps(blocks), pr=json.dumps(raws),
                      runs=json.dumps([list(r) for r in runs]))
    else:
        number = "m.value <> CAST('NaN' AS double precision)"
        head = ""
        block_src = ("unnest(CAST(:rid AS BIGINT[]), CAST(:rfirst AS BIGINT[]), "
                     "CAST(:rlast AS BIGINT[])) AS r(run, first, last) CROSS JOIN "
                     "unnest(CAST(:bsz AS INTEGER[]), CAST(:blo AS BIGINT[]), "
                     "CAST(:bhi AS BIGINT[])) AS p(sz, lo, hi)")
        raw_src = ("unnest(CAST(:rid AS BIGINT[]), CAST(:rfirst AS BIGINT[]), "
                   "CAST(:rlast AS BIGINT[])) AS r(run, first, last) CROSS JOIN "
                   "unnest(CAST(:rlo AS BIGINT[]), CAST(:rhi AS BIGINT[])) AS p(lo, hi)")
        params.update(bsz=[b[0] for b in blocks], blo=[b[1] for b in blocks],
                      bhi=[b[2] for b in blocks], rlo=[r[0] for r in raws],
                      rhi=[r[1] for r in raws], rid=[r[0] for r in runs],
                      rfirst=[r[1] for r in runs], rlast=[r[2] for r in runs])
    block_where = "k.run_id = r.run AND k.key = :k AND k.size = p.sz AND k.block BETWEEN p.lo AND p.hi"
    raw_where = ("m.run_id = r.run AND m.key = :k AND m.step BETWEEN p.lo AND p.hi "
                 "AND m.id <> r.first AND m.id <> r.last")

    def join(table: str, where: str) -> str:
        if dialect == "sqlite":  # SQLite keeps the CROSS JOIN order: ranges outside
            return f"CROSS JOIN {table} WHERE {where}"
        # PostgreSQL would plan a merge join over the whole run's rows (seconds for a
        # 100k-step run); a LATERAL subquery that cannot be flattened (OFFSET 0) makes
        # it one index range scan per (run, range).
        return f"CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {where} OFFSET 0) {table[-1]}"

    # A raw row is its own min, max and last: it carries its value, step and id in the
    # places of a block's lo, hi and last (NULL values where it is NaN).
    sql = f"""{head}
        SELECT CAST(r.run AS BIGINT) * :nb + (CAST(k.block AS BIGINT) * k.size - :f0) * :nb / :span,
               k.lo_value, k.lo_step, k.lo_id, k.hi_value, k.hi_step, k.hi_id,
               k.last_step, k.last_id
        FROM {block_src} {join('metric_blocks k', block_where)}
        UNION ALL
        SELECT CAST(r.run AS BIGINT) * :nb + (CAST(m.step AS BIGINT) - :f0) * :nb / :span,
               CASE WHEN {number} THEN m.value END, m.step, m.id,
               CASE WHEN {number} THEN m.value END, m.step, m.id, m.step, m.id
        FROM {raw_src} {join('metrics m', raw_where)}"""
    return sql, params


def _driver(dialect: str, sql: str, params: dict) -> tuple[str, dict]:
    """``sql`` with ``:name`` parameters in the DB-API driver's own style (sqlite3 takes
    ``:name``; psycopg ``%(name)s``), for a cursor of the raw connection."""
    if dialect == "sqlite":
        return sql, params
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql), params
