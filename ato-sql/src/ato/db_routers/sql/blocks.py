"""Metric block summaries (schema steps 6 to 8): what lets a long series be reduced for
a chart without reading every row.

For every run, key and block size ``S`` in :data:`SIZES`, the table ``metric_blocks``
holds one row per block of steps ``[b * S, b * S + S - 1]`` (``b = step // S``, floor
division, so negative steps have blocks too) that holds at least one point:

- its minimum and its maximum among its finite values (``NULL`` while it has none), each
  with its step and row id; ties go to the smallest ``(step, id)``, as
  :func:`ato.tracking.reduce_points` resolves them (``id`` is the logging order);
- its last point: the greatest ``(step, id)``, with its value (``NULL`` for NaN);
- its first non-finite point (NaN, +inf or -inf): the smallest ``(step, id)`` among
  them, with its value (``NULL`` for NaN); ``nf_step`` is ``NULL`` while it has none.

``metric_block_counts`` holds, per run and key, how many rows of ``metrics`` the blocks
summarise.  The logger's flush writes the rows, the blocks and that count in one
transaction (:func:`write_blocks`), merging into existing blocks, so several processes
logging the same run (ranks) stay exact.  A reader trusts the blocks of ``(run, key)``
only while that count equals ``metric_summaries.count`` (kept by the database's
triggers for every writer): rows written by anything else than this logger, and any
update or delete of ``metrics`` (the step-6 triggers drop the blocks of the pairs
touched), make the reader fall back to the raw rows — never to a wrong answer.

The reduction rule's buckets are aligned runs of ``w`` steps, ``w`` a power of two
(:func:`ato.tracking.reduce.bucket_width`), and the sizes are every power of two from 4
to 1,024, so a bucket of ``4 <= w <= 1024`` steps is exactly one block (a wider one,
``w / 1024`` blocks): :func:`reduce_runs` answers a chart's reduction from those block
rows alone — for 100 runs of 10,000 steps 31,300 narrow rows instead of a million points.
A schema 7 database (opened by a reader that does not upgrade it) holds the powers of
four only (:data:`SIZES_7`), two blocks per bucket for half the widths.
"""

from __future__ import annotations

import json
import re

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ato.db_routers.sql.schema import Base

#: Block sizes in steps (schema 8), each twice the one before: one block per bucket (see
#: docs/performance.md, "The chart read alone", for the measurement behind them).
SIZES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: The sizes of schema 7 (and 6): the powers of four only.
SIZES_7 = (4, 16, 64, 256, 1024)


def sizes_of(version: int | None) -> tuple | None:
    """The block sizes a database of schema ``version`` holds; ``None`` before 7 (blocks
    of schema 6 hold no last value and no non-finite point: not read)."""
    if version is None or version < 7:
        return None
    return SIZES_7 if version == 7 else SIZES


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
    # schema step 7
    last_value: Mapped[float | None] = mapped_column(Float)  # NULL: NaN
    nf_step: Mapped[int | None] = mapped_column(BigInteger)
    nf_id: Mapped[int | None] = mapped_column(BigInteger)
    nf_value: Mapped[float | None] = mapped_column(Float)  # NULL: NaN


class MetricBlockCount(Base):
    """How many ``metrics`` rows of ``(run_id, key)`` the blocks summarise."""

    __tablename__ = "metric_block_counts"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)


_COLUMNS = ("run_id", "key", "size", "block", "lo_value", "lo_step", "lo_id",
            "hi_value", "hi_step", "hi_id", "last_step", "last_id", "last_value", "nf_step",
            "nf_id", "nf_value")

#: The columns schema step 7 adds to a schema 6 table, with their SQL types.
STEP7_COLUMNS = (("last_value", "DOUBLE PRECISION"), ("nf_step", "BIGINT"),
                 ("nf_id", "BIGINT"), ("nf_value", "DOUBLE PRECISION"))


