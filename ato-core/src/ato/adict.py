"""ADict: the attribute-access mapping every Ato config is made of.

Reads are as fast as a plain attribute read.  The trick: values live in ``_data``; the first
time a key is read it is also placed in the instance ``__dict__``, where Python's own
attribute lookup finds it next time without calling into Python code.  A key is therefore
"accessed" exactly when it is in ``__dict__`` (or, for keys that cannot live there, in
``_accessed_extra``), which makes :attr:`ADict.accessed_keys` free to maintain.

Writes go through ``__setattr__``/``__setitem__``, which convert values (mappings become
ADicts, tuples become lists), refuse writes to frozen configs, and tell the provenance
recorder (:mod:`ato.provenance`) about the write while a Scope is building the config.
"""

from __future__ import annotations

from _collections_abc import (  # collections.abc, minus its import cost
    Iterable,
    Mapping,
    MutableMapping,
)

from ato.errors import FrozenError

__all__ = ["ADict"]

_ATOMIC = frozenset({int, float, str, bool, type(None), bytes, complex})
_MISSING = object()

#: Called as ``hook(adict, key, new_value, created)`` before a write while a Scope builds a
#: config; returning ``False`` drops the write.  ``None`` (the normal case) costs one global
#: read per write.
_write_hook = None


class _Auto:
    """Picklable marker factory: missing keys become ``ADict.auto()`` children."""

    __slots__ = ()

    def __call__(self):
        return ADict.auto()

    def __repr__(self):
        return "ADict.auto"

    def __eq__(self, other):
        return isinstance(other, _Auto)

    def __hash__(self):
        return hash(_Auto)

    def __reduce__(self):
        return (_Auto, ())


def _deepcopy(value, memo=None):
    import copy

    return copy.deepcopy(value, memo)


def _convert(value):
    """Store rule of SPEC 1.3: mappings become new ADicts, lists/tuples new lists."""
    t = type(value)
    if t in _ATOMIC:
        return value
    if isinstance(value, ADict):
        return value._clone_shallow_structure()
    if isinstance(value, Mapping):
        return ADict._from_mapping(value)
    if t is list or t is tuple or isinstance(value, (list, tuple)):
        return [
            ADict._from_mapping(v) if isinstance(v, Mapping) and not isinstance(v, ADict)
            else (v._clone_shallow_structure() if isinstance(v, ADict) else v)
            for v in value
        ]
    return value


def _frozen_view(value):
    """What a read of a frozen ADict returns for a list: a fresh copy."""
    if type(value) is list:
        return [_frozen_view(v) for v in value]
    return value


def _freeze_tree(value, flag: bool):
    if isinstance(value, ADict):
        value._set_frozen(flag)
    elif type(value) is list:
        for v in value:
            _freeze_tree(v, flag)


def _plain(value):
    if isinstance(value, ADict):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_writable(adict: ADict, key) -> None:
    if adict._frozen:
        raise FrozenError(f"cannot write key {key!r}: this ADict is frozen (call .defrost() first)")


