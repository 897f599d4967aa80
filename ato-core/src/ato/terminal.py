"""Text laid out for a terminal, shared by every command that prints a table."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters take
    two, combining marks and zero-width format characters (U+200B …) none, others one."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def did_you_mean(name: str, candidates) -> str:
    """``" — did you mean 'a' or 'b'?"``: up to three of ``candidates`` close to ``name``
    (difflib's ratio >= 0.6), or ``""`` when none is."""
    import difflib

    match = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not match:
        return ""
    return " — did you mean " + " or ".join(repr(m) for m in match) + "?"
