"""argparse integration for ``Scope(use_external_parser=True)``.

While such a scope exists, ``ArgumentParser.parse_args()`` called without explicit
arguments parses what it knows and hands the rest to the Ato command line.  Its defaults
become the view ``_argparse`` (below ordinary views) and the values given explicitly the
lazy view ``_argparse_literals`` (above views and CLI assignments).  It still returns an
``argparse.Namespace``, and explicit ``parse_args([...])`` calls are left alone.
"""

from __future__ import annotations

import argparse
import sys

from ato.errors import CLIError
from ato.grammar import parse_value
from ato.scoping import cli as _cli

_original_parse_args = argparse.ArgumentParser.parse_args
_installed = False


def install() -> None:
    global _installed
    if not _installed:
        argparse.ArgumentParser.parse_args = _parse_args
        _installed = True


def _scopes():
    from ato.scoping.scope import Scope

    return [s for s in Scope.registry.values() if s.use_external_parser]


def _parse_args(parser, args=None, namespace=None):
    scopes = _scopes()
    if args is not None or not scopes:
        return _original_parse_args(parser, args, namespace)
    from ato.scoping.manual import render
    from ato.scoping.scope import Scope, View, _fail

    items, numbers = _manual_items(sys.argv[1:])
    argv = list(items)
    head: list[str] = []
    if "manual" in argv or (argv and argv[0] in _cli.MANUAL_WORDS):
        head, argv = _split_manual(argv)
        if len(head) == 1:  # plain `manual`: the parser's help, then the scopes' manuals
            print("[External Parser]")
            print(parser.format_help())
            print(render(list(Scope.registry.values()), "main"))
            raise SystemExit(0)
    with _recording(parser) as given_dests:
        ns, unknown = parser.parse_known_args(argv, namespace)
    try:
        rest = _handle_unknown(unknown, _view_names(scopes), sys.argv[1:])
    except CLIError as e:
        _fail(e)
    found = _cli.argument_numbers(head, items) + _cli.argument_numbers(rest, items)
    _cli.hand_off(head + rest, [None if n is None else numbers[n - 1] for n in found])
    defaults = {a.dest: a.default for a in parser._actions
                if a.dest != argparse.SUPPRESS and a.dest != "help"}
    values = vars(ns)
    given = {dest: values[dest] for dest in given_dests if dest in values}
    for scope in scopes:
        scope._register(View("_argparse", dict(defaults), scope.external_priority, default=True,
                             location="argparse defaults"))
        scope._register(View("_argparse_literals", dict(given), scope.external_priority,
                             lazy=True, default=True, location="argparse arguments"))
        for extra in _merged:
            scope.views["_argparse_literals"].body.update(extra)
    _merged.clear()
    return ns


class _recording:
    """Records the ``dest`` of every action argparse takes for a token on the command line.

    argparse converts the strings of each action it takes with ``parser._get_values``
    (stable since Python 3.2); wrapping it on the parser instance — and on every
    sub-parser — tells an explicit ``--lr 0.1`` apart from the default ``0.1``.  An
    optional counts when its flag appears; a positional when it received a string.
    """

    def __init__(self, parser):
        self.parsers = []
        self.given: set = set()
        stack = [parser]
        while stack:
            p = stack.pop()
            if p in self.parsers:
                continue
            self.parsers.append(p)
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())

    def __enter__(self) -> set:
        for p in self.parsers:
            original = p._get_values

            def get_values(action, arg_strings, _original=original):
                if action.dest not in (argparse.SUPPRESS, "help") and \
                        (action.option_strings or arg_strings):
                    self.given.add(action.dest)
                return _original(action, arg_strings)

            p._get_values = get_values
        return self.given

    def __exit__(self, *exc):
        for p in self.parsers:
            p.__dict__.pop("_get_values", None)


_merged: list[dict] = []


