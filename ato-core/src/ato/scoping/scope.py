"""Scope: one named config built from views, the command line and lazy views.

Application order (SPEC 3.3), once per process: non-lazy views by priority, then the CLI
assignments, then the ``with Scope.lazy():`` blocks, then lazy views by priority.  Every
write is recorded with its source so that ``manual --why KEY`` can explain the result.
"""

from __future__ import annotations

import sys
from _collections_abc import Mapping

from ato.adict import ADict
from ato.errors import AtoError, CLIError
from ato.grammar import Assign, Word, match_key
from ato.provenance import Recorder, Source
from ato.scoping import cli as _cli
from ato.scoping.fingerprint import runtime_fingerprint, static_fingerprint
from ato.terminal import did_you_mean

PRINT_PRIORITY = 1280


class View:
    """A registered view: a function (or mapping) that writes into the config.

    ``initial`` marks the ``Scope(config=...)`` view (already in the starting config);
    ``uses_lazy_block`` is learnt on the first run (the view entered ``Scope.lazy()``).
    """

    __slots__ = ("name", "body", "priority", "lazy", "default", "chain_with", "location",
                 "hidden", "initial", "uses_lazy_block")

    def __init__(self, name, body, priority=0, lazy=False, default=False, chain_with=(),
                 location=None, hidden=False, initial=False):
        self.name, self.body, self.priority, self.lazy = name, body, priority, lazy
        self.default, self.chain_with, self.location = default, chain_with, location
        self.hidden, self.initial, self.uses_lazy_block = hidden, initial, False

    def __repr__(self):
        return f"View({self.name!r}, priority={self.priority}, lazy={self.lazy})"


def _wraps(wrapper, func):
    """functools.wraps without importing functools at start-up."""
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(func, attr))
        except AttributeError:
            pass
    wrapper.__dict__.update(getattr(func, "__dict__", {}))
    wrapper.__wrapped__ = func
    return wrapper


_POSITIONAL, _KEYWORD = "pos", "kw"


def _parameters(func):
    """(positional names, positional-only count, keyword-only names, has **kwargs)."""
    func = getattr(func, "__func__", func)
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    names = code.co_varnames
    npos = code.co_argcount
    positional = list(names[:npos])
    kwonly = list(names[npos:npos + code.co_kwonlyargcount])
    has_varkw = bool(code.co_flags & 0x08)
    return positional, code.co_posonlyargcount, kwonly, has_varkw