# --------------------------------------------------------------------------- aggregation
def aggregate(rows) -> tuple[dict, dict]:
    """Blocks of ``rows`` (``(id, run_id, key, value, step)``, value a float that may be
    NaN or infinite, any order): ``({(run_id, key, size, block): entry}, {(run_id, key):
    count})``.

    An entry is a list ``[lo_value, lo_step, lo_id, hi_value, hi_step, hi_id, last_step,
    last_id, last_value, nf_step, nf_id, nf_value]`` (the lo/hi items ``None`` when no
    value is finite, the nf items ``None`` when every value is, a value ``None`` for
    NaN).  The smallest size is built from the rows, each larger one from the size
    below it."""
    size0 = SIZES[0]
    level: dict = {}
    counts: dict = {}
    for id_, run_id, key, value, step in rows:
        pair = (run_id, key)
        counts[pair] = counts.get(pair, 0) + 1
        k = (run_id, key, size0, step // size0)
        e = level.get(k)
        if e is None:
            level[k] = entry(id_, value, step)
            continue
        if value - value == 0:  # finite
            if e[0] is None or (value, step, id_) < (e[0], e[1], e[2]):
                e[0:3] = value, step, id_
            if e[3] is None or (-value, step, id_) < (-e[3], e[4], e[5]):
                e[3:6] = value, step, id_
        elif e[9] is None or (step, id_) < (e[9], e[10]):
            e[9:12] = step, id_, (value if value == value else None)
        if (step, id_) > (e[6], e[7]):
            e[6:9] = step, id_, (value if value == value else None)
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


def entry(id_: int, value: float, step: int) -> list:
    """The entry (see :func:`aggregate`) of a block holding one point."""
    if value - value == 0:  # finite
        return [value, step, id_, value, step, id_, step, id_, value, None, None, None]
    stored = value if value == value else None
    return [None] * 6 + [step, id_, stored, step, id_, stored]


def merge(into: list, e: list) -> None:
    """Fold entry ``e`` into entry ``into`` (both in :func:`aggregate`'s form)."""
    if e[0] is not None:
        if into[0] is None or (e[0], e[1], e[2]) < (into[0], into[1], into[2]):
            into[0:3] = e[0:3]
        if into[3] is None or (-e[3], e[4], e[5]) < (-into[3], into[4], into[5]):
            into[3:6] = e[3:6]
    if (e[6], e[7]) > (into[6], into[7]):
        into[6:9] = e[6:9]
    if e[9] is not None and (into[9] is None or (e[9], e[10]) < (into[9], into[10])):
        into[9:12] = e[9:12]


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
             for c in ("step", "id", "value")]
    sooner = (f"({x}.nf_step IS NOT NULL AND ({t}.nf_step IS NULL OR {x}.nf_step < {t}.nf_step "
              f"OR ({x}.nf_step = {t}.nf_step AND {x}.nf_id < {t}.nf_id)))")
    sets += [f"nf_{c} = CASE WHEN {sooner} THEN {x}.nf_{c} ELSE {t}.nf_{c} END"
             for c in ("step", "id", "value")]
    return (f"INSERT INTO metric_blocks ({', '.join(_COLUMNS)}) {placeholders} "
            f"ON CONFLICT (run_id, key, size, block) DO UPDATE SET {', '.join(sets)}")


_PG_TYPES = ("integer", "varchar", "integer", "bigint", "double precision", "bigint",
             "bigint", "double precision", "bigint", "bigint", "bigint", "bigint",
             "double precision", "bigint", "bigint", "double precision")
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
def block_size(width: int, sizes: tuple = SIZES) -> int | None:
    """The size of the blocks a bucket of ``width`` steps (a power of two) is made of: the
    largest of ``sizes`` (what the database holds, :func:`sizes_of`) not above it;
    ``None`` when ``width`` is below every size (the bucket is then read from the raw
    rows)."""
    fitting = [size for size in sizes if size <= width]
    return fitting[-1] if fitting else None


#: What a block row is read as: its run, its block number, then an entry (see
#: :func:`aggregate`).
_READ = ("run_id, block, lo_value, lo_step, lo_id, hi_value, hi_step, hi_id, last_step, "
         "last_id, last_value, nf_step, nf_id, nf_value")


