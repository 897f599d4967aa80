"""The process command line: parsed once, routed to the registered scopes.

Routing (SPEC 2.5): with one registered scope every token goes to it.  With several, a
token is routed by its first dotted component (``model.lr=0.1``, ``data.imagenet``); a
bare view name goes to the one scope that defines it.
"""

from __future__ import annotations

import sys

from ato.errors import CLIError, UnknownViewError
from ato.grammar import Assign, Word, parse_args

PRINT_VIEW = "print"


class Invocation:
    """What the command line asks for: a plain run, ``manual`` or ``manual --why``."""

    __slots__ = ("items", "manual", "why", "why_all")

    def __init__(self, items: list, manual: bool = False, why=None, why_all: bool = False):
        self.items, self.manual, self.why, self.why_all = items, manual, why or [], why_all


_override: list[str] | None = None
_handed_off: list[str] | None = None
_cached: Invocation | None = None


def set_argv(argv: list[str] | None) -> None:
    """Use ``argv`` instead of ``sys.argv[1:]`` (for programmatic use and tests)."""
    global _override, _cached, _handed_off
    _override = None if argv is None else list(argv)
    _handed_off = None
    _cached = None


def forget_parse() -> None:
    """Parse the command line again on next use (an explicit ``set_argv`` is kept)."""
    global _cached, _handed_off
    _cached = None
    _handed_off = None


def hand_off(argv: list[str]) -> None:
    """Arguments left over by an external parser (argparse) become the Ato command line."""
    global _handed_off, _cached
    _handed_off = list(argv)
    _cached = None


def raw_argv() -> list[str]:
    if _handed_off is not None:
        return _handed_off
    if _override is not None:
        return _override
    return sys.argv[1:]


def invocation() -> Invocation:
    global _cached
    if _cached is None:
        _cached = parse_invocation(raw_argv())
    return _cached


def parse_invocation(argv: list[str]) -> Invocation:
    argv = list(argv)
    manual = False
    if argv and argv[0] in ("manual", "-h", "--help"):
        manual = True
        argv = argv[1:]
    why: list[str] = []
    why_all = False
    if manual:
        rest = []
        i = 0
        while i < len(argv):
            if argv[i] == "--why-all":
                why_all = True
            elif argv[i] == "--why":
                if i + 1 >= len(argv) or "=" in argv[i + 1]:
                    raise CLIError("--why needs a key to explain (or use --why-all)", "--why")
                why.append(argv[i + 1])
                i += 1
            elif argv[i].startswith("--why="):
                why.append(argv[i].split("=", 1)[1])
            else:
                rest.append(argv[i])
            i += 1
        argv = rest
    return Invocation(parse_args(argv), manual, why, why_all)


def _suggest(name: str, candidates) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not match:
        return ""
    return " — did you mean " + " or ".join(repr(m) for m in match) + "?"


def route(items: list, scopes: dict) -> dict[str, list]:
    """Split parsed items between ``scopes`` (name → Scope); keys lose their scope prefix."""
    routed: dict[str, list] = {name: [] for name in scopes}
    if len(scopes) == 1:
        (name, scope), = scopes.items()
        for item in items:
            if isinstance(item, Word):
                _check_view(scope, item.name, item.token)
            routed[name].append(item)
        return routed
    for item in items:
        head = item.key[0] if isinstance(item, Assign) else item.name.split(".", 1)[0]
        if isinstance(item, Assign):
            if head not in scopes:
                raise CLIError(
                    f"with several scopes a key starts with a scope name "
                    f"({', '.join(f'{s}.{item.key[-1]}' for s in scopes)})"
                    + _suggest(head, scopes),
                    item.token,
                )
            if len(item.key) == 1:
                raise CLIError(f"give a key inside scope {head!r}, e.g. {head}.lr=0.1", item.token)
            routed[head].append(Assign(item.key[1:], item.value, item.token))
            continue
        if "." in item.name and head in scopes:
            view = item.name.split(".", 1)[1]
            _check_view(scopes[head], view, item.token)
            routed[head].append(Word(view, item.token))
            continue
        if item.name == PRINT_VIEW:
            raise CLIError(f"with several scopes, say which to print: "
                           f"{', '.join(s + '.print' for s in scopes)}", item.token)
        owners = [s for s, scope in scopes.items() if item.name in scope.views]
        if len(owners) == 1:
            routed[owners[0]].append(item)
        elif len(owners) > 1:
            raise CLIError(
                f"view {item.name!r} is defined by scopes {', '.join(owners)}; "
                f"write {' or '.join(o + '.' + item.name for o in owners)}",
                item.token,
            )
        else:
            names = {v for scope in scopes.values() for v in scope.public_view_names()}
            names |= {f"{s}.{v}" for s, scope in scopes.items() for v in scope.public_view_names()}
            raise UnknownViewError(f"unknown view {item.name!r}" + _suggest(item.name, names),
                                   item.token)
    return routed


def _check_view(scope, name: str, token: str) -> None:
    if name == PRINT_VIEW or name in scope.views:
        return
    raise UnknownViewError(
        f"unknown view {name!r}" + _suggest(name, scope.public_view_names())
        + ("" if scope.public_view_names() else f" (scope {scope.name!r} has no views)"),
        token,
    )
