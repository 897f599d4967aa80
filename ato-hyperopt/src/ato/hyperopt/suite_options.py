"""What Ato's two conformance suites (search algorithms and executors) share: the plugin
under test and its constructor options, named by a class attribute of the test class, by
pytest options, or by the ``python -m …conformance NAME [--options JSON]`` command.

``--…-options`` is one JSON object of constructor options, read the same way everywhere.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from ato.errors import AtoError

__all__ = ["json_options", "spec_of", "spec_from_command_line", "run_suite"]


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


def spec_of(resolve: Callable[[object], type], target, options: dict | None) -> tuple[type, dict]:
    """``(class, options)`` for ``target`` (a class, a ``PLUGIN_NAME`` or
    ``'module:Class'``, turned into a class by ``resolve``); ``options`` default to the
    class's ``CONFORMANCE_OPTIONS`` (small and fast)."""
    cls = resolve(target)
    if options is None:
        options = getattr(cls, "CONFORMANCE_OPTIONS", {})
    return cls, dict(options)


def spec_from_command_line(request, resolve: Callable[[object], type], flag: str,
                           options_flag: str) -> tuple[type, dict]:
    """:func:`spec_of` for the plugin named by the pytest option ``flag`` (the test is
    skipped, saying so, when it is not given) with the options of ``options_flag``.
    Bad JSON is a ``pytest.UsageError`` naming the flag."""
    import pytest

    name = request.config.getoption(flag, None)
    if not name:
        pytest.skip(f"name the plugin to check with {flag} NAME (or module:Class)")
    try:
        options = json_options(request.config.getoption(options_flag, None), options_flag)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    return spec_of(resolve, name, options)


def run_suite(module: str, what: str, example: str, resolve: Callable[[object], type],
              flag: str, options_flag: str, argv=None,
              build: Callable[[type, dict], None] | None = None) -> int:
    """``python -m MODULE NAME [--options JSON] [pytest args]``: check that ``NAME``
    resolves, the options parse and ``build(class, options)`` (one construction, with
    the options the suite will use) succeeds — one line on stderr and exit status 2 when
    not, instead of the same error in every test — then run the suite in ``MODULE``
    under pytest; its exit status."""
    import argparse

    prog = f"python -m {module}"
    parser = argparse.ArgumentParser(
        prog=prog, description=f"Run Ato's behavioural suite for {what}s against one.")
    parser.add_argument("plugin", metavar=what.split()[-1],
                        help=f"a PLUGIN_NAME (e.g. {example}) or module:Class")
    parser.add_argument("--options", default=None, help="JSON object of constructor options")
    args, rest = parser.parse_known_args(argv)
    try:
        import pytest
    except ImportError:
        print(f"{prog}: the suite runs under pytest; pip install pytest", file=sys.stderr)
        return 2
    try:  # a name or path that resolves to nothing: one line, not nine tracebacks
        cls, options = spec_of(resolve, args.plugin, json_options(args.options, "--options"))
        if build is not None:
            build(cls, options)
    except (AtoError, LookupError, TypeError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    pytest_args = ["-p", module, "--pyargs", module, "-p", "no:cacheprovider",
                   f"{flag}={args.plugin}"]
    if args.options is not None:
        pytest_args.append(f"{options_flag}={args.options}")
    return int(pytest.main(pytest_args + rest))
