"""MultiScope: several independent config namespaces for one function.

Each scope keeps its own views, priorities, lazy views and manual; the command line is
routed among the MultiScope's scopes by scope-name prefix (``model.lr=0.1``) or by which
scope defines a bare view name.  Scopes created elsewhere stay registered (the original
cleared the registry) but take no part.  The configs are built once per process.
"""

from __future__ import annotations

from ato.errors import AtoError
from ato.scoping.scope import Scope, _fail, _Injector, _route_process_cli, _wraps


class MultiScope:
    """``MultiScope(model_scope, data_scope)``; decorate ``def train(model, data)``."""

    def __init__(self, *scopes: Scope):
        names = [s.name for s in scopes]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"MultiScope got several scopes named {sorted(duplicates)}")
        self.scopes = list(scopes)
        for scope in scopes:  # created elsewhere and replaced since: use these
            Scope.registry[scope.name] = scope

    def __call__(self, func):
        injectors = [(s, _Injector(func, s.name, fallback_first=False)) for s in self.scopes]

        def wrapper(*args, **kwargs):
            configs = self.build(func.__name__)
            for scope, injector in injectors:
                args, kwargs = injector.inject(args, kwargs, configs[scope.name])
            return func(*args, **kwargs)

        _wraps(wrapper, func)
        wrapper.scope = self
        return wrapper

    def build(self, trigger: str = "main") -> dict:
        """Build every scope once (from the process command line) and return the configs."""
        if not all(s._built for s in self.scopes):
            try:
                from ato.scoping import cli as _cli

                inv = _cli.invocation()
                mine = {s.name: s for s in self.scopes}
                if inv.manual:
                    from ato.scoping.manual import run_manual

                    run_manual(inv, trigger, mine)
                routed = _route_process_cli(mine)
                for scope in self.scopes:
                    if not scope._built:
                        scope._apply(routed.get(scope.name, []))
            except AtoError as e:
                _fail(e)
        return {s.name: s.config for s in self.scopes}

    def __repr__(self):
        return f"MultiScope({', '.join(s.name for s in self.scopes)})"