class _Application:
    """State of one Scope application, consulted by ``Scope.lazy()``."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self.view: View | None = None
        self.replay = False


_current: _Application | None = None


class _LazyBlock:
    """``with Scope.lazy():`` — the body takes effect after the CLI assignments."""

    def __enter__(self):
        app = _current
        if app is None or app.view is None:
            raise AtoError("Scope.lazy() can only be used inside a view while a Scope "
                           "applies its views")
        self._app = app
        rec = app.recorder
        self._saved = (rec.discard, rec.source)
        if app.replay:
            rec.discard = False
            rec.source = Source("lazy block", app.view.name, app.view.location)
        else:
            app.view.uses_lazy_block = True
            rec.discard = True
        return self

    def __exit__(self, exc_type, exc, tb):
        rec = self._app.recorder
        rec.discard, rec.source = self._saved
        # First pass: the block only "ran" to be noticed; failures there (keys the CLI
        # has not set yet) are expected and the real run comes after the CLI.
        return (not self._app.replay) and exc_type is not None and issubclass(exc_type, Exception)


def _location(func) -> str | None:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


class _Injector:
    """Puts a config into a call: by the parameter named after the scope, else (plain
    Scope only) into the first positional parameter."""

    def __init__(self, func, name: str, fallback_first: bool):
        self.name = name
        self.mode = None  # None: not injected; ("pos", index, positional-only) or ("kw",)
        params = _parameters(func)
        if params is None:
            return
        positional, posonly, kwonly, has_varkw = params
        if name in positional:
            index = positional.index(name)
            self.mode = (_POSITIONAL, index, index < posonly)
        elif name in kwonly or (has_varkw and not fallback_first):
            self.mode = (_KEYWORD,)
        elif fallback_first and positional:
            self.mode = (_POSITIONAL, 0, posonly > 0)
            self.name = positional[0]

    def inject(self, args: tuple, kwargs: dict, config):
        mode = self.mode
        if mode is None or self.name in kwargs:
            return args, kwargs
        if mode[0] == _KEYWORD:
            return args, {**kwargs, self.name: config}
        index = mode[1]
        if len(args) >= index:
            return args[:index] + (config,) + args[index:], kwargs
        if mode[2]:
            raise TypeError(f"cannot inject {self.name!r}: pass the positional arguments before it")
        return args, {**kwargs, self.name: config}


class Scope:
    """A named config built from views, the command line and lazy views.

    >>> scope = Scope()
    >>> @scope.observe(default=True)
    ... def defaults(cfg):
    ...     cfg.lr = 0.001
    """

    registry: dict[str, Scope] = {}
    #: What to do with an unknown ``--flag`` after argparse: 'ignore', 'error' or 'merge'.
    unknown_external_literals = "ignore"

    def __init__(self, config=None, name: str = "config", use_external_parser: bool = False,
                 external_priority: int = -2, enable_override: bool = False):
        if name in Scope.registry and not enable_override:
            raise ValueError(
                f"a scope named {name!r} already exists; pick another name or pass "
                f"enable_override=True"
            )
        self.name = name
        self.views: dict[str, View] = {}
        self.manuals = ADict()
        self.use_external_parser = use_external_parser
        self.external_priority = external_priority
        self.fingerprints: dict[str, dict[str, str]] = {}
        self._initial = ADict.auto()
        if config is not None:
            if not isinstance(config, Mapping):
                raise TypeError(f"Scope(config=...) must be a mapping, got {type(config).__name__}")
            self._initial = ADict.auto(config)
            self.views["_default"] = View("_default", ADict(config), priority=-1, initial=True)
        self.views[_cli.PRINT_VIEW] = View(_cli.PRINT_VIEW, _print_view, PRINT_PRIORITY,
                                           lazy=True, hidden=True)
        self._defaults: list[str] = []
        self._config: ADict = self._initial.clone()
        self._built = False
        self._active = True
        self.writes: list = []
        Scope.registry[name] = self
        if use_external_parser:
            from ato.scoping import external_parser

            external_parser.install()

    # ------------------------------------------------------------------ registry
    @classmethod
    def initialize_registry(cls) -> None:
        """Forget every scope and the parsed command line (for tests and notebooks)."""
        cls.registry.clear()
        _cli.forget_parse()

    @classmethod
    def set_argv(cls, argv) -> None:
        """Make ``argv`` (a list of ``str``: views and ``key=value`` assignments) the
        command line every scope reads, instead of ``sys.argv[1:]``: e.g. what
        ``argparse``'s ``parse_known_args()`` left over, so a script's own options and the
        scopes' tokens share one command line.  Call it before the first config is built
        (before calling a decorated function or a search); ``None`` goes back to
        ``sys.argv``.  Raises ``TypeError`` when ``argv`` is a string or holds a non-string.
        """
        if argv is not None:
            if isinstance(argv, (str, bytes)) or not all(isinstance(t, str) for t in argv):
                raise TypeError(f"Scope.set_argv takes a list of str tokens (such as "
                                f"parse_known_args()'s leftovers), got {argv!r}")
        _cli.set_argv(None if argv is None else list(argv))

    @classmethod
    def override(cls, scope: Scope) -> None:
        cls.registry[scope.name] = scope

    def public_view_names(self) -> list[str]:
        return [n for n, v in self.views.items() if not v.hidden and not n.startswith("_")]

    # ------------------------------------------------------------------ views
    def observe(self, field: str | None = None, config: Mapping | None = None, priority: int = 0,
                lazy: bool = False, default: bool = False, chain_with=None):
        """Register a view: ``@scope.observe(...)`` on a function, or a mapping with
        ``scope.observe('name', config={...})``."""
        chain = (chain_with,) if isinstance(chain_with, str) else tuple(chain_with or ())
        if config is not None:
            if field is None:
                raise ValueError("observe(config=...) needs a field name for the view")
            if not isinstance(config, Mapping):
                raise TypeError(f"observe(config=...) must be a mapping, got {type(config).__name__}")
            self._register(View(field, ADict(config), priority, lazy, default, chain,
                                _caller_location()))  # where it was registered
            return None

        def decorator(func):
            name = field or func.__name__
            self._register(View(name, func, priority, lazy, default, chain, _location(func)))
            return func

        return decorator

    def _register(self, view: View) -> None:
        if view.name == _cli.PRINT_VIEW:
            raise ValueError("'print' is reserved for the built-in print command")
        if view.name == "manual":
            raise ValueError("'manual' is reserved for the built-in manual command (it may "
                             "stand anywhere on the command line)")
        self.views[view.name] = view
        if view.default and view.name not in self._defaults:
            self._defaults.append(view.name)
        elif not view.default and view.name in self._defaults:
            self._defaults.remove(view.name)

    def manual(self, func=None, *, manual: Mapping | None = None):
        """Document config keys: ``@scope.manual`` on a function that fills the manual, or
        ``scope.manual(manual={...})``.  The decorated function is returned unchanged."""
        if manual is not None:
            self.manuals.update(manual, recurrent=True)
            return None
        if func is None:
            return lambda f: self.manual(f)
        doc = ADict()
        func(doc)
        self.manuals.update(doc, recurrent=True)
        return func

    # ------------------------------------------------------------------ application
    @property
    def config(self) -> ADict:
        return self._config

    @config.setter
    def config(self, value) -> None:
        self._config = value if isinstance(value, ADict) else ADict(value)

    def assign(self, names) -> list[str]:
        """The views applied for ``names`` (defaults first, chains expanded, no repeats)."""
        order: list[str] = []
        visiting: set = set()  # views whose chains are being expanded: a cycle stops here

        def add(name, token, parent=None):
            if name in order or name in visiting:
                return
            view = self.views.get(name)
            if view is None:
                hint = did_you_mean(name, self.public_view_names())
                if parent is None:
                    raise CLIError(f"unknown view {name!r}{hint}", token)
                raise AtoError(f"view {parent!r} has chain_with={name!r}, but scope "
                               f"{self.name!r} has no view {name!r}{hint}")
            visiting.add(name)
            for chained in view.chain_with:
                add(chained, token, name)
            visiting.discard(name)
            order.append(name)

        for name in self._defaults:
            add(name, name)
        for name in names:
            add(name, name)
        return order

    def apply(self, argv: list[str] | None = None) -> ADict:
        """Build the config from scratch: with ``argv`` (a list of CLI tokens for this
        scope) or, when ``None``, this scope's share of the process command line."""
        if argv is None:
            items = _route_process_cli()[self.name]
        else:
            from ato.grammar import parse_args

            items = _cli.route(parse_args(argv), {self.name: self})[self.name]
        return self._apply(items)

    def build(self) -> ADict:
        """The config, built from the process command line on first use — as for a
        decorated function: ``manual`` prints and exits, a bad command line is one line on
        stderr and exit status 2 (searches build their base config this way)."""
        return _run_cli_phase(self, "build")

    def _apply(self, items: list, resolve_uris: bool = True) -> ADict:
        global _current
        config = self._initial.clone()
        self._config = config
        words = [i.name for i in items if isinstance(i, Word)]
        assigns = [i for i in items if isinstance(i, Assign)]
        order = self.assign(words)
        views = [self.views[n] for n in order if not self.views[n].initial]
        eager = sorted((v for v in views if not v.lazy), key=lambda v: v.priority)
        lazy = sorted((v for v in views if v.lazy), key=lambda v: v.priority)
        recorder = Recorder(config)
        app = _Application(recorder)
        previous, _current = _current, app
        try:
            with recorder:
                for view in eager:
                    view.uses_lazy_block = False
                    self._run_view(app, view, config, "view")
                for item in assigns:
                    recorder.source = Source("CLI", item.token)
                    _assign_path(config, item)
                app.replay = True
                for view in eager:
                    if view.uses_lazy_block:
                        recorder.discard = True
                        try:
                            self._run_view(app, view, config, "view", keep_source=True)
                        finally:
                            recorder.discard = False
                app.replay = False
                for view in lazy:
                    self._run_view(app, view, config, "lazy view")
                if resolve_uris and mentions_uri(config):
                    from ato.tracking.uris import resolve_config_uris

                    resolve_config_uris(config, recorder)
        finally:
            _current = previous
        config._finish_build()
        self.writes = recorder.writes
        self._built = True
        return config

    def _run_view(self, app, view: View, config: ADict, kind: str, keep_source=False) -> None:
        app.view = view
        if not keep_source:
            app.recorder.source = Source(kind if not isinstance(view.body, Mapping)
                                         else "mapping view", view.name, view.location)
        if isinstance(view.body, Mapping):
            config.update(view.body)
        elif view.body is _print_view:
            _print_view(config, self)
        else:
            view.body(config)
        app.view = None

    # ------------------------------------------------------------------ decorating
    def __call__(self, func):
        injector = _Injector(func, self.name, fallback_first=True)

        def wrapper(*args, **kwargs):
            if not self._active:
                return func(*args, **kwargs)
            config = _run_cli_phase(self, func.__name__)
            args, kwargs = injector.inject(args, kwargs, config)
            return func(*args, **kwargs)

        _wraps(wrapper, func)
        wrapper.scope = self
        return wrapper

    def __enter__(self) -> ADict:
        return _run_cli_phase(self, "with")

    def __exit__(self, *exc):
        return False

    def pause(self):
        scope = self

        class _Pause:
            def __enter__(self_):
                self_.was = scope._active
                scope._active = False

            def __exit__(self_, *exc):
                scope._active = self_.was
                return False

        return _Pause()

    def activate(self) -> None:
        self._active = True

    def deactivate(self) -> None:
        self._active = False

    @staticmethod
    def lazy(with_compile: bool = False, priority: int = 1) -> _LazyBlock:
        """Inside a view: ``with Scope.lazy():`` runs its body after the CLI assignments."""
        if with_compile:
            raise AtoError("Scope.lazy(with_compile=True) is not supported; register a "
                           "lazy view with @scope.observe(lazy=True) instead")
        return _LazyBlock()

    # ------------------------------------------------------------------ explanations
    def explain(self, key: str | None = None, prefix: str | None = None) -> str:
        """Why each key has its value: the chain of writes (``manual --why``)."""
        from ato.provenance import explain, leaf_paths

        keys = [key] if key else leaf_paths(self._config)
        return "\n".join(explain(self.writes, self._config, k, prefix) for k in keys)

    # ------------------------------------------------------------------ fingerprints
    def trace(self, trace_id: str | None = None):
        """Record a static (code) fingerprint of the function, then behave like ``@scope``."""

        def decorator(func):
            tid = trace_id or f"{func.__module__}.{func.__qualname__}"
            self.fingerprints.setdefault(tid, {})["static"] = static_fingerprint(func)
            return self(func)

        return decorator

    def runtime_trace(self, init_fn=None, inspect_fn=None, trace_id: str | None = None):
        """On each call record a fingerprint of the (optionally mapped) result."""

        def decorator(func):
            tid = trace_id or f"{func.__module__}.{func.__qualname__}"
            wrapped = self(func)

            def wrapper(*args, **kwargs):
                if init_fn is not None:
                    init_fn()
                result = wrapped(*args, **kwargs)
                observed = inspect_fn(result) if inspect_fn is not None else result
                self.fingerprints.setdefault(tid, {})["runtime"] = runtime_fingerprint(observed)
                return result

            return _wraps(wrapper, func)

        return decorator

    def __repr__(self):
        return f"Scope(name={self.name!r}, views={self.public_view_names()!r})"


