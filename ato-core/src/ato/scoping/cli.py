"""The process command line: parsed once, routed to the registered scopes.

Routing (SPEC 2.5): with one registered scope every token goes to it.  With several, a
token is routed by its first dotted component (``model.lr=0.1``, ``data.imagenet``); a
bare view name goes to the one scope that defines it.
"""

from __future__ import annotations

import sys

from ato.errors import CLIError, UnknownViewError
from ato.grammar import Assign, Word, parse_pieces, split_items
from ato.terminal import did_you_mean

PRINT_VIEW = "print"


class Invocation:
    """What the command line asks for: a plain run, ``manual`` or ``manual --why``
    (``why_arguments[i]`` is the argument number of the key ``why[i]``)."""

    __slots__ = ("items", "manual", "why", "why_all", "why_arguments")

    def __init__(self, items: list, manual: bool = False, why=None, why_all: bool = False,
                 why_arguments=None):
        self.items, self.manual, self.why, self.why_all = items, manual, why or [], why_all
        self.why_arguments = why_arguments or [None] * len(self.why)


MANUAL_WORDS = ("manual", "-h", "--help")


def wants_manual(argv: list[str]) -> bool:
    """Whether the command line asks for ``manual`` (or ``-h``/``--help``), wherever in it
    (an item of a multi-item argument too)."""
    return any(token in MANUAL_WORDS for arg in argv for token in arg.split())


_override: list[str] | None = None
_handed_off: list[str] | None = None
_handed_off_numbers: list | None = None
_cached: Invocation | None = None


def set_argv(argv: list[str] | None) -> None:
    """Use ``argv`` instead of ``sys.argv[1:]`` (for programmatic use and tests)."""
    global _override, _cached, _handed_off, _handed_off_numbers
    _override = None if argv is None else list(argv)
    _handed_off = _handed_off_numbers = None
    _cached = None


def forget_parse() -> None:
    """Parse the command line again on next use (an explicit ``set_argv`` is kept)."""
    global _cached, _handed_off, _handed_off_numbers
    _cached = None
    _handed_off = _handed_off_numbers = None


def hand_off(argv: list[str], numbers: list | None = None) -> None:
    """Arguments left over by an external parser (argparse) become the Ato command line;
    ``numbers[i]`` is the position of ``argv[i]`` in ``sys.argv`` (``None`` where unknown)."""
    global _handed_off, _cached, _handed_off_numbers
    _handed_off = list(argv)
    _handed_off_numbers = None if numbers is None else list(numbers)
    _cached = None


def awaiting_external_parser() -> bool:
    """Whether a scope uses an external parser (argparse) that has not parsed the command
    line yet, so flags on it are still the parser's."""
    if _handed_off is not None or _override is not None:
        return False
    from ato.scoping.scope import Scope

    return any(s.use_external_parser for s in Scope.registry.values())


def raw_argv() -> list[str]:
    if _handed_off is not None:
        return _handed_off
    if _override is not None:
        return _override
    return sys.argv[1:]


def argument_numbers(subset: list[str], argv: list[str]) -> list:
    """The number (``argv`` counted from 1) of each of ``subset``'s tokens, matched in order
    — what an external parser left over is a subsequence of the command line; ``None``
    for a token not found so."""
    numbers: list = []
    j = 0
    for token in subset:
        k = j
        while k < len(argv) and argv[k] != token:
            k += 1
        if k < len(argv):
            numbers.append(k + 1)
            j = k + 1
        else:
            numbers.append(None)
    return numbers


def invocation() -> Invocation:
    global _cached
    if _cached is None:
        numbers = _handed_off_numbers if _handed_off is not None else None
        _cached = parse_invocation(raw_argv(), numbers)
    return _cached


