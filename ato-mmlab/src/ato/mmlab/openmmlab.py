"""OpenMMLab configs: ``_base_`` inheritance resolved as ``mmengine.Config.fromfile`` does.

- ``_base_`` is a path or a list of paths, relative to the file that names it (never the
  working directory), or ``package::path`` for a config shipped by an installed package
  (``mmdet::faster_rcnn/...py``, read from ``<package>/.mim/configs``); chains of any
  depth; bases merge left to right, and the same top-level key in two bases is an error.
- The child merges into the bases: mappings recursively, everything else (lists and tuples
  included) replaces.  ``_delete_=True`` in a child mapping replaces the base mapping
  wholesale; ``_delete_=False`` merges; the marker never reaches the result (also inside
  lists).  A child mapping over a non-mapping base value is an error.
- Base references: ``{{_base_.a.b}}`` placeholders (any format) and, in Python configs,
  every statement Python allows on the ``_base_`` namespace (reads, nested writes,
  ``del``, ``pop``, ``update``, item access, iteration), which acts on the bases the child
  merges into, as MMEngine's ``ConfigDict`` does.  A placeholder inside a string or an
  expression is computed (never left as placeholder text), or refused with file and line.
- Text templates: ``{{fileDirname}}``, ``{{fileBasename}}``, ``{{fileBasenameNoExtension}}``,
  ``{{fileExtname}}`` and ``{{$ENV_NAME:default}}``.
- Reserved keys: ``_deprecation_`` at the top of a file is consumed (a
  ``DeprecationWarning`` carrying its message); a base read through ``package::`` gets
  ``_scope_ = package`` on its outermost typed mappings; ``custom_imports`` stays data;
  nothing is imported.

Python configs are executed (see :mod:`ato.mmlab.pyconfig`); imports of modules outside the
standard library are not run (:class:`ato.mmlab.pyconfig.LazyImports`, as MMEngine's lazy import).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import io
import keyword
import os
import re
import tokenize
import uuid
import warnings

from ato.adict import ADict
from ato.errors import ConfigFileError, ConfigFileNotFoundError
from ato.mmlab import pyconfig
from ato.representable import nesting_problem

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
DEPRECATION_KEY = "_deprecation_"
SCOPE_KEY = "_scope_"
_BASE_REF = re.compile(r"\{\{\s*_base_\.([\w\.]+)\s*\}\}")
_ENV_REF = re.compile(r"\{\{['\"]?\s*\$(\w+)\s*:\s*(.*?)\s*['\"]?\}\}")
_TEXT_HELPER = "__ato_base_text__"


def _hook(value):
    """What a value becomes when it is stored in a namespace (as MMEngine's ConfigDict
    does): plain dicts become namespaces (copied), lists and tuples are copied."""
    if type(value) is dict:
        return _BaseNamespace(value)
    if type(value) in (list, tuple):
        return type(value)(_hook(v) for v in value)
    return value


class _BaseNamespace(dict):
    """``_base_`` inside a Python config, and every mapping reached through it.

    It behaves as MMEngine's ``ConfigDict``: attribute and item access, ``del``,
    ``pop(key, default=None)``, a recursive ``update``, ``items()``/``values()`` as lists;
    plain dicts stored into it become namespaces.  Writes through it change the bases the
    child merges into.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __missing__(self, key):
        raise KeyError(key)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(self._no_key(name)) from None

    def __setattr__(self, name, value):
        if hasattr(type(self), name):
            raise AttributeError(f"{name!r} is a method of the _base_ namespace and cannot be "
                                 f"set as an attribute; write ['{name}'] instead")
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(self._no_key(name)) from None

    def __setitem__(self, key, value):
        super().__setitem__(key, _hook(value))

    def _no_key(self, name) -> str:
        keys = ", ".join(sorted(map(str, self))[:12]) or "none"
        return f"_base_ has no key {name!r} here (its keys: {keys})"

    def setdefault(self, key, default=None):
        """As ConfigDict: a new key stores (a namespace copy of) ``default`` and returns
        ``default`` itself."""
        if key in self:
            return self[key]
        self[key] = default
        return default

    def pop(self, key, default=None):
        return super().pop(key, default)

    def update(self, *args, **kwargs):
        """Merge recursively: a mapping over a mapping updates it, anything else replaces."""
        for key, value in dict(*args, **kwargs).items():
            if key in self and isinstance(self[key], dict) and isinstance(value, dict):
                self[key].update(value)
            else:
                self[key] = value

    def __or__(self, other):
        """``a | b`` as ConfigDict: a copy of ``a`` (mappings and lists copied at every
        depth) merged recursively with ``b``, whose values are shared, not copied."""
        if not isinstance(other, dict):
            return NotImplemented
        return _merge_shared(_BaseNamespace(_plain(self)), other)

    def __ror__(self, other):
        if not isinstance(other, dict):
            return NotImplemented
        return _merge_shared(_BaseNamespace(_plain(other)), self)

    def __ior__(self, other):
        self.update(other)
        return self

    def items(self):
        return list(super().items())

    def values(self):
        return list(super().values())

    def copy(self):
        return _BaseNamespace(dict.items(self))

    __copy__ = copy

    def __deepcopy__(self, memo):
        other = _BaseNamespace()
        memo[id(self)] = other
        for key, value in dict.items(self):
            dict.__setitem__(other, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return other

    def __reduce_ex__(self, protocol):
        return (_BaseNamespace, (dict(dict.items(self)),))


def _merge_shared(target: dict, source: dict) -> dict:
    """Merge ``source`` into ``target`` recursively, storing its values as they are (the
    update behind ConfigDict's ``|``)."""
    for key, value in dict.items(source):
        if key in target and isinstance(target[key], dict) and isinstance(value, dict):
            _merge_shared(target[key], value)
        else:
            dict.__setitem__(target, key, value)
    return target


def _plain(value):
    """Namespaces to plain dicts, recursively (a fresh copy of every container); a name
    imported from outside the standard library to its dotted path."""
    if isinstance(value, pyconfig.LazyImport):
        return str(value)
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

    def environment(match):
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if not value:  # as MMEngine: an unset variable needs a default
            raise ConfigFileError(path, f"{match.group(0)}: environment variable {name!r} is not "
                                        f"set and the template gives no default",
                                  _line(text, match.start()))
        return value

    return _ENV_REF.sub(environment, text)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _lookup(base: dict, dotted: str, path: str, line: int | None):
    """The base value ``dotted`` names (``a.b``, ``a.0.b`` for list items)."""
    node = base
    walked = "_base_"
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = dict.__getitem__(node, part)
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            found = type(node).__name__ if not isinstance(node, dict) else "a mapping without it"
            raise ConfigFileError(path, f"{{{{_base_.{dotted}}}}}: {walked} has no "
                                        f"{part!r} ({walked} is {found})", line)
        walked += f".{part}"
    return node


def _as_text(value, dotted: str, path: str, line: int | None) -> str:
    """A base value spliced into a string: only strings and numbers are well defined."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else str(value)
    kind = "dict" if isinstance(value, dict) else type(value).__name__
    raise ConfigFileError(
        path, f"{{{{_base_.{dotted}}}}} is used inside a string, but its value is a "
              f"{kind}; only strings and numbers can be spliced into text "
              f"(write the reference as the whole value instead)", line)


def _splicer(base: dict, path: str, refs):
    """A ``re.sub`` replacement: the text of the base value a match refers to; ``refs``
    maps a match to ``(dotted key, line)``."""
    def replace(match):
        dotted, line = refs(match)
        return _as_text(_lookup(base, dotted, path, line), dotted, path, line)
    return replace


# --- Python configs -----------------------------------------------------------------

def _python_reference(dotted: str) -> str:
    """``a.0.class`` -> ``(_base_.a[0]['class'])``: list indices and keys that are not
    attribute names (keywords, leading digits) become item access."""
    def part(p: str) -> str:
        if p.isdigit():
            return f"[{p}]"
        if p.isidentifier() and not keyword.iskeyword(p):
            return f".{p}"
        return f"[{p!r}]"
    return "(_base_" + "".join(part(p) for p in dotted.split(".")) + ")"


def _python_references(text: str, path: str) -> str:
    """Rewrite ``{{_base_.x}}`` in Python source into Python.

    In code it becomes the expression ``(_base_.x)``, so ``{{_base_.a}} * 3`` and
    ``{{_base_.pcr}}[:2]`` compute on the value.  A string literal (or a run of adjacent
    literals) that holds one is wrapped in a call that splices the value's text in when
    that line runs.  In an f-string it is refused (``{{`` is an escaped brace there; write
    ``{_base_.x}``).  Comments and docstrings (strings that are statements of their own,
    never values) are left alone.
    """
    if not _BASE_REF.search(text):
        return text
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text  # the syntax error is reported, with its line, by the parser
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(pos):
        return starts[pos[0] - 1] + pos[1]

    edits = []  # (start, end, replacement)
    skip = []  # spans of comments and strings: not code
    run: list = []
    statement_start = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    before = None  # the last token before the current run of strings (comments aside)

    def close_run(after):
        """A run of adjacent string literals ends at ``after``: wrap it if it holds a
        placeholder, unless it is a statement of its own (a docstring: never a value)."""
        alone = (before is None or before.type in statement_start or before.string == ";") \
            and (after is None or after.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or after.string == ";")
        if run and not alone and any(_BASE_REF.search(tok.string) for tok in run):
            for tok in run:
                prefix = tok.string[:tok.string.index(tok.string[-1])].lower()
                if _BASE_REF.search(tok.string) and ("f" in prefix or "b" in prefix):
                    message = ("{{_base_...}} inside an f-string: there {{ is an escaped brace; "
                               "write {_base_.name} in the f-string, or use a plain string"
                               if "f" in prefix else "{{_base_...}} inside a bytes literal")
                    raise ConfigFileError(path, message, tok.start[0])
            begin, end = offset(run[0].start), offset(run[-1].end)
            edits.append((begin, end, f"{_TEXT_HELPER}({text[begin:end]}, {run[0].start[0]})"))
        run.clear()

    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    depth, opened = 0, None
    for tok in tokens:
        if fstring_start is not None and tok.type in (fstring_start, fstring_end) or depth:
            if tok.type == fstring_start:
                depth, opened = depth + 1, opened if depth else tok
            elif tok.type == fstring_end:
                depth -= 1
                if not depth:
                    tok = tokenize.TokenInfo(tokenize.STRING, text[offset(opened.start):offset(tok.end)],
                                             opened.start, tok.end, tok.line)
            if depth:
                continue
        if tok.type == tokenize.STRING:
            skip.append((offset(tok.start), offset(tok.end)))
            run.append(tok)
        elif tok.type in (tokenize.COMMENT, tokenize.NL):
            if tok.type == tokenize.COMMENT:
                skip.append((offset(tok.start), offset(tok.end)))
        else:
            close_run(tok)
            before = tok
    close_run(None)

    def in_skip(position):
        return any(a <= position < b for a, b in skip)

    for match in _BASE_REF.finditer(text):
        if not in_skip(match.start()):
            edits.append((match.start(), match.end(), _python_reference(match.group(1))))
    out = text
    for begin, end, replacement in sorted(edits, reverse=True):
        out = out[:begin] + replacement + out[end:]
    return out


def _text_helper(namespace: dict, path: str):
    """The function the rewritten string literals call: ``splice(text, line)``."""
    def splice(value: str, line: int) -> str:
        def refs(match):
            return match.group(1), line
        return _BASE_REF.sub(_splicer(namespace[BASE_KEY], path, refs), value)
    return splice


def _first_assignment(tree, name: str, path: str):
    """The literal value of the first module-level ``name = ...`` (read without running),
    as MMEngine reads ``_base_``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == name:
            try:
                return pyconfig.literal_value(node.value)
            except ValueError:
                raise ConfigFileError(path, f"{name} must be a string or a list of strings "
                                            f"(literals, optionally joined with +)",
                                      node.lineno) from None
    return None


def _load_python(path: str, text: str):
    text = _python_references(text, path)
    tree = pyconfig.parse(text, path)
    bases = _first_assignment(tree, BASE_KEY, path)

    def load(base: dict):
        lazy = pyconfig.LazyImports(path)
        body = ast.fix_missing_locations(lazy.visit(pyconfig.RemoveAssignment(BASE_KEY).visit(tree)))
        namespace = {BASE_KEY: _BaseNamespace(base), pyconfig.LAZY_NAME: pyconfig.LazyImport}
        namespace[_TEXT_HELPER] = _text_helper(namespace, path)
        child = pyconfig.execute(body, path, namespace, hidden=(BASE_KEY, *lazy.names))
        problem = nesting_problem(child)  # a program can build any shape: check, as files
        if problem:
            raise ConfigFileError(path, problem)
        return _plain(child), _plain(namespace[BASE_KEY])

    return bases, load


# --- YAML and JSON configs ------------------------------------------------------------

def _data_references(text: str, path: str, json: bool):
    """Replace each ``{{_base_.x}}`` by a unique token (quoted where JSON needs a value);
    the tokens are substituted structurally after parsing."""
    marker = f"__ato_base_ref_{uuid.uuid4().hex[:8]}_"
    refs: dict = {}
    out, last = [], 0
    in_string, escaped, cursor = False, False, 0

    def inside_json_string(upto: int) -> bool:
        nonlocal in_string, escaped, cursor
        for ch in text[cursor:upto]:
            if escaped:
                escaped = False
            elif ch == "\\" and in_string:
                escaped = True
            elif ch == '"':
                in_string = not in_string
        cursor = upto
        return in_string

    for n, match in enumerate(_BASE_REF.finditer(text)):
        token = f"{marker}{n}__"
        refs[token] = (match.group(1), _line(text, match.start()))
        quoted = json and not inside_json_string(match.start())
        out.append(text[last:match.start()])
        out.append(f'"{token}"' if quoted else token)
        last = match.end()
    out.append(text[last:])
    return "".join(out), refs, re.compile(re.escape(marker) + r"\d+__")


def _substitute(value, refs: dict, pattern, base: dict, path: str):
    if isinstance(value, str):
        if value in refs:
            dotted, line = refs[value]
            return copy.deepcopy(_plain(_lookup(base, dotted, path, line)))
        if pattern.search(value):
            return pattern.sub(_splicer(base, path, lambda m: refs[m.group(0)]), value)
        return value
    if isinstance(value, dict):
        return {_substitute(k, refs, pattern, base, path): _substitute(v, refs, pattern, base, path)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, refs, pattern, base, path) for v in value]
    if isinstance(value, tuple):
        return tuple(_substitute(v, refs, pattern, base, path) for v in value)
    return value


def _load_data(path: str, text: str):
    from ato.plugins.manager import format_for, parse_text

    fmt = format_for(path)
    body, refs, pattern = _data_references(text, path, json=path.lower().endswith(".json"))
    data = parse_text(fmt, body, path) or {}
    if not isinstance(data, dict):
        raise ConfigFileError(path, "an OpenMMLab config must be a mapping")

    def load(base: dict):
        return _substitute(data, refs, pattern, base, path), base

    return data.get(BASE_KEY), load


# --- merging ------------------------------------------------------------------------

def merge(child: dict, base: dict, path: str, where: str = "") -> dict:
    """Merge ``child`` into a copy of ``base`` with MMEngine's rules (``_delete_`` markers
    are consumed at every depth, inside lists too)."""
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
            out[key] = _strip_delete(value)
    return out


def _strip_delete(value):
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_strip_delete(v) for v in value)
    return value


def _add_scope(value, scope: str, open_: bool = True):
    """``_scope_`` on the outermost mappings with a ``type`` (MMEngine's rule for a base
    read from another package)."""
    if isinstance(value, dict):
        if open_ and "type" in value:
            open_ = False
            if value.get(SCOPE_KEY) is None:
                value[SCOPE_KEY] = scope
        for v in value.values():
            _add_scope(v, scope, open_)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _add_scope(v, scope, open_)
    return value


def _deprecation(data: dict, path: str, text: str) -> None:
    """Consume a top-level ``_deprecation_`` as MMEngine does: a ``DeprecationWarning``
    with its message (attributed to the config file and line), and the key dropped."""
    if DEPRECATION_KEY not in data:
        return
    found = re.search(r"^[\"']?" + DEPRECATION_KEY + r"[\"']?\s*[=:]", text, re.MULTILINE)
    line = _line(text, found.start()) if found else 1
    info = data.pop(DEPRECATION_KEY)
    message = f"The config file {path} will be deprecated in the future."
    if isinstance(info, dict):
        if "expected" in info:
            message += f" Please use {info['expected']} instead."
        if "reference" in info:
            message += f" More information can be found at {info['reference']}"
    elif isinstance(info, str):
        message += f" {info}"
    else:
        raise ConfigFileError(path, f"{DEPRECATION_KEY} must be a mapping with 'expected' "
                                    f"and/or 'reference' (or a message), got "
                                    f"{type(info).__name__}", line)
    warnings.warn_explicit(message, DeprecationWarning, path, line)


def _resolve_base(relative: str, path: str) -> tuple[str, str | None]:
    """``(file, scope)``: a path relative to the naming file, or ``package::path`` inside
    ``<package>/.mim/configs`` of an installed package (found without importing it)."""
    if "::" not in relative:
        target = os.path.normpath(os.path.join(os.path.dirname(path), relative))
        if not os.path.isfile(target):
            hint = " (no file extension: add .py?)" if not os.path.splitext(relative)[1] else ""
            raise ConfigFileError(path, f"_base_ entry {relative!r}: {target} does not exist{hint}")
        return target, None
    scope, _, inner = relative.partition("::")
    if not scope.isidentifier() or not inner or "::" in inner:
        raise ConfigFileError(path, f"_base_ entry {relative!r}: expected 'package::path/to/config.py'")
    spec = importlib.util.find_spec(scope)
    if spec is None or spec.origin is None:
        raise ConfigFileError(path, f"_base_ entry {relative!r}: package {scope!r} is not "
                                    f"installed (pip install it to use its configs)")
    target = os.path.join(os.path.dirname(spec.origin), ".mim", "configs", inner)
    if not os.path.isfile(target):
        raise ConfigFileError(path, f"_base_ entry {relative!r}: {target} does not exist")
    return target, scope


def load_dict(path: str, _chain: tuple = ()) -> dict:
    """The fully resolved config of one file (``.py``, ``.yaml``/``.yml``, ``.json`` or any
    registered format), as plain data: dicts, lists, tuples and scalars.

    Raises ``FileNotFoundError`` for a missing file, and ``ConfigFileError`` naming the file
    (and line where there is one) for a ``_base_`` cycle or bad entry, the same key in two
    bases, a mapping over a non-mapping base value, a placeholder without a well-defined
    value, an unset ``{{$VAR:}}``, or an error raised while running a Python config.
    Emits ``DeprecationWarning`` for each file of the chain with a ``_deprecation_`` key.
    """
    path = os.path.realpath(path)
    if path in _chain:
        cycle = " -> ".join(os.path.basename(p) for p in (*_chain, path))
        raise ConfigFileError(path, f"_base_ cycle: {cycle}")
    if not os.path.exists(path):
        raise ConfigFileNotFoundError(path)
    with open(path, encoding="utf-8") as f:
        text = _templates(f.read(), path)
    reader = _load_python if path.lower().endswith(".py") else _load_data
    bases, load = reader(path, text)
    if isinstance(bases, str):
        bases = [bases]
    if bases is not None and not isinstance(bases, (list, tuple)):
        raise ConfigFileError(path, f"_base_ must be a path or a list of paths, got {bases!r}")
    base: dict = {}
    for relative in bases or []:
        if not isinstance(relative, str):
            raise ConfigFileError(path, f"_base_ entries must be paths, got {relative!r}")
        resolved, scope = _resolve_base(relative, path)
        loaded = load_dict(resolved, (*_chain, path))
        if scope is not None:
            _add_scope(loaded, scope)
        duplicate = sorted(set(base) & set(loaded))
        if duplicate:
            raise ConfigFileError(path, f"the same key in two bases: {', '.join(duplicate)} "
                                        f"(in {relative})")
        base.update(loaded)
    child, base = load(base)
    child.pop(BASE_KEY, None)
    _deprecation(child, path, text)
    if child.pop(DELETE_KEY, False):  # the root mapping, like any other: replace the bases
        return _strip_delete(child)
    return merge(child, _plain(base), path)


class MMConfigSource:
    """``ADict.load_mm_config(path)`` / ``ADict.from_mm_config(path)``: an ADict of
    :func:`load_dict`'s result (same errors)."""

    PLUGIN_NAME = "load_mm_config"

    @staticmethod
    def load(path) -> ADict:
        return ADict._from_mapping(load_dict(os.fspath(path)))
