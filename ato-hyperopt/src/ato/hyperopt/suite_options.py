"""The ``--…-options`` flag of Ato's conformance suites (search algorithms and executors):
one JSON object of constructor options, read the same way by the pytest option and by
the ``python -m …conformance`` command."""

from __future__ import annotations

import json

__all__ = ["json_options"]


def json_options(text: str | None, flag: str) -> dict | None:
    """The options ``text`` holds (a JSON object) as a dict; ``None`` when the flag was
    not given (``None`` or empty).

    Errors: ``ValueError`` naming ``flag``: not JSON (with the parser's position), or JSON
    that is not an object."""
    if not text:
        return None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} is not JSON: {e}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return options