class ADict(MutableMapping):
    """A mutable mapping with attribute access, auto-nesting, freezing and a structural hash.

    >>> cfg = ADict(lr=0.1, model={'depth': 50})
    >>> cfg.model.depth
    50
    """

    __slots__ = ("_data", "_factory", "_frozen", "_accessed_extra", "__dict__", "__weakref__")

    # ------------------------------------------------------------------ construction
    def __init__(self, *mappings, default=_MISSING, **kwargs):
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_factory", None if default is _MISSING else default)
        object.__setattr__(self, "_frozen", False)
        object.__setattr__(self, "_accessed_extra", set())
        data = self._data
        for m in mappings:
            if not isinstance(m, Mapping):
                try:
                    m = dict(m)
                except (TypeError, ValueError) as e:
                    raise TypeError(
                        f"ADict() positional arguments must be mappings or key/value pairs, "
                        f"got {type(m).__name__}: {e}"
                    ) from None
            for k, v in m.items():
                data[k] = _convert(v)
        for k, v in kwargs.items():
            data[k] = _convert(v)

    @classmethod
    def _from_mapping(cls, mapping: Mapping) -> ADict:
        new = cls.__new__(cls)
        object.__setattr__(new, "_factory", None)
        object.__setattr__(new, "_frozen", False)
        object.__setattr__(new, "_accessed_extra", set())
        atomic = _ATOMIC
        data = {}
        for k, v in mapping.items():
            data[k] = v if type(v) in atomic else _convert(v)
        object.__setattr__(new, "_data", data)
        return new

    def _clone_shallow_structure(self) -> ADict:
        """A new ADict with the same keys, factory and frozen flag (values converted)."""
        new = type(self)._from_mapping(self._data)
        object.__setattr__(new, "_factory", self._factory)
        if self._frozen:
            new._set_frozen(True)
        return new

    @classmethod
    def auto(cls, *mappings, **kwargs) -> ADict:
        """An ADict whose missing keys spring into existence as nested auto ADicts."""
        return cls(*mappings, default=_Auto(), **kwargs)

    @classmethod
    def fromkeys(cls, keys: Iterable, value=None) -> ADict:
        return cls({k: value for k in keys})

    # ------------------------------------------------------------------ reads
    def __getattr__(self, key):
        # Only reached when the key is not cached in __dict__ yet (its first read).
        if key in ADict.__slots__:
            raise AttributeError(key)
        data = self._data
        if key in data:
            return self._mark(key, data[key])
        if key[:2] == "__" and key[-2:] == "__":
            raise AttributeError(key)
        if self._factory is None or self._frozen:
            raise AttributeError(key)
        return self._mark(key, self._create_default(key))

    def __getitem__(self, key):
        if type(key) is list or (type(key) is tuple and key not in self._data):
            return [self[k] for k in key]
        data = self._data
        if key in data:
            return self._mark(key, data[key])
        if self._factory is None or self._frozen:
            raise KeyError(f'The key "{key}" does not exist.')
        return self._mark(key, self._create_default(key))

    def _mark(self, key, value):
        """Record ``key`` as accessed and return what a read of it yields."""
        if self._frozen and type(value) is list:
            self._accessed_extra.add(key)
            return _frozen_view(value)
        if type(key) is str and not hasattr(type(self), key):
            self.__dict__[key] = value
        else:
            self._accessed_extra.add(key)
        return value

    def _create_default(self, key):
        factory = self._factory
        if isinstance(factory, _Auto):
            value = type(self).auto()
        elif callable(factory):
            value = _convert(factory())
        else:
            import copy

            value = _convert(copy.deepcopy(factory))
        hook = _write_hook
        if hook is not None and hook(self, key, value, True) is False:
            return value  # a discarded pass: hand out a detached child
        self._data[key] = value
        return value

    def get(self, key, default=None):
        data = self._data
        if key in data:
            return self._mark(key, data[key])
        return default

    def pop(self, key, default=None):
        data = self._data
        if key not in data:
            return default
        value = self.get(key)
        del self[key]
        return value

    def __contains__(self, key):
        return key in self._data

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return iter(self._data)

    def keys(self):
        return self._data.keys()

    def get_value_by_name(self, dotted: str):
        """Nested lookup along a dotted path: ``cfg.get_value_by_name('model.depth')``."""
        node = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def set_value_by_name(self, dotted: str, value) -> None:
        """Nested write along a dotted path, creating (or replacing non-mapping) levels."""
        parts = str(dotted).split(".")
        node = self
        for part in parts[:-1]:
            if not isinstance(node._data.get(part), ADict):
                node[part] = ADict()
            node = node._data[part]
        node[parts[-1]] = value

    def raw(self, name, default=None) -> ADict:
        return ADict(key=name, value=self.get(name, default))

    # ------------------------------------------------------------------ writes
    def __setattr__(self, key, value):
        if self._frozen:
            _check_writable(self, key)
        if type(value) not in _ATOMIC:
            value = _convert(value)
        hook = _write_hook
        if hook is not None and hook(self, key, value, False) is False:
            return
        self._data[key] = value
        cache = self.__dict__
        if key in cache:
            cache[key] = value

    def __setitem__(self, key, value):
        if type(key) is list or (type(key) is tuple and key not in self._data):
            if isinstance(value, (list, tuple)):
                if len(value) != len(key):
                    raise ValueError(
                        f"cannot assign {len(value)} values to {len(key)} keys {list(key)!r}"
                    )
                for k, v in zip(key, value):
                    self[k] = v
            else:
                for k in key:
                    self[k] = value
            return
        ADict.__setattr__(self, key, value)  # one write path for items and attributes

    def __delitem__(self, key):
        _check_writable(self, key)
        if key not in self._data:
            raise KeyError(f'The key "{key}" does not exist.')
        hook = _write_hook
        if hook is not None and hook(self, key, _MISSING, False) is False:
            return
        del self._data[key]
        if type(key) is str:
            self.__dict__.pop(key, None)
        self._accessed_extra.discard(key)

    def __delattr__(self, key):
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def update(self, m=None, /, recurrent: bool = False, **kwargs) -> ADict:
        """Assign every key of ``m`` then of ``kwargs``; ``recurrent=True`` merges mappings
        key by key instead of replacing them.  Returns ``self``."""
        if self._frozen and (m or kwargs):
            _check_writable(self, next(iter(m or kwargs)))
        for source in (m, kwargs):
            if not source:
                continue
            if isinstance(source, ADict):
                items = source._data.items()
            elif isinstance(source, Mapping):
                items = source.items()
            else:
                items = dict(source).items()
            data = self._data
            cache = self.__dict__
            for k, v in items:
                if type(v) in _ATOMIC and _write_hook is None and type(k) is str:
                    data[k] = v  # fast path: a scalar needs no conversion
                    if k in cache:
                        cache[k] = v
                    continue
                if recurrent and isinstance(v, Mapping):
                    current = data.get(k, _MISSING)
                    if isinstance(current, ADict):
                        current.update(v, recurrent=True)
                        continue
                self[k] = v
        return self

    def update_if_absent(self, m=None, /, recurrent: bool = False, **kwargs) -> ADict:
        """Add only the keys that are missing (descending into nested mappings)."""
        for source in (m, kwargs):
            if not source:
                continue
            items = source.items() if isinstance(source, Mapping) else dict(source).items()
            for k, v in items:
                current = self._data.get(k, _MISSING)
                if current is _MISSING:
                    self[k] = v
                elif isinstance(v, Mapping) and isinstance(current, ADict):
                    current.update_if_absent(v)
        return self

    def clear(self):
        for k in list(self._data):
            del self[k]

    def setdefault(self, key, default=None):
        if key not in self._data:
            self[key] = default
        return self[key]

    def filter(self, fn) -> ADict:
        """Keep only the items for which ``fn(key, value)`` is true (in place)."""
        for k in [k for k, v in self._data.items() if not fn(k, v)]:
            del self[k]
        return self

    def replace_keys(self, src_keys, tgt_keys) -> ADict:
        src_keys, tgt_keys = list(src_keys), list(tgt_keys)
        if len(src_keys) != len(tgt_keys):
            raise IndexError(
                f"replace_keys got {len(src_keys)} source keys and {len(tgt_keys)} target keys"
            )
        for s, t in zip(src_keys, tgt_keys):
            if s not in self._data:
                raise KeyError(f'The key "{s}" does not exist.')
            value = self._data[s]
            del self[s]
            self[t] = value
        return self

    # ------------------------------------------------------------------ default factory
    def set_default(self, default) -> ADict:
        object.__setattr__(self, "_factory", default)
        return self

    def remove_default(self) -> ADict:
        object.__setattr__(self, "_factory", None)
        return self

    def get_default(self):
        return self._factory

    def _finish_build(self) -> None:
        """A Scope finished building this tree: auto-nesting goes off (typos in training
        code raise instead of yielding ``{}``) and reads by views stop counting as
        accesses, so :meth:`get_minimal_config` reports what the program itself read."""
        if isinstance(self._factory, _Auto):
            object.__setattr__(self, "_factory", None)
        self.__dict__.clear()
        self._accessed_extra.clear()
        for v in self._data.values():
            if isinstance(v, ADict):
                v._finish_build()

    # ------------------------------------------------------------------ freezing
    def freeze(self) -> ADict:
        """Make this tree read-only: writes raise :class:`FrozenError`, reads stay fast."""
        self._set_frozen(True)
        return self

    def defrost(self) -> ADict:
        self._set_frozen(False)
        return self

    def convert_to_immutable(self) -> ADict:
        return self.freeze()

    def _set_frozen(self, flag: bool) -> None:
        object.__setattr__(self, "_frozen", flag)
        if flag:
            cache = self.__dict__
            for k in [k for k, v in cache.items() if type(v) is list]:
                del cache[k]
                self._accessed_extra.add(k)
        for v in self._data.values():
            _freeze_tree(v, flag)

    @property
    def frozen(self) -> bool:
        return self._frozen

    # ------------------------------------------------------------------ accessed keys
    @property
    def accessed_keys(self) -> set:
        return set(self.__dict__) | self._accessed_extra

    def get_minimal_config(self) -> ADict:
        """A new ADict of only the keys that were read (recursively), in original order."""
        accessed = self.accessed_keys
        out = ADict()
        for k, v in self._data.items():
            if k in accessed:
                out._data[k] = v.get_minimal_config() if isinstance(v, ADict) else _deepcopy(v)
        return out

    # ------------------------------------------------------------------ structural hash
    def _flatten_types(self, prefix: str, out: dict) -> None:
        for k, v in self._data.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, ADict):
                v._flatten_types(path, out)
            elif isinstance(v, dict):
                ADict._from_mapping(v)._flatten_types(path, out)
            else:
                out.pop(path, None)
                out[path] = type(v).__name__

    def get_structural_repr(self) -> ADict:
        out: dict = {}
        self._flatten_types("", out)
        return ADict._from_mapping(out)

    def get_structural_hash(self) -> str:
        """SHA-1 over the sorted ``[path:type]`` pairs; values do not matter, types do."""
        out: dict = {}
        self._flatten_types("", out)
        text = "".join(f"[{p}:{out[p]}]" for p in sorted(out))
        import hashlib

        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self._data.items()}

    def json(self, **kwargs) -> str:
        """This ADict as JSON text (``kwargs`` go to ``json.dumps``).

        Raises:
            UnrepresentableError: a value JSON cannot hold (inf, nan, an int key, a date...)
                with its key path, as ``dump('x.json')`` does; ``allow_nan=True`` and
                ``default=`` loosen this as they do for ``json.dumps``.
        """
        import json

        from ato.representable import json_checked

        return json.dumps(json_checked(self.to_dict(), None, kwargs), **kwargs)

    def to_xyz(self, format_dict=None) -> str:
        from ato import xyz

        return xyz.dumps(self, format_dict=format_dict)

    def clone(self) -> ADict:
        return _deepcopy(self)

    def copy(self) -> ADict:
        return self.__copy__()

    def __copy__(self):
        new = type(self).__new__(type(self))
        object.__setattr__(new, "_data", dict(self._data))
        object.__setattr__(new, "_factory", self._factory)
        object.__setattr__(new, "_frozen", False)
        object.__setattr__(new, "_accessed_extra", set())
        return new

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        object.__setattr__(new, "_factory", _deepcopy(self._factory, memo))
        object.__setattr__(new, "_frozen", False)
        object.__setattr__(new, "_accessed_extra", set())
        data = {}
        for k, v in self._data.items():
            if type(v) in _ATOMIC:
                data[k] = v
            else:
                v = _deepcopy(v, memo)
                if isinstance(v, ADict):
                    v._set_frozen(False)
                data[k] = v
        object.__setattr__(new, "_data", data)
        return new

    def __reduce__(self):
        return (_rebuild, (type(self), self._data, self._factory, self._frozen))

    def __or__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        new = ADict(other)
        new.update(self._data)
        return new

    def __ior__(self, other):
        self.update(other)
        return self

    def __eq__(self, other):
        if isinstance(other, ADict):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # mutable

    def __repr__(self):
        return repr(self._data)

    __str__ = __repr__

    def __dir__(self):
        return list(super().__dir__()) + [k for k in self._data if isinstance(k, str)]

    def suggest(self, key) -> str | None:
        """The existing key closest to ``key``, for "did you mean" messages."""
        import difflib

        names = [k for k in self._data if isinstance(k, str)]
        match = difflib.get_close_matches(str(key), names, n=1)
        return match[0] if match else None

    # ------------------------------------------------------------------ files
    @classmethod
    def from_file(cls, path) -> ADict | list:
        """Load a config file, choosing the format plugin by the file's suffix.

        Returns an ADict, or a list of ADicts for a file holding several (``.jsonl``).
        Raises :class:`~ato.errors.ConfigFileNotFoundError` naming ``path`` when it does
        not exist, :class:`~ato.errors.ConfigFileError` (file, line, column) when it is
        malformed, and a :class:`LookupError` naming the distribution to install (or the
        broken plugin) when no format serves its suffix; all are
        :class:`~ato.errors.AtoError`, which ``ato`` subcommands print as one line.
        """
        from ato.plugins.manager import load_file

        return load_file(path)

    def load(self, path, **kwargs) -> ADict:
        """Replace this ADict's content with the top-level mapping of ``path``."""
        from ato.plugins.manager import load_file

        loaded = load_file(path, **kwargs)
        if not isinstance(loaded, Mapping):
            from ato.representable import a_type

            raise TypeError(f"{path}: the top level must be a mapping, not {a_type(loaded)}")
        for k in list(self._data):
            if k not in loaded:
                del self[k]
        for k, v in loaded.items():
            self[k] = v
        return self

    def dump(self, path, **kwargs) -> None:
        """Write this ADict to ``path``; the format follows the suffix (``kwargs`` go to
        the format's ``dumps``).  Atomic; permissions as ``open(path, 'w')`` gives them: a
        new file ``0o666 & ~umask``, an existing one keeps its mode.  Missing parent
        folders are created, once the suffix and every value were accepted (a refused
        write creates nothing).  Raises the lookup errors of
        :func:`ato.plugins.manager.format_for`, the format's refusal
        (:class:`ato.errors.ConfigFileError` naming the key) and ``OSError``."""
        from ato.plugins.manager import dump_file

        dump_file(self, path, **kwargs)

    @classmethod
    def from_mm_config(cls, path) -> ADict:
        from ato.plugins.manager import config_source

        return config_source("load_mm_config")(path)

    def load_mm_config(self, path) -> ADict:
        """Load an OpenMMLab config (``_base_`` chains resolved) and apply it on top."""
        loaded = type(self).from_mm_config(path)
        self.update(loaded)
        return self

    @classmethod
    def compose_hierarchy(cls, root, config_filename="config", select=None, overrides=None,
                          on_missing="error", required=None, **kwargs) -> ADict:
        """Compose a Hydra-style config tree (provided by ``ato-mmlab``)."""
        from ato.plugins.manager import config_source

        return config_source("compose_hierarchy")(
            root, config_filename=config_filename, select=select, overrides=overrides,
            on_missing=on_missing, required=required, **kwargs,
        )


# A value read through a class-level name (a method) never enters the read cache.
def _rebuild(cls, data, factory, frozen):
    new = cls.__new__(cls)
    object.__setattr__(new, "_data", data)
    object.__setattr__(new, "_factory", factory)
    object.__setattr__(new, "_frozen", False)
    object.__setattr__(new, "_accessed_extra", set())
    if frozen:
        new._set_frozen(True)
    return new
