"""The ``manual`` command: the applying order of views, the user manuals, and
``--why KEY`` / ``--why-all`` explanations of how each value came to be."""

from __future__ import annotations

import sys

from ato import xyz
from ato.errors import CLIError
from ato.grammar import Word
from ato.scoping import cli as _cli

SEPARATOR = "-" * 50
ARROW = " \u2192 "


def applying_order(scope, trigger: str) -> list[str]:
    views = [v for v in scope.views.values() if not v.hidden]
    eager = sorted((v for v in views if not v.lazy), key=lambda v: v.priority)
    lazy = sorted((v for v in views if v.lazy), key=lambda v: v.priority)
    return [v.name for v in eager] + ["(CLI Inputs)"] + [v.name for v in lazy] + [trigger]


def render(scopes, trigger: str) -> str:
    """The manual of every scope, in the layout of the README."""
    lines = []
    for scope in scopes:
        lines += [SEPARATOR, f'[Scope "{scope.name}"]', "(The Applying Order of Views)",
                  ARROW.join(applying_order(scope, trigger)), "", "(User Manuals)"]
        entries = {f"{scope.name}.{k}": v for k, v in scope.manuals._data.items()}
        lines.append(xyz.dumps(entries))
    lines.append(SEPARATOR)
    return "\n".join(lines)


def explain(scopes: dict, inv, trigger: str) -> str:
    routed = _cli.route(inv.items, scopes)
    for name in routed:  # manual explains; a `print` beside it would print and exit first
        routed[name] = [i for i in routed[name]
                        if not (isinstance(i, Word) and i.name == _cli.PRINT_VIEW)]
    for name, scope in scopes.items():
        scope._apply(routed[name], resolve_uris=False)  # show ato:// values as written
    blocks = []
    multi = len(scopes) > 1
    if inv.why_all:
        for name, scope in scopes.items():
            blocks.append(scope.explain(prefix=name if multi else None))
    for key, argument in zip(inv.why, inv.why_arguments):
        head, _, rest = key.partition(".")
        if multi:
            if head not in scopes or not rest:
                raise CLIError(f"name the scope first: {', '.join(s + '.' + key for s in scopes)}",
                               key, argument=argument)
            blocks.append(scopes[head].explain(rest, prefix=head))
        else:
            (name, scope), = scopes.items()
            if head == name and rest and head not in scope.config:
                key = rest
            blocks.append(scope.explain(key))
    return "\n".join(blocks)


def run_manual(inv, trigger: str, scopes: dict | None = None) -> None:
    from ato.scoping.scope import Scope

    scopes = scopes or dict(Scope.registry)
    if inv.why or inv.why_all:
        print(explain(scopes, inv, trigger))
    else:
        print(render(list(scopes.values()), trigger))
    sys.stdout.flush()
    raise SystemExit(0)