def mentions_uri(value) -> bool:
    """Whether ``value`` (a config, mapping, list or scalar) holds an ``ato://`` string: the
    build then resolves them (:mod:`ato.tracking.uris`, imported only in that case).  A
    string starting ``ato:`` in any case (then not a space: ``'ato: note'`` is text) counts,
    so that a mistyped ``ato:/x`` or ``ATO://x`` is refused there rather than passed on as
    text."""
    if isinstance(value, str):
        return value[:4].lower() == "ato:" and value[4:5] not in ("", " ", "\t", "\n")
    data = getattr(value, "_data", value)  # an ADict, without counting a user access
    if isinstance(data, Mapping):
        return any(mentions_uri(v) for v in data.values())
    if isinstance(value, (list, tuple)):
        return any(mentions_uri(v) for v in value)
    return False


def _caller_location() -> str:
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _print_view(config, scope=None):
    print(config.to_xyz())
    sys.exit(0)


def _assign_path(config: ADict, item: Assign) -> None:
    node = config
    argument = getattr(item, "argument", None)
    for depth, part in enumerate(item.key[:-1]):
        part = match_key(node._data, part, item.token, ".".join(item.key[:depth]), argument)
        if part not in node._data:
            node[part] = ADict.auto()
        current = node._data[part]
        if not isinstance(current, ADict):
            where = ".".join(item.key[: depth + 1])
            from ato.representable import a_type

            raise CLIError(f"{where} is {a_type(current)}, not a mapping, so "
                           f"{'.'.join(item.key)} cannot be set (set {where} itself: "
                           f"{where}=<value>)", **item.where())
        node = current
    node[match_key(node._data, item.key[-1], item.token, ".".join(item.key[:-1]),
                   argument)] = _as_stored(item.value)