def _manual_items(argv: list[str]) -> tuple[list[str], list[int]]:
    """``argv`` with each argument that holds ``manual``, ``--why``... among other items
    (``"manual --why lr"``, white space separating items inside an argument too) split into
    its items, and the ``sys.argv`` number of each; other arguments stay whole for the
    argument parser."""
    items, numbers = [], []
    for number, arg in enumerate(argv, 1):
        parts = arg.split()
        if len(parts) > 1 and any(p in _cli.MANUAL_WORDS or p == "--why-all" or
                                  p == "--why" or p.startswith("--why=") for p in parts):
            items += parts
            numbers += [number] * len(parts)
        else:
            items.append(arg)
            numbers.append(number)
    return items, numbers


def _split_manual(argv: list[str]) -> tuple[list[str], list[str]]:
    """``manual --why KEY ... rest`` → (``['manual', '--why', 'KEY', ...]``, ``rest``): the
    provenance request goes to Ato, the rest through argparse first.  ``manual`` may stand
    anywhere (``-h``/``--help`` only first: elsewhere they are argparse's)."""
    head, rest = ["manual"], []
    skip = argv.index("manual") if "manual" in argv else 0
    i = 0
    while i < len(argv):
        if i == skip:
            i += 1
            continue
        token = argv[i]
        if token == "--why" and i + 1 < len(argv):
            head += argv[i:i + 2]
            i += 2
            continue
        if token == "--why-all" or token.startswith("--why="):
            head.append(token)
        else:
            rest.append(token)
        i += 1
    return head, rest


def _view_names(scopes) -> set:
    names = {"print"}
    for scope in scopes:
        names.update(scope.views)
        names.update(f"{scope.name}.{v}" for v in scope.views)
    return names


def _is_flag(token: str) -> bool:
    """``--name``/``-x`` (not a negative number such as ``-1`` or ``-.5``)."""
    if not token.startswith("-") or token in ("-", "--"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def _takes_value(token: str, views: set) -> bool:
    """Whether ``token``, after an unknown flag, is that flag's value.

    By the Ato grammar a following token is an assignment when it holds ``=``, a view when
    it names a registered view (or ``print``), and a flag when it starts with ``-``; only
    what is none of these is the flag's value (``--epochs 3``, ``--name run1``).
    """
    return not (_is_flag(token) or "=" in token or token in views)


def _handle_unknown(unknown: list[str], views: set = frozenset(),
                    argv: list[str] | None = None) -> list[str]:
    """The tokens argparse did not know that go on to the Ato command line (flags are
    dropped, refused or merged by ``Scope.unknown_external_literals``); ``argv`` is the
    whole command line, to number a refused flag in the error."""
    from ato.scoping.scope import Scope

    mode = Scope.unknown_external_literals
    if mode not in ("ignore", "error", "merge"):
        raise CLIError(f"Scope.unknown_external_literals must be 'ignore', 'error' or "
                       f"'merge', not {mode!r}", unknown[0] if unknown else None)
    rest = []
    i = 0
    while i < len(unknown):
        token = unknown[i]
        if token == "--":
            rest.extend(unknown[i + 1:])
            break
        if _is_flag(token):
            flag, eq, inline = token.partition("=")
            has_value = bool(eq) or (i + 1 < len(unknown) and _takes_value(unknown[i + 1], views))
            value_text = inline if eq else (unknown[i + 1] if has_value else None)
            if mode == "error":
                number = None
                if argv is not None:
                    (number,) = _cli.argument_numbers([token], argv)
                raise CLIError("unknown option for the argument parser (add it to the parser, "
                               "or set Scope.unknown_external_literals to 'ignore' or 'merge')",
                               token, argument=number)
            if mode == "merge":
                key = flag.lstrip("-").replace("-", "_")
                try:
                    value = True if value_text is None else parse_value(value_text)
                except CLIError:
                    value = value_text
                _merged.append({key: value})
            i += 2 if (has_value and not eq) else 1
            continue
        rest.append(token)
        i += 1
    return rest
