"""Reducing a long metric series to what a chart can draw without hiding anything.

The rule (every backend applies it the same way, so the same points come back from SQLite,
PostgreSQL or a plugin):

1. Points are ordered by ``(step, order logged)``; ``total`` is their number.  When
   ``total <= max_points`` every point is returned.
2. Otherwise the points are put into at most ``B = (max_points - 1) // 3`` buckets of
   ``w`` steps aligned on multiples of ``w``: ``bucket = step // w`` (floor division, so
   negative steps too), where ``w`` is the smallest power of two for which the steps from
   the first point's to the last point's touch at most ``B`` buckets
   (:func:`bucket_width`).  So between about ``B / 2`` and ``B`` buckets are used.
3. Each bucket keeps its minimum (the earliest on a tie), its maximum (the earliest on a
   tie) and its last point; the first point of the series is kept too; a point kept for
   two reasons appears once.  A NaN value is never a minimum or a maximum (it is kept
   only as a bucket's last point, or as the first point).

So at most ``3 * B + 1 <= max_points`` points come back, in order, never randomly chosen:
every spike survives as its bucket's min or max, the first and the last point (the last
bucket's last) are kept, so the step range is exactly preserved.  Buckets aligned on
powers of two let a backend answer from summaries of aligned blocks of steps written
with the points (``ato-sql`` does) instead of reading every point.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The smallest ``max_points``: the first point and two buckets' min, max and last (the
#: steps -1 and 0 are in different buckets whatever the width).
MIN_MAX_POINTS = 7


def check_max_points(max_points) -> None:
    """Raise ``ValueError`` unless ``max_points`` is ``None`` or an int >= 7."""
    if max_points is None:
        return
    if isinstance(max_points, bool) or not isinstance(max_points, int):
        raise ValueError(f"max_points must be an int, not {type(max_points).__name__}")
    if max_points < MIN_MAX_POINTS:
        raise ValueError(f"max_points must be at least {MIN_MAX_POINTS} (the first point and "
                         f"two buckets' min, max and last), not {max_points}")


def bucket_count(max_points: int) -> int:
    """``B``, the most buckets a reduction to ``max_points`` uses."""
    return (max_points - 1) // 3


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

    Errors: ``ValueError`` when ``max_points`` is below 7 or not an int."""
    check_max_points(max_points)
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    width = bucket_width(points[0].step, points[-1].step, bucket_count(max_points))
    chosen: dict[int, list] = {}  # bucket -> [index of min, of max, of last]
    for i, point in enumerate(points):
        entry = chosen.setdefault(point.step // width, [None, None, i])
        value = point.value
        if value == value:  # NaN is never a bucket's min or max
            if entry[0] is None or value < points[entry[0]].value:
                entry[0] = i
            if entry[1] is None or value > points[entry[1]].value:
                entry[1] = i
        entry[2] = i
    keep = {0}
    for entry in chosen.values():
        keep.update(i for i in entry if i is not None)
    return [points[i] for i in sorted(keep)]
