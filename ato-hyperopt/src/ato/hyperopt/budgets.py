"""Exact budgets: every budget a search computes is a :class:`fractions.Fraction`.

A budget written by a user (``3``, ``729``, ``0.1``, ``8.1``, ``Fraction(1, 3)``,
``'1/3'``, ``1/3``) is read the way it is written (``0.1`` is one tenth and ``1/3`` one
third, not the binary floats nearest to them); rungs are
``min_budget * eta**k`` and brackets ``max_budget * eta**-s`` computed in rationals, so
``(min, max, eta) = (3, 729, 3)`` gives 3, 9, 27, 81, 243, 729 and ``(0.1, 8.1, 3)`` gives
0.1, 0.3, 0.9, 2.7, 8.1 — exactly, and every comparison of budgets is exact.

An objective receives one representation per budget (:func:`plain`): an ``int`` when the
budget is a whole number, else the ``float`` nearest to it.  Trial records carry
:func:`text` (``"729"``, ``"8.1"``, ``"10/9"``), which reads back with :func:`exact`.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal
from fractions import Fraction

__all__ = ["exact", "plain", "text", "rungs", "max_exponent"]


def exact(value, name: str = "budget") -> Fraction:
    """``value`` as an exact positive-or-zero rational.

    Accepts ints, :class:`Fraction`, :class:`Decimal`, floats (the simple fraction they
    round from, ``1/3`` → ``1/3``, else read through their shortest ``repr``: ``0.1`` →
    ``1/10``) and the strings :func:`text` writes (``"8.1"``,
    ``"10/9"``).  Raises ``TypeError`` for anything else (``bool`` included) and
    ``ValueError`` for NaN or infinities, both naming ``name``.
    """
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return _from_float(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, got {value!r}")
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} must be a number such as 9, 0.1 or 10/9, got {value!r}") from None
    if isinstance(value, numbers.Real):  # numpy scalars and other reals
        as_float = float(value)
        if isinstance(value, numbers.Integral) or as_float.is_integer():
            return exact(int(as_float) if as_float.is_integer() else as_float, name)
        return exact(as_float, name)
    raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")


def _from_float(value: float) -> Fraction:
    """The rational a float denotes: the simplest fraction (denominator up to 10**6) that
    rounds to exactly this float (``1/3`` → ``Fraction(1, 3)``), else the float's shortest
    ``repr`` read as a decimal (``0.1`` → ``1/10``)."""
    written = Fraction(repr(value))
    simple = written.limit_denominator(10 ** 6)
    if simple.denominator < written.denominator and float(simple) == value:
        return simple
    return written


def plain(budget: Fraction) -> int | float:
    """What an objective receives: an ``int`` for a whole budget, else the nearest float."""
    budget = exact(budget)
    if budget.denominator == 1:
        return int(budget)
    return float(budget)


def text(budget: Fraction) -> str:
    """The budget as recorded in a ``budget:`` tag: ``"729"``, ``"8.1"``, ``"0.125"`` (a
    terminating decimal, written exactly) or ``"10/9"`` (any other rational)."""
    budget = exact(budget)
    if budget.denominator == 1:
        return str(budget.numerator)
    d = budget.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{budget.numerator}/{budget.denominator}"
    digits = max(twos, fives)
    scaled = budget * 10 ** digits  # an integer
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(int(scaled)), 10 ** digits)
    return f"{sign}{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def max_exponent(min_budget: Fraction, max_budget: Fraction, eta: Fraction) -> int:
    """The largest ``k`` with ``min_budget * eta**k <= max_budget`` (exact; 0 when equal)."""
    k = 0
    while min_budget * eta ** (k + 1) <= max_budget:
        k += 1
    return k


def rungs(min_budget, max_budget, eta) -> list[Fraction]:
    """``min_budget * eta**k`` for every ``k`` that stays within ``max_budget``, exact."""
    lo, hi, eta = exact(min_budget), exact(max_budget), exact(eta)
    return [lo * eta ** k for k in range(max_exponent(lo, hi, eta) + 1)]
