"""How the tracker writes values that JSON cannot hold, in the database and in ``--json``.

JSON (RFC 8259) has no token for infinity or NaN: PostgreSQL's ``json`` type rejects
Python's ``Infinity``/``NaN`` tokens, SQLite's JSON functions call them malformed, and
``JSON.parse`` refuses them.  The tracker therefore writes every non-finite float — in a
config (at any depth, in lists too), in tags, in artifact metadata, in registry versions'
``meta``, in study/worker meta and trial payloads and in ``ato runs --json`` output — as a
one-key object::

    float('inf')   ->  {"$numberDouble": "Infinity"}
    float('-inf')  ->  {"$numberDouble": "-Infinity"}
    float('nan')   ->  {"$numberDouble": "NaN"}

(the spelling of MongoDB Extended JSON, which other tools already read).  Reading decodes
them back to the exact Python floats.  So that the encoding stays unambiguous, a user dict
whose only key is ``"$numberDouble"`` or ``"$dict"`` is itself wrapped as
``{"$dict": {...}}`` and unwrapped on reading.

Metric values are columns, not JSON: PostgreSQL stores ±inf and NaN natively; SQLite
stores ±inf natively and NaN (which it cannot hold in a REAL) as the text ``'NaN'``;
:func:`as_float` reads either back as a float.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

MARKER = "$numberDouble"
ESCAPE = "$dict"
_RESERVED = frozenset((MARKER, ESCAPE))
_NAMES = {math.inf: "Infinity", -math.inf: "-Infinity"}
_FLOATS = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}

#: What a NaN metric value is stored as on SQLite (which turns a bound NaN into NULL).
SQLITE_NAN = "NaN"


def marker(name: str) -> dict:
    """The encoded form of one non-finite float: ``'Infinity'``, ``'-Infinity'`` or ``'NaN'``."""
    return {MARKER: name}


def encode(value):
    """A JSON-ready copy of ``value``: non-finite floats become marker objects, reserved
    one-key dicts are escaped, tuples and sets become lists, mapping keys become strings
    (as ``json.dumps`` would make them), anything else JSON cannot hold is left for the
    caller's ``default``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return marker("NaN" if value != value else _NAMES[value])
    if isinstance(value, Mapping):
        out = {_key(k): encode(v) for k, v in value.items()}
        if len(out) == 1 and next(iter(out)) in _RESERVED:
            return {ESCAPE: out}
        return out
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [encode(v) for v in sorted(value, key=repr)]
    return value


def _key(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)  # 'true', 'false', 'null', as json.dumps writes them
    if isinstance(key, float) and not math.isfinite(key):
        return "NaN" if key != key else _NAMES[key]
    return str(key)


def decode(value):
    """The inverse of :func:`encode` on parsed JSON: marker objects become floats."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, inner), = value.items()
            if key == MARKER and isinstance(inner, str) and inner in _FLOATS:
                return _FLOATS[inner]
            if key == ESCAPE and isinstance(inner, dict):
                return {k: decode(v) for k, v in inner.items()}
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dumps(value, *, indent: int | None = None, ensure_ascii: bool = True) -> str:
    """Strict JSON text for ``value`` (RFC 8259: never ``Infinity``/``NaN`` tokens);
    objects JSON cannot hold are written as ``str(obj)``."""
    return json.dumps(encode(value), indent=indent, default=_default, allow_nan=False,
                      ensure_ascii=ensure_ascii)


def _default(obj):
    if hasattr(obj, "to_dict"):
        return encode(obj.to_dict())
    return str(obj)


def loads(text):
    """Parse stored JSON (``str``/``bytes``, or an already parsed value from a driver that
    decodes JSON columns) and decode the markers; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, (str, bytes, bytearray)):
        text = json.loads(text)
    return decode(text)


def as_float(value):
    """A metric value read from either database as a float (SQLite's ``'NaN'`` text too);
    ``None`` stays ``None``."""
    if value is None or isinstance(value, float):
        return value
    return float(value)
