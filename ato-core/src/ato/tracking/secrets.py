"""Passwords inside URLs kept out of what a tracker records and shows.

A config commonly holds its own tracker URL (``experiment.sql.db_path =
'postgresql://user:secret@host/db'``) or another service's; written as it is, the password
would sit in every run's record, in ``ato runs show``, the dashboard and CSV exports.
:func:`hide_passwords` replaces the password of every ``scheme://user:password@`` in a
string by ``***``; :func:`without_passwords` does so for every string (and ``bytes``) of a
nested config, keys included, keeping each container's type and shape.  A string without
such a URL is returned as it is.
"""

from __future__ import annotations

import re
from collections import UserString, defaultdict, deque
from collections.abc import Mapping, Sequence, Set

__all__ = ["db_option", "hide_passwords", "without_passwords"]

# scheme://user:password@ — the user may be empty (``redis://:secret@host``); the password
# runs up to the last '@' before the host part (a raw '@' in a password is masked whole)
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^/?#\s]*@")
_USERINFO_BYTES = re.compile(_USERINFO.pattern.encode("ascii"))

# sequences whose items are not config values: never rebuilt, returned as they are
_OPAQUE_SEQUENCES = (range, memoryview)


def hide_passwords(text: str) -> str:
    """``text`` with the password of each URL in it replaced by ``***``
    (``postgresql://u:***@host/db``)."""
    return _USERINFO.sub(r"\1:***@", text)


def db_option(url) -> str:
    """``--db URL`` as a message suggests a command to paste: shell-quoted, any password
    shown as ``***``, so every suggested ``ato …`` command reaches the database the user
    named."""
    import shlex

    return f"--db {shlex.quote(hide_passwords(str(url)))}"


def without_passwords(value):
    """A copy of ``value`` (a config) whose strings went through :func:`hide_passwords`.

    Every container a config can hold is walked — mappings (``dict`` and its subclasses,
    :class:`~ato.adict.ADict` with its default factory and frozen flag, other
    :class:`~collections.abc.Mapping` types), lists, tuples, named tuples, deques, sets,
    frozensets and their mixes — and rebuilt as the same type with the same shape; string
    keys are masked like values.  ``str`` and ``bytes``/``bytearray`` (and their subclasses)
    are masked; other scalars and objects are returned as they are.

    Never raises for a value it is given: a container type that cannot be rebuilt from its
    masked items (a constructor taking other arguments) is returned as it is when nothing in
    it was masked, and otherwise as its plain equivalent (``dict``, ``list``, ``tuple``,
    ``set`` or ``frozenset``).  A container that holds itself keeps its cycle.  Two keys (or
    set members) that differ only in a password become one, the later winning.
    """
    return _mask(value, {})[0]


def _mask(value, memo: dict):
    """``(masked value, whether any password was hidden in it)``; ``memo`` maps the id of
    each container already seen to its result (shared and cyclic references)."""
    if isinstance(value, str):
        return _mask_text(value, hide_passwords, str)
    if isinstance(value, (bytes, bytearray)):
        return _mask_text(value, _hide_in_bytes, bytes)
    if isinstance(value, UserString):  # a Sequence of characters: masked as its text
        masked = hide_passwords(str(value))
        if masked == str(value):
            return value, False
        try:
            return type(value)(masked), True
        except Exception:
            return masked, True
    key = id(value)
    if key in memo:
        return memo[key][1], memo[key][2]
    if isinstance(value, Mapping):
        return _mask_mapping(value, memo)
    if isinstance(value, (Sequence, Set, deque)) and not isinstance(value, _OPAQUE_SEQUENCES):
        return _mask_collection(value, memo)
    return value, False


def _hide_in_bytes(data):
    return _USERINFO_BYTES.sub(rb"\1:***@", data)


def _mask_text(value, hide, plain):
    masked = hide(value)
    if masked == value:
        return value, False
    if type(value) is plain:
        return masked, True
    # bytearray, or a str/bytes subclass (an enum member, a tagged string): the same type
    # when its constructor takes the masked text, else the plain text
    try:
        again = type(value)(masked)
    except Exception:
        return plain(masked), True
    return (again, True) if type(again) is type(value) and again == masked else (plain(masked), True)