def reduce_runs(conn, dialect: str, key: str, ends: dict, buckets: int,
                window: bool = False, sizes: tuple = SIZES) -> dict:
    """``{run_id: (steps, ids, values)}``: the points ``reduce_points`` keeps of each run's
    series of ``key`` (or of its points inside a step window) as three lists in ``(step,
    id)`` order, read with the SQLAlchemy connection ``conn`` inside the caller's
    snapshot.  Values are floats (NaN for NaN).

    ``ends`` maps each run to ``(first id, first step, first value, last step)`` of the
    series (or of the window's points); ``buckets`` is ``B``; ``sizes`` the block sizes
    the database holds (:func:`sizes_of`), among which every run's bucket width must have
    a :func:`block_size`.  Whole series (``window`` false) are read from their
    blocks alone, one statement per block size for every run; with a window, a run's
    first and last bucket may hold points outside it, so those two are read from the
    raw rows between the first and the last step, the buckets between them from blocks."""
    from ato.tracking.reduce import bucket_width

    acc: dict = {run_id: {} for run_id in ends}  # run_id -> {bucket: entry}
    widths = {run_id: bucket_width(f0, f1, buckets)
              for run_id, (_, f0, _, f1) in ends.items()}
    cur = conn.connection.cursor()
    try:
        if not window:
            by_size: dict = {}
            for run_id, width in widths.items():
                by_size.setdefault(block_size(width, sizes), []).append(run_id)
            for size, runs in by_size.items():
                if dialect == "sqlite":
                    pick, runs_param = "IN (SELECT value FROM json_each(:runs))", json.dumps(runs)
                else:
                    pick, runs_param = "= ANY(CAST(:runs AS INTEGER[]))", runs
                cur.execute(*_driver(dialect, (
                    f"SELECT {_READ} FROM metric_blocks WHERE key = :k AND size = :s "
                    f"AND run_id {pick} ORDER BY run_id, block"),
                    {"k": key, "s": size, "runs": runs_param}))
                _fold_blocks(acc, cur.fetchall(), widths, size)
        else:
            for run_id, (_, f0, _, f1) in ends.items():
                width = widths[run_id]
                size = block_size(width, sizes)
                first, last = f0 // width, f1 // width
                edges = [(f0, min(f1, first * width + width - 1))]
                if last > first:
                    edges.append((last * width, f1))
                for lo, hi in edges:
                    cur.execute(*_driver(dialect, (
                        "SELECT id, step, value FROM metrics WHERE run_id = :r AND key = :k "
                        "AND step BETWEEN :lo AND :hi"), {"r": run_id, "k": key, "lo": lo,
                                                          "hi": hi}))
                    _fold_raw(acc[run_id], width, cur.fetchall())
                if last - first >= 2:
                    per = width // size
                    cur.execute(*_driver(dialect, (
                        f"SELECT {_READ} FROM metric_blocks WHERE run_id = :r AND key = :k "
                        f"AND size = :s AND block BETWEEN :lo AND :hi ORDER BY block"),
                        {"r": run_id, "k": key, "s": size, "lo": (first + 1) * per,
                         "hi": last * per - 1}))
                    _fold_blocks(acc, cur.fetchall(), widths, size)
    finally:
        cur.close()
    return {run_id: _points(acc[run_id], ends[run_id], window) for run_id in ends}


def _points(by_bucket: dict, ends: tuple, unordered: bool) -> tuple[list, list, list]:
    """The kept points of one run's buckets (``{bucket: entry}``, in bucket order unless
    ``unordered``) and its first point, as ``(steps, ids, values)``."""
    first_id, f0, v0, _ = ends
    steps, ids, values = [f0], [first_id], [float(v0)]
    nan = float("nan")
    for bucket in (sorted(by_bucket) if unordered else by_bucket):
        lo_v, lo_s, lo_i, hi_v, hi_s, hi_i, l_s, l_i, l_v, nf_s, nf_i, nf_v = by_bucket[bucket]
        kept = [(l_s, l_i, nan if l_v is None else l_v)]
        if lo_v is not None:
            kept += ((lo_s, lo_i, lo_v), (hi_s, hi_i, hi_v))
        if nf_s is not None:
            kept.append((nf_s, nf_i, nan if nf_v is None else nf_v))
        kept.sort()  # by (step, id); one point may be several of them: kept once
        seen = first_id
        for step, id_, value in kept:
            if id_ != seen:
                steps.append(step)
                ids.append(id_)
                values.append(value)
                seen = id_
    return steps, ids, values


def _fold_blocks(acc: dict, rows, widths: dict, size: int) -> None:
    """Merge block rows (``run_id, block, *entry``) into ``acc``'s buckets."""
    for run_id, block, *entry in rows:
        _fold(acc[run_id], block // (widths[run_id] // size), entry)


def _fold_raw(buckets: dict, width: int, rows) -> None:
    """Merge raw rows (``id, step, value``) into ``buckets``: a row is a block of its own."""
    for id_, step, value in rows:
        # SQLite keeps NaN as the text 'NaN'
        _fold(buckets, step // width, entry(id_, float(value), step))


def _fold(buckets: dict, bucket: int, entry: list) -> None:
    into = buckets.get(bucket)
    if into is None:
        buckets[bucket] = entry
    else:
        merge(into, entry)


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


def _driver(dialect: str, sql: str, params: dict) -> tuple[str, dict]:
    """``sql`` with ``:name`` parameters in the DB-API driver's own style (sqlite3 takes
    ``:name``; psycopg ``%(name)s``), for a cursor of the raw connection."""
    if dialect == "sqlite":
        return sql, params
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql), params