def parse_invocation(argv: list[str], numbers: list | None = None) -> Invocation:
    """Parse a command line (``sys.argv[1:]``); ``numbers[i]`` is the number error messages
    give ``argv[i]`` (by default its index in ``sys.argv``).  ``manual``, ``-h``/``--help``,
    ``--why KEY`` and ``--why-all`` are items like any other: found after the arguments
    are split at white space, so ``"lr=0.1 manual"`` asks for the manual."""
    pieces = split_items(argv, numbers)
    manual = any(p.token in MANUAL_WORDS for p in pieces)
    # `manual` may stand anywhere, as `print` does; -h/--help too
    pieces = [p for p in pieces if p.token not in MANUAL_WORDS]
    why: list[str] = []
    why_arguments: list = []
    why_all = False
    if manual:
        rest = []
        i = 0
        while i < len(pieces):
            token = pieces[i].token
            if token == "--why-all":
                why_all = True
            elif token == "--why":
                if i + 1 >= len(pieces) or "=" in pieces[i + 1].token:
                    raise pieces[i].error("--why needs a key to explain: write --why model.lr "
                                          "(or --why-all for every key)")
                why.append(pieces[i + 1].token)
                why_arguments.append(pieces[i + 1].argument)
                i += 1
            elif token.startswith("--why="):
                if not token.split("=", 1)[1]:
                    raise pieces[i].error("--why= needs a key to explain: write "
                                          "--why=model.lr (or --why-all for every key)")
                why.append(token.split("=", 1)[1])
                why_arguments.append(pieces[i].argument)
            else:
                rest.append(pieces[i])
            i += 1
        pieces = rest
    else:
        for piece in pieces:
            token = piece.token
            if token in ("--why", "--why-all") or token.startswith("--why="):
                raise piece.error(f"{token.partition('=')[0]} explains keys for manual: add "
                                  f"the word manual (python train.py manual --why lr ...)")
    return Invocation(parse_pieces(pieces), manual, why, why_all, why_arguments)


def route(items: list, scopes: dict) -> dict[str, list]:
    """Split parsed items between ``scopes`` (name → Scope); keys lose their scope prefix."""
    routed: dict[str, list] = {name: [] for name in scopes}
    if len(scopes) == 1:
        (name, scope), = scopes.items()
        for item in items:
            if isinstance(item, Word):
                _check_view(scope, item.name, item)
            routed[name].append(item)
        return routed
    for item in items:
        head = item.key[0] if isinstance(item, Assign) else item.name.split(".", 1)[0]
        if isinstance(item, Assign):
            if head not in scopes:
                full = ".".join(item.key)
                raise CLIError(
                    f"with several scopes a key starts with a scope name "
                    f"({', '.join(f'{s}.{full}' for s in scopes)})"
                    + did_you_mean(head, scopes), **item.where())
            if len(item.key) == 1:
                raise CLIError(f"give a key inside scope {head!r}, e.g. {head}.lr=0.1",
                               **item.where())
            routed[head].append(Assign(item.key[1:], item.value, item.token, item.argument,
                                       item.context))
            continue
        if "." in item.name and head in scopes:
            view = item.name.split(".", 1)[1]
            _check_view(scopes[head], view, item)
            routed[head].append(Word(view, item.token, item.argument, item.context))
            continue
        if item.name == PRINT_VIEW:
            raise CLIError(f"with several scopes, say which to print: "
                           f"{', '.join(s + '.print' for s in scopes)}", **item.where())
        owners = [s for s, scope in scopes.items() if item.name in scope.views]
        if len(owners) == 1:
            routed[owners[0]].append(item)
        elif len(owners) > 1:
            raise CLIError(
                f"view {item.name!r} is defined by scopes {', '.join(owners)}; "
                f"write {' or '.join(o + '.' + item.name for o in owners)}",
                **item.where())
        else:
            names = {f"{s}.{v}" for s, scope in scopes.items() for v in scope.public_view_names()}
            plain = {v for scope in scopes.values() for v in scope.public_view_names()}
            raise UnknownViewError(
                f"unknown view {item.name!r}"
                + (did_you_mean(item.name, names | plain) or _known(item.name, sorted(names))),
                **item.where())
    return routed


def _known(name: str, views: list) -> str:
    """What to do when nothing is close to ``name``: the views there are, and the form of
    an assignment (a bare word is often a value missing its ``key=``)."""
    shown = ", ".join(views[:8]) + (", ..." if len(views) > 8 else "")
    listing = f"views: {shown}" if views else "no views are defined"
    return f" ({listing}; to set a value write {name}=<value>)"


def _check_view(scope, name: str, item) -> None:
    if name == PRINT_VIEW or name in scope.views:
        return
    token = item.token
    names = scope.public_view_names()
    hint = did_you_mean(name, names)
    if not hint:
        hint = (_known(token, sorted(names)) if names else
                f" (scope {scope.name!r} has no views; to set a value write {token}=<value>)")
    raise UnknownViewError(f"unknown view {name!r}" + hint, **item.where())
