"""Metric block summaries (schema step 6): what lets a long series be reduced for a chart
without reading every row.

For every run, key and block size ``S`` in :data:`SIZES`, the table ``metric_blocks``
holds one row per block of steps ``[b * S, b * S + S - 1]`` (``b = step // S``, floor
division, so negative steps have blocks too) that holds at least one point:

- its minimum and its maximum among the values that are numbers (NaN never is one;
  ``NULL`` while every value of the block is NaN), each with its step, row id and
  timestamp; ties go to the smallest ``(step, id)``, as :func:`ato.tracking.reduce_points`
  resolves them (``id`` is the logging order);
- its last point: the greatest ``(step, id)``, with its value and timestamp.

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

import json
import math

from sqlalchemy import BigInteger, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ato.db_routers.sql import values
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
    lo_time: Mapped[object | None] = mapped_column(DateTime)
    hi_value: Mapped[float | None] = mapped_column(Float)
    hi_step: Mapped[int | None] = mapped_column(BigInteger)
    hi_id: Mapped[int | None] = mapped_column(BigInteger)
    hi_time: Mapped[object | None] = mapped_column(DateTime)
    last_value: Mapped[float] = mapped_column(Float, nullable=False)
    last_step: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_time: Mapped[object | None] = mapped_column(DateTime)


class MetricBlockCount(Base):
    """How many ``metrics`` rows of ``(run_id, key)`` the blocks summarise."""

    __tablename__ = "metric_block_counts"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)


_COLUMNS = ("run_id", "key", "size", "block", "lo_value", "lo_step", "lo_id", "lo_time",
            "hi_value", "hi_step", "hi_id", "hi_time", "last_value", "last_step", "last_id",
            "last_time")


# --------------------------------------------------------------------------- aggregation
def aggregate(rows) -> tuple[dict, dict]:
    """Blocks of ``rows`` (``(id, run_id, key, value, step, time)``, value a float that may
    be NaN, any order): ``({(run_id, key, size, block): entry}, {(run_id, key): count})``.

    An entry is a list ``[lo_value, lo_step, lo_id, lo_time, hi_value, hi_step, hi_id,
    hi_time, last_value, last_step, last_id, last_time]`` (the lo/hi items ``None`` when
    every value is NaN).  The smallest size is built from the rows, each larger one from
    the size below it."""
    size0 = SIZES[0]
    level: dict = {}
    counts: dict = {}
    for id_, run_id, key, value, step, t in rows:
        pair = (run_id, key)
        counts[pair] = counts.get(pair, 0) + 1
        k = (run_id, key, size0, step // size0)
        e = level.get(k)
        number = value == value
        if e is None:
            level[k] = ([value, step, id_, t, value, step, id_, t] if number
                        else [None] * 8) + [value, step, id_, t]
            continue
        if number:
            if e[0] is None or (value, step, id_) < (e[0], e[1], e[2]):
                e[0:4] = value, step, id_, t
            if e[4] is None or (-value, step, id_) < (-e[4], e[5], e[6]):
                e[4:8] = value, step, id_, t
        if (step, id_) > (e[9], e[10]):
            e[8:12] = value, step, id_, t
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
            into[0:4] = e[0:4]
        if into[4] is None or (-e[4], e[5], e[6]) < (-into[4], into[5], into[6]):
            into[4:8] = e[4:8]
    if (e[9], e[10]) > (into[9], into[10]):
        into[8:12] = e[8:12]


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
                 for c in ("value", "step", "id", "time")]
    later = (f"({x}.last_step > {t}.last_step OR ({x}.last_step = {t}.last_step "
             f"AND {x}.last_id > {t}.last_id))")
    sets += [f"last_{c} = CASE WHEN {later} THEN {x}.last_{c} ELSE {t}.last_{c} END"
             for c in ("value", "step", "id", "time")]
    return (f"INSERT INTO metric_blocks ({', '.join(_COLUMNS)}) {placeholders} "
            f"ON CONFLICT (run_id, key, size, block) DO UPDATE SET {', '.join(sets)}")


_PG_TYPES = ("integer", "varchar", "integer", "bigint", "double precision", "bigint",
             "bigint", "timestamp", "double precision", "bigint", "bigint", "timestamp",
             "double precision", "bigint", "bigint", "timestamp")
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
    nan = values.SQLITE_NAN if sqlite else math.nan
    params = []
    for k in sorted(blocks):
        e = blocks[k]
        last = e[8]
        params.append((*k, *e[:8], last if last == last else nan, *e[9:]))
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
                "SELECT id, run_id, key, value, step, timestamp FROM metrics "
                "WHERE run_id = :r AND key = :k"), {"r": run_id, "k": key}).all()
            write_blocks(cur, sqlite, [(i, r, k, float(v), s, t) for i, r, k, v, s, t in rows])
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
_BLOCK_READ = ", ".join(f"b.{c}" for c in _COLUMNS)


def cover(a: int, b: int, block_ranges: list, raw_ranges: list) -> None:
    """Append to ``block_ranges`` ``(size, first block, last block)`` and to ``raw_ranges``
    ``(first step, last step)`` that together cover the steps ``[a, b]`` exactly: the
    largest aligned blocks that fit (the middle run of the largest size as one range,
    whatever its length), smaller ones towards the edges, raw steps where no block fits."""
    if a > b:
        return
    top = SIZES[-1]
    lo_top = -((-a) // top)  # first top block starting at or after a
    hi_top = (b + 1) // top - 1  # last top block ending at or before b
    if lo_top <= hi_top:
        _cover_small(a, lo_top * top - 1, block_ranges, raw_ranges)
        block_ranges.append((top, lo_top, hi_top))
        _cover_small((hi_top + 1) * top, b, block_ranges, raw_ranges)
    else:
        _cover_small(a, b, block_ranges, raw_ranges)


def _cover_small(a: int, b: int, block_ranges: list, raw_ranges: list) -> None:
    """:func:`cover` below the largest size (a range shorter than two top blocks)."""
    p = a
    while p <= b:
        for size in reversed(SIZES[:-1]):
            if p % size == 0 and p + size - 1 <= b:
                n = 1
                bigger = size * (SIZES[SIZES.index(size) + 1] // size)
                while (p + (n + 1) * size - 1 <= b and (p + n * size) % bigger != 0):
                    n += 1
                block_ranges.append((size, p // size, p // size + n - 1))
                p += n * size
                break
        else:
            size0 = SIZES[0]
            q = min(b, p + (-p) % size0 - 1) if p % size0 else b
            raw_ranges.append((p, q))
            p = q + 1


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


def reduce_with_blocks(conn, dialect: str, run_id: int, key: str, first, last, buckets: int
                       ) -> list:
    """The rows ``(run_id, key, value, step, timestamp)`` that ``reduce_points`` keeps,
    read with the SQLAlchemy connection ``conn`` inside the caller's snapshot.

    ``first`` and ``last`` are ``(id, step)`` of the series' (or window's) first and last
    point by ``(step, id)``; ``buckets`` is ``B``.  Bucket ``i`` covers the steps
    ``[f0 + ceil(i * span / B), f0 + ceil((i + 1) * span / B) - 1]``; the steps of the
    first and the last point are read raw (those two points belong to no bucket)."""
    from sqlalchemy import text

    (first_id, f0), (last_id, f1) = first, last
    span = f1 - f0 + 1
    block_ranges: list = []
    raw_ranges: list = [(f0, f0), (f1, f1)]
    for i in range(buckets):
        s0 = f0 + -((-i * span) // buckets)
        s1 = f0 + -((-(i + 1) * span) // buckets) - 1
        cover(max(s0, f0 + 1), min(s1, f1 - 1), block_ranges, raw_ranges)
    raws = _merged(raw_ranges)
    blocks = _merged_blocks(block_ranges)
    if dialect == "sqlite":
        raw_sql = ("SELECT m.id, m.value, m.step, m.timestamp FROM json_each(:q) j CROSS JOIN "
                   "metrics m WHERE m.run_id = :r AND m.key = :k AND m.step BETWEEN "
                   "json_extract(j.value, '$[0]') AND json_extract(j.value, '$[1]')")
        block_sql = (f"SELECT {_BLOCK_READ} FROM json_each(:q) j CROSS JOIN metric_blocks b "
                     "WHERE b.run_id = :r AND b.key = :k "
                     "AND b.size = json_extract(j.value, '$[0]') AND b.block BETWEEN "
                     "json_extract(j.value, '$[1]') AND json_extract(j.value, '$[2]')")
        raw_params = {"q": json.dumps(raws)}
        block_params = {"q": json.dumps(blocks)}
    else:
        raw_sql = ("SELECT m.id, m.value, m.step, m.timestamp FROM "
                   "unnest(CAST(:lo AS BIGINT[]), CAST(:hi AS BIGINT[])) AS j(lo, hi) "
                   "JOIN metrics m ON m.run_id = :r AND m.key = :k "
                   "AND m.step BETWEEN j.lo AND j.hi")
        block_sql = (f"SELECT {_BLOCK_READ} FROM unnest(CAST(:sz AS INTEGER[]), CAST(:lo AS BIGINT[]), "
                     "CAST(:hi AS BIGINT[])) AS j(sz, lo, hi) JOIN metric_blocks b "
                     "ON b.run_id = :r AND b.key = :k AND b.size = j.sz "
                     "AND b.block BETWEEN j.lo AND j.hi")
        raw_params = {"lo": [r[0] for r in raws], "hi": [r[1] for r in raws]}
        block_params = {"sz": [b[0] for b in blocks], "lo": [b[1] for b in blocks],
                        "hi": [b[2] for b in blocks]}
    # chosen[bucket] = [lo (value, step, id, time), hi (...), last (step, id, value, time)]
    chosen: dict = {}
    ends: dict = {}

    def offer(bucket, lo, hi, lst):
        c = chosen.get(bucket)
        if c is None:
            chosen[bucket] = [lo, hi, lst]
            return
        if lo is not None:
            if c[0] is None or lo[:3] < c[0][:3]:
                c[0] = lo
            if c[1] is None or (-hi[0], hi[1], hi[2]) < (-c[1][0], c[1][1], c[1][2]):
                c[1] = hi
        if lst[:2] > c[2][:2]:
            c[2] = lst

    for id_, value, step, t in conn.execute(text(raw_sql), {"r": run_id, "k": key,
                                                            **raw_params}):
        if id_ == first_id or id_ == last_id:
            ends[id_] = (value, step, t)
            continue
        v = float(value)
        bucket = (step - f0) * buckets // span
        point = (v, step, id_, value, t)
        if v == v:
            offer(bucket, point, point, (step, id_, value, t))
        else:
            offer(bucket, None, None, (step, id_, value, t))
    if blocks:
        for row in conn.execute(text(block_sql), {"r": run_id, "k": key, **block_params}):
            (_, _, size, block, lo_v, lo_s, lo_i, lo_t, hi_v, hi_s, hi_i, hi_t,
             last_v, last_s, last_i, last_t) = row
            bucket = (block * size - f0) * buckets // span
            if lo_v is None:
                offer(bucket, None, None, (last_s, last_i, last_v, last_t))
            else:
                offer(bucket, (float(lo_v), lo_s, lo_i, lo_v, lo_t),
                      (float(hi_v), hi_s, hi_i, hi_v, hi_t), (last_s, last_i, last_v, last_t))
    keep: dict = {}
    for id_, (value, step, t) in ends.items():
        keep[id_] = (step, id_, value, t)
    for lo, hi, (step, id_, value, t) in chosen.values():
        keep[id_] = (step, id_, value, t)
        for p in (lo, hi):
            if p is not None:
                keep[p[2]] = (p[1], p[2], p[3], p[4])
    return [(run_id, key, value, step, t) for step, _, value, t in sorted(keep.values())]
