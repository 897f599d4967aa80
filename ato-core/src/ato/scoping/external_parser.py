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
    from ato.scoping import cli as _cli
    from ato.scoping.manual import render
    from ato.scoping.scope import Scope, View, _fail

    argv = sys.argv[1:]
    if argv and argv[0] in ("manual", "-h", "--help"):
        print("[External Parser]")
        print(parser.format_help())
        print(render(list(Scope.registry.values()), "main"))
        raise SystemExit(0)
    ns, unknown = parser.parse_known_args(argv, namespace)
    try:
        rest = _handle_unknown(unknown)
    except CLIError as e:
        _fail(e)
    _cli.hand_off(rest)
    defaults = {a.dest: a.default for a in parser._actions
                if a.dest != argparse.SUPPRESS and a.dest != "help"}
    given = {k: v for k, v in vars(ns).items() if k not in defaults or defaults[k] != v}
    for scope in scopes:
        scope._register(View("_argparse", dict(defaults), scope.external_priority, default=True,
                             location="argparse defaults"))
        scope._register(View("_argparse_literals", dict(given), scope.external_priority,
                             lazy=True, default=True, location="argparse arguments"))
        for extra in _merged:
            scope.views["_argparse_literals"].body.update(extra)
    _merged.clear()
    return ns


_merged: list[dict] = []


def _handle_unknown(unknown: list[str]) -> list[str]:
    from ato.scoping.scope import Scope

    mode = Scope.unknown_external_literals
    rest = []
    i = 0
    while i < len(unknown):
        token = unknown[i]
        if token.startswith("--") and len(token) > 2:
            flag, eq, inline = token.partition("=")
            has_value = bool(eq) or (i + 1 < len(unknown) and not unknown[i + 1].startswith("--")
                                     and "=" not in unknown[i + 1])
            value_text = inline if eq else (unknown[i + 1] if has_value else None)
            if mode == "error":
                raise CLIError("unknown option for the argument parser", token)
            if mode == "merge":
                key = flag[2:].replace("-", "_")
                try:
                    value = True if value_text is None else parse_value(value_text)
                except CLIError:
                    value = value_text
                _merged.append({key: value})
            elif mode != "ignore":
                raise CLIError(f"Scope.unknown_external_literals must be 'ignore', 'error' or "
                               f"'merge', not {mode!r}", token)
            i += 2 if (has_value and not eq) else 1
            continue
        rest.append(token)
        i += 1
    return rest
