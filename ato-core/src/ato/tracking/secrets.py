"""Passwords inside URLs kept out of what a tracker records and shows.

A config commonly holds its own tracker URL (``experiment.sql.db_path =
'postgresql://user:secret@host/db'``) or another service's; written as it is, the password
would sit in every run's record, in ``ato runs show``, the dashboard and CSV exports.
:func:`hide_passwords` replaces the password of every ``scheme://user:password@`` in a
string by ``***``; :func:`without_passwords` does so for every string of a nested config
(mappings, lists, tuples).  Nothing else is changed; a string without such a URL is
returned as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["hide_passwords", "without_passwords"]

# scheme://user:password@ — the user may be empty (``redis://:secret@host``); the password
# runs up to the last '@' before the host part (passwords may contain '@' only encoded)
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^@/?#\s]*@")


def hide_passwords(text: str) -> str:
    """``text`` with the password of each URL in it replaced by ``***``
    (``postgresql://u:***@host/db``)."""
    return _USERINFO.sub(r"\1:***@", text)


def without_passwords(value):
    """A copy of ``value`` (a config: nested mappings, lists, tuples, scalars) whose
    strings went through :func:`hide_passwords`; mappings become ``dict``s."""
    if isinstance(value, str):
        return hide_passwords(value)
    if isinstance(value, Mapping):
        return {k: without_passwords(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(without_passwords(v) for v in value)
    return value
