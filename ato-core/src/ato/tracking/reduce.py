"""Reducing a long metric series to what a chart can draw without hiding anything.

The rule (every backend applies it the same way, so the same points come back from SQLite,
PostgreSQL or a plugin):

1. Points are ordered by ``(step, order logged)``; ``total`` is their number.  When
   ``total <= max_points`` every point is returned.
2. Otherwise the points are put into at most ``B = (max_points - 1) // 4`` buckets of
   ``w`` steps aligned on multiples of ``w``: ``bucket = step // w`` (floor division, so
   negative steps too), where ``w`` is the smallest power of two for which the steps from
   the first point's to the last point's touch at most ``B`` buckets
   (:func:`bucket_width`).  So between about ``B / 2`` and ``B`` buckets are used.
3. Each bucket keeps its minimum and its maximum among its finite values (the earliest
   on a tie), its last point, and its first non-finite point (NaN, +inf or -inf, the
   earliest); the first point of the series is kept too; a point kept for two reasons
   appears once.

So at most ``4 * B + 1 <= max_points`` points come back, in order, never randomly chosen:
every finite spike survives as its bucket's min or max (an infinity beside it does not
hide it), a bucket holding NaN or an infinity shows one of them (a diverging run is never
drawn as healthy), the first and the last point (the last bucket's last) are kept, so the
step range is exactly preserved.  Buckets aligned on
powers of two let a backend answer from summaries of aligned blocks of steps written
with the points (``ato-sql`` does) instead of reading every point.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The smallest ``max_points``: the first point and two buckets' four points (the steps
#: -1 and 0 are in different buckets whatever the width).
MIN_MAX_POINTS = 9


def check_max_points(max_points) -> None:
    """Raise ``ValueError`` unless ``max_points`` is ``None`` or an int >= 9."""
    if max_points is None:
        return
    if isinstance(max_points, bool) or not isinstance(max_points, int):
        raise ValueError(f"max_points must be an int, not {type(max_points).__name__}")
    if max_points < MIN_MAX_POINTS:
        raise ValueError(f"max_points must be at least {MIN_MAX_POINTS} (the first point and "
                         f"two buckets' min, max, last and first non-finite point), not "
                         f"{max_points}")


#: Steps are signed 64-bit integers in every backend.
STEP_RANGE = (-2**63, 2**63 - 1)


def check_step_bounds(min_step, max_step, names=("min_step", "max_step")) -> None:
    """Raise ``ValueError`` naming the argument (as ``names`` spells them) unless
    ``min_step`` and ``max_step`` are each ``None`` or an int within :data:`STEP_RANGE`
    (a float step or a bound no backend can store is a caller's mistake, never rounded
    or passed on to the database)."""
    for name, bound in zip(names, (min_step, max_step)):
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise ValueError(f"{name} must be an int step or None, not "
                             f"{type(bound).__name__} {bound!r}")
        if not STEP_RANGE[0] <= bound <= STEP_RANGE[1]:
            raise ValueError(f"{name} must be within -2**63..2**63-1 (a 64-bit step), not "
                             f"{bound}")


def bucket_count(max_points: int) -> int:
    """``B``, the most buckets a reduction to ``max_points`` uses."""
    return (max_points - 1) // 4


def bucket_width(first_step: int, last_step: int, buckets: int) -> int:
    """``w``: the smallest power of two with ``last_step // w - first_step // w + 1 <=
    buckets`` (``buckets >= 2``, ``first_step <= last_step``)."""
    width = 1
    while last_step // width - first_step // width >= buckets:
        width *= 2
    return width


def reduce_points(points: Sequence, max_points: int | None) -> list:
    """Reduce ``points`` (objects with ``step`` and ``value``, already ordered by step and
    logging order) to at most ``max_points`` by the module's rule; returns a new list of the
    same objects.

    Errors: ``ValueError`` when ``max_points`` is below 9 or not an int."""
    check_max_points(max_points)
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    width = bucket_width(points[0].step, points[-1].step, bucket_count(max_points))
    chosen: dict[int, list] = {}  # bucket -> [index of min, of max, of last, of non-finite]
    for i, point in enumerate(points):
        entry = chosen.setdefault(point.step // width, [None, None, i, None])
        value = point.value
        if value - value == 0:  # finite: NaN and infinities are never a min or a max
            if entry[0] is None or value < points[entry[0]].value:
                entry[0] = i
            if entry[1] is None or value > points[entry[1]].value:
                entry[1] = i
        elif entry[3] is None:
            entry[3] = i
        entry[2] = i
    keep = {0}
    for entry in chosen.values():
        keep.update(i for i in entry if i is not None)
    return [points[i] for i in sorted(keep)]
