"""Reducing a long metric series to what a chart can draw without hiding anything.

The rule (every backend applies it the same way, so the same points come back from SQLite,
PostgreSQL or a plugin):

1. Points are ordered by ``(step, order logged)``; ``total`` is their number.  When
   ``total <= max_points`` every point is returned.
2. Otherwise the first and the last point are always kept, and the points between them are
   put into ``B = (max_points - 2) // 3`` buckets by step:
   ``bucket = (step - first.step) * B // (last.step - first.step + 1)`` (integer division).
3. Each bucket keeps its minimum (the earliest on a tie), its maximum (the earliest on a
   tie) and its last point; a point kept for two reasons appears once.  A NaN value is
   never a minimum or a maximum (it is kept only as a bucket's last, or first/last point).

So at most ``3 * B + 2 <= max_points`` points come back, in order, never randomly chosen:
every spike survives as its bucket's min or max, and the step range is exactly preserved.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_MAX_POINTS = 5


def check_max_points(max_points) -> None:
    """Raise ``ValueError`` unless ``max_points`` is ``None`` or an int >= 5."""
    if max_points is None:
        return
    if isinstance(max_points, bool) or not isinstance(max_points, int):
        raise ValueError(f"max_points must be an int, not {type(max_points).__name__}")
    if max_points < MIN_MAX_POINTS:
        raise ValueError(f"max_points must be at least {MIN_MAX_POINTS} (first, last and one "
                         f"bucket's min, max and last), not {max_points}")


def bucket_count(max_points: int) -> int:
    """How many buckets a reduction to ``max_points`` uses."""
    return (max_points - 2) // 3


def reduce_points(points: Sequence, max_points: int | None) -> list:
    """Reduce ``points`` (objects with ``step`` and ``value``, already ordered by step and
    logging order) to at most ``max_points`` by the module's rule; returns a new list of the
    same objects.

    Errors: ``ValueError`` when ``max_points`` is below 5 or not an int."""
    check_max_points(max_points)
    n = len(points)
    if max_points is None or n <= max_points:
        return list(points)
    buckets = bucket_count(max_points)
    first_step, last_step = points[0].step, points[-1].step
    span = last_step - first_step + 1
    chosen: dict[int, list] = {}  # bucket -> [index of min, of max, of last]
    for i in range(1, n - 1):
        point = points[i]
        b = (point.step - first_step) * buckets // span
        entry = chosen.setdefault(b, [None, None, i])
        value = point.value
        if value == value:  # NaN is never a bucket's min or max
            if entry[0] is None or value < points[entry[0]].value:
                entry[0] = i
            if entry[1] is None or value > points[entry[1]].value:
                entry[1] = i
        entry[2] = i
    keep = {0, n - 1}
    for entry in chosen.values():
        keep.update(i for i in entry if i is not None)
    return [points[i] for i in sorted(keep)]