def _as_stored(value):
    """A command-line value as the config keeps it: tuples become lists at every depth
    (the store rule of ADict converts only the outer one)."""
    if isinstance(value, (list, tuple)):
        return [_as_stored(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items()}
    return value


def _route_process_cli(scopes: dict | None = None) -> dict[str, list]:
    """Route the process command line among ``scopes`` (default: every registered scope)."""
    return _cli.route(_cli.invocation().items, scopes or dict(Scope.registry))


def _run_cli_phase(scope: Scope, trigger: str) -> ADict:
    """Build ``scope`` from the process command line (handling ``manual``) once."""
    if scope._built:
        return scope._config
    try:
        inv = _cli.invocation()
        if inv.manual:
            from ato.scoping.manual import run_manual

            run_manual(inv, trigger)  # exits
        routed = _route_process_cli()
        scope._apply(routed.get(scope.name, []))
    except CLIError as e:
        _fail(_parser_not_run_yet(e, trigger))
    except AtoError as e:
        _fail(e)
    return scope._config


def _parser_not_run_yet(error: CLIError, trigger: str) -> CLIError:
    """A ``--flag`` refused while a scope waits for an external parser that has not run:
    the config is being built before ``parser.parse_args()``, so say to call it first."""
    token = error.token or ""
    if not (token.startswith("-") and _cli.awaiting_external_parser()):
        return error
    when = {"with": "on entering `with scope:`", "build": "by scope.build()"}.get(
        trigger, f"by calling {trigger}()")
    return CLIError(
        f"an option for your argument parser, but the config is being built {when} before "
        f"parser.parse_args() ran (Scope(use_external_parser=True) hands the command line to "
        f"Ato only once parse_args() has parsed it): call parser.parse_args() first, e.g. at "
        f"module level or in main() before {trigger}() (docs/config.md#argparse)",
        token, argument=error.argument)


def _fail(error: AtoError):
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "ato"
    print(f"{prog}: error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)
