"""OpenMMLab configs: ``_base_`` inheritance resolved as ``mmengine.Config.fromfile`` does.

- ``_base_`` is a path or a list of paths, relative to the file that names it (never the
  working directory); chains of any depth; bases merge left to right, and the same
  top-level key in two bases is an error.
- The child merges into the bases: mappings recursively, everything else (lists and tuples
  included) replaces.  ``_delete_=True`` in a child mapping replaces the base mapping
  wholesale; ``_delete_=False`` merges.  A child mapping over a non-mapping base value is an
  error.
- Base references: ``{{_base_.a.b}}`` placeholders (any format) and, in Python configs,
  ``_base_.a.b`` reads and writes.
- Text templates: ``{{fileDirname}}``, ``{{fileBasename}}``, ``{{fileBasenameNoExtension}}``,
  ``{{fileExtname}}`` and ``{{$ENV_NAME:default}}``.
- ``custom_imports`` stays data; nothing is imported.

Python configs are executed (see :mod:`ato.mmlab.pyconfig`).
"""

from __future__ import annotations

import copy
import os
import re
import uuid

from ato.adict import ADict
from ato.errors import ConfigFileError
from ato.mmlab import pyconfig

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
_BASE_REF = re.compile(r"\{\{\s*_base_\.([\w\.]+)\s*\}\}")
_ENV_REF = re.compile(r"\{\{['\"]?\s*\$(\w+)\s*:\s*(.*?)\s*['\"]?\}\}")


class _BaseNamespace(dict):
    """``_base_`` inside a Python config: the merged bases with attribute access; writes
    through it (``_base_.model.depth = 101``) change the bases the child merges into."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"_base_ has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    @classmethod
    def build(cls, value):
        if isinstance(value, dict):
            return cls({k: cls.build(v) for k, v in value.items()})
        if isinstance(value, list):
            return [cls.build(v) for v in value]
        return value


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _templates(text: str, path: str) -> str:
    dirname = os.path.dirname(path)
    basename = os.path.basename(path)
    stem, ext = os.path.splitext(basename)
    for name, value in (("fileDirname", dirname), ("fileBasename", basename),
                        ("fileBasenameNoExtension", stem), ("fileExtname", ext)):
        text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", value.replace("\\", "/"), text)
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2)), text)


def _read(path: str, text: str):
    """``(_base_ value, loader)`` of one file; the loader takes (text, base dict)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".py":
        tree = pyconfig.parse(text, path)
        bases = pyconfig.literal_assignment(tree, BASE_KEY, path)

        def load(body: str, base: dict):
            tree = pyconfig.RemoveAssignment(BASE_KEY).visit(pyconfig.parse(body, path))
            namespace = _BaseNamespace.build(base)
            child = pyconfig.execute(tree, path, {BASE_KEY: namespace}, hidden=(BASE_KEY,))
            return _plain(child), _plain(namespace)

        return bases, load
    from ato.plugins.manager import format_for

    fmt = format_for(path)
    data = fmt.loads(text, path) or {}
    if not isinstance(data, dict):
        raise ConfigFileError(path, "an OpenMMLab config must be a mapping")
    return data.get(BASE_KEY), lambda body, base: (fmt.loads(body, path) or {}, base)


def _substitute(value, refs: dict, base: dict, path: str):
    if isinstance(value, str) and value in refs:
        node = base
        for part in refs[value].split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigFileError(path, f"{{{{_base_.{refs[value]}}}}}: the bases have no "
                                            f"key {refs[value]!r}")
            node = dict.__getitem__(node, part)
        return copy.deepcopy(_plain(node))
    if isinstance(value, dict):
        return {k: _substitute(v, refs, base, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, refs, base, path) for v in value]
    if isinstance(value, tuple):
        return tuple(_substitute(v, refs, base, path) for v in value)
    return value


def merge(child: dict, base: dict, path: str, where: str = "") -> dict:
    """Merge ``child`` into a copy of ``base`` with MMEngine's rules."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict):
            value = dict(value)
            delete = bool(value.pop(DELETE_KEY, False))
            if key in out and not delete:
                if not isinstance(out[key], dict):
                    raise ConfigFileError(
                        path, f"{where}{key} is a mapping in the child config but a "
                              f"{type(out[key]).__name__} in its base; set {DELETE_KEY}=True in "
                              f"the child to replace it")
                out[key] = merge(value, out[key], path, f"{where}{key}.")
            else:
                out[key] = _strip_delete(value)
        else:
            out[key] = value
    return out


def _strip_delete(value):
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    return value


def load_dict(path: str, _chain: tuple = ()) -> dict:
    """The fully resolved config of one file, as plain data."""
    path = os.path.realpath(path)
    if path in _chain:
        cycle = " -> ".join(os.path.basename(p) for p in (*_chain, path))
        raise ConfigFileError(path, f"_base_ cycle: {cycle}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist.")
    with open(path, encoding="utf-8") as f:
        text = _templates(f.read(), path)
    refs: dict = {}

    def placeholder(match):
        token = f"_{match.group(1).replace('.', '_')}_{uuid.uuid4().hex[:6]}"
        refs[token] = match.group(1)
        return f'"{token}"'

    body = _BASE_REF.sub(placeholder, text)
    bases, load = _read(path, body)
    if isinstance(bases, str):
        bases = [bases]
    base: dict = {}
    for relative in bases or []:
        if not isinstance(relative, str):
            raise ConfigFileError(path, f"_base_ entries must be paths, got {relative!r}")
        resolved = os.path.join(os.path.dirname(path), relative)
        loaded = load_dict(resolved, (*_chain, path))
        duplicate = sorted(set(base) & set(loaded))
        if duplicate:
            raise ConfigFileError(path, f"the same key in two bases: {', '.join(duplicate)} "
                                        f"(in {relative})")
        base.update(loaded)
    child, base = load(body, base)
    child.pop(BASE_KEY, None)
    child = _substitute(child, refs, base, path)
    return merge(child, _plain(base), path)


class MMConfigSource:
    """``ADict.load_mm_config(path)`` / ``ADict.from_mm_config(path)``."""

    PLUGIN_NAME = "load_mm_config"

    @staticmethod
    def load(path) -> ADict:
        return ADict._from_mapping(load_dict(os.fspath(path)))