def _remember(memo: dict, value, result, changed: bool) -> None:
    # the original is kept alive in the memo so that its id is not reused during the walk
    memo[id(value)] = (value, result, changed)


def _mask_mapping(value: Mapping, memo: dict):
    from ato.adict import ADict, _rebuild

    if type(value) is dict or isinstance(value, ADict):
        # built empty first and filled after, so that a cycle through it stays a cycle
        data: dict = {}
        result = data if type(value) is dict else _rebuild(type(value), data, value._factory, False)
        _remember(memo, value, result, False)
        changed = _fill(data, value._data.items() if isinstance(value, ADict) else value.items(),
                        memo)
        if isinstance(value, ADict) and value.frozen:
            result.freeze()
        _remember(memo, value, result, changed)
        return result, changed

    _remember(memo, value, value, False)  # a cycle through a rebuilt mapping meets the original
    data = {}
    changed = _fill(data, value.items(), memo)
    result = None
    try:
        if isinstance(value, defaultdict):
            result = type(value)(value.default_factory, data)
        else:
            result = type(value)(data)
        if not isinstance(result, type(value)) or len(result) != len(data):
            result = None
    except Exception:
        result = None
    if result is None:
        result = dict(data) if changed else value
    _remember(memo, value, result, changed)
    return result, changed


def _fill(data: dict, items, memo: dict) -> bool:
    changed = False
    for k, v in items:
        mk, key_changed = _mask(k, memo)
        mv, value_changed = _mask(v, memo)
        try:
            data[mk] = mv
        except TypeError:  # a hashable key whose plain equivalent is not (a frozen mapping)
            data[k] = mv
        changed = changed or key_changed or value_changed
    return changed


def _mask_collection(value, memo: dict):
    if type(value) is list:
        result: list = []
        _remember(memo, value, result, False)
        changed = False
        for v in value:
            mv, c = _mask(v, memo)
            result.append(mv)
            changed = changed or c
        _remember(memo, value, result, changed)
        return result, changed

    _remember(memo, value, value, False)
    items = []
    changed = False
    for v in value:
        mv, c = _mask(v, memo)
        items.append(mv)
        changed = changed or c
    result = _rebuild_collection(value, items)
    if result is None:
        result = _plain_collection(value, items) if changed else value
    _remember(memo, value, result, changed)
    return result, changed


def _rebuild_collection(value, items: list):
    """``value``'s type holding ``items``, or ``None`` when that type cannot be built so."""
    cls = type(value)
    if cls is tuple:
        return tuple(items)
    if isinstance(value, tuple) and hasattr(cls, "_make") and hasattr(cls, "_fields"):
        attempts = (lambda: cls._make(items),)  # a named tuple
    elif isinstance(value, deque):
        attempts = (lambda: cls(items, value.maxlen),)
    else:
        # an iterable (list/set subclasses, most containers), else one argument per item
        # (tuple subclasses written as ``Point(x, y)``)
        attempts = (lambda: cls(items), lambda: cls(*items))
    for attempt in attempts:
        try:
            result = attempt()
        except Exception:
            continue
        if type(result) is cls and _same_shape(value, result, items):
            return result
    return None


def _same_shape(value, result, items: list) -> bool:
    if isinstance(value, (Set, frozenset, set)):
        return len(result) == len(set(_hashable_or_id(i) for i in items))
    return len(result) == len(items)


def _hashable_or_id(item):
    try:
        hash(item)
    except TypeError:
        return id(item)
    return item


def _plain_collection(value, items: list):
    if isinstance(value, Set):
        try:
            return frozenset(items) if isinstance(value, frozenset) else set(items)
        except TypeError:  # a member whose plain equivalent is unhashable
            return list(items)
    if isinstance(value, tuple):
        return tuple(items)
    return list(items)
