"""``${...}`` interpolation with OmegaConf 2.3's grammar, resolvers and errors.

Used by ``compose_hierarchy(resolve=True)``.  A hand-written tokenizer and
recursive-descent parser (nothing is evaluated); :func:`resolve_tree` resolves every string
of a plain ``dict``/``list`` tree in document order.

Grammar, as in OmegaConf (``docs/migrating-from-hydra.md`` has the table):

* a value is text with interpolations: ``exp_${name}_${seed}`` concatenates ``str()`` of
  each part; a value that is exactly one interpolation keeps the referenced type;
* a node interpolation is an absolute key ``${a.b}``, ``${list.0}``, ``${m[x].y}``, or a
  relative one: ``${.sibling}``, ``${..up}`` (each extra dot one level up); keys may be
  built by nested interpolations: ``${models.${name}}``;
* a resolver call is ``${name:arg,...}`` with arguments that are numbers, ``true``/
  ``false``, ``null``, unquoted text, ``'quoted'`` or ``"quoted"`` strings (always
  strings), ``[lists]``, ``{dict: s}`` and interpolations, separated by commas; an empty
  argument is ``''``;
* ``\\${`` is a literal ``${``; a run of backslashes right before ``${`` (or before the
  closing quote of a quoted argument) is halved; other backslashes stay as written.

Resolvers: ``oc.env``, ``oc.select``, ``oc.decode``, ``oc.create``, ``oc.deprecated``,
``oc.dict.keys``, ``oc.dict.values``.  Errors carry OmegaConf's exception names and first
lines, followed by the key being resolved and the chain for cycles.
"""

from __future__ import annotations

import copy
import os
import re
import warnings

from ato.errors import AtoError

__all__ = [
    "InterpolationError", "GrammarParseError", "InterpolationKeyError",
    "InterpolationResolutionError", "InterpolationCycleError", "UnsupportedInterpolationType",
    "InterpolationToMissingValueError", "resolve_tree", "parse", "decode",
]

MISSING = "???"
MAX_CHAIN = 100  # interpolations resolved inside one another, at most


# --------------------------------------------------------------------------- errors
class InterpolationError(AtoError, ValueError):
    """A ``${...}`` interpolation cannot be resolved.  ``key`` is the dotted key whose
    value was being resolved, ``value`` its text."""

    key: str | None = None
    value: str | None = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def locate(self, key: str, value) -> InterpolationError:
        if self.key is None:
            self.key, self.value = key, value
            shown = value if len(str(value)) <= 120 else f"{str(value)[:60]}...{str(value)[-40:]}"
            self.args = (f"{self.message} (resolving {key!r}: {shown!r})",)
        return self

    def __str__(self) -> str:
        return self.args[0]


class GrammarParseError(InterpolationError):
    """The text is not a valid interpolation (unbalanced ``${``, a stray character)."""


class InterpolationKeyError(InterpolationError, KeyError):
    """An interpolation names a key that does not exist."""


class InterpolationResolutionError(InterpolationError):
    """A resolver failed, or resolution cannot finish (cycles)."""


class InterpolationCycleError(InterpolationResolutionError):
    """Resolving a value needs that value itself (the message shows the chain)."""


class UnsupportedInterpolationType(InterpolationError):
    """``${name:...}`` names no known resolver."""


class InterpolationToMissingValueError(InterpolationError):
    """An interpolation points at a ``???`` (mandatory, unset) value."""


# --------------------------------------------------------------------------- AST
class Interp:
    """``${...}``: a node reference (``key`` parts) or a resolver call (``name`` parts and
    ``args``)."""

    __slots__ = ("dots", "key", "name", "args", "text")

    def __init__(self, dots=0, key=None, name=None, args=None, text=""):
        self.dots, self.key, self.name, self.args, self.text = dots, key, name, args, text


class Text:
    """Concatenated text: ``parts`` are ``str`` and :class:`Interp`; ``quoted`` texts are
    always strings."""

    __slots__ = ("parts", "quoted")

    def __init__(self, parts, quoted=False):
        self.parts, self.quoted = parts, quoted


class Primitive:
    """An unquoted argument: ``parts`` are ``str`` pieces (``raw`` ones may give a typed
    value) and :class:`Interp`."""

    __slots__ = ("parts", "raw")

    def __init__(self, parts, raw):
        self.parts, self.raw = parts, raw


class ListArg:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


class DictArg:
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs


# --------------------------------------------------------------------------- parser
_ID_START = re.compile(r"[A-Za-z_]")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_KEY_CHARS = re.compile(r"[^\\{}()\[\]:. \t'\"$]+|\$(?!\{)")
_WS = " \t"
_ESCAPABLE = "\\()[]{}:=, \t"
_UNQUOTED = "/-\\+.$%*@?|"
_INT = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_DIGITS = r"[0-9](?:_?[0-9])*"
_UINT = r"(?:0|[1-9](?:_?[0-9])*)"
_POINT = rf"(?:{_UINT}?\.{_DIGITS}|{_UINT}\.)"
_FLOAT = re.compile(rf"[+-]?(?:(?:{_POINT}|{_UINT})[eE][+-]?{_DIGITS}|{_POINT}|[Ii][Nn][Ff]|"
                    rf"[Nn][Aa][Nn])")
_BOOL = re.compile(r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]")
_NULL = re.compile(r"[Nn][Uu][Ll][Ll]")


class _Escaped(str):
    """A character written with a backslash (``\\ ``): never trimmed."""


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.n = len(text)

    def fail(self, message: str, pos: int):
        shown = self.s if len(self.s) <= 60 else self.s[:57] + "..."
        raise GrammarParseError(f"{message} at position {pos} of {shown!r}")

    def ws(self, i: int) -> int:
        while i < self.n and self.s[i] in _WS:
            i += 1
        return i

    # ---- text (a whole value, or the inside of a quoted argument)
    def text(self, i: int, quote: str | None) -> tuple[list, int]:
        s, parts, buf = self.s, [], []
        while i < self.n:
            c = s[i]
            if c == "\\":
                j = i
                while j < self.n and s[j] == "\\":
                    j += 1
                run = j - i
                if s.startswith("${", j) or (quote and j < self.n and s[j] == quote):
                    buf.append("\\" * (run // 2))
                    if run % 2:  # the last backslash escapes what follows
                        literal = "${" if s.startswith("${", j) else quote
                        buf.append(literal)
                        j += len(literal)
                else:
                    buf.append("\\" * run)
                i = j
                continue
            if c == "$" and s.startswith("${", i):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                node, i = self.interpolation(i)
                parts.append(node)
                continue
            if quote and c == quote:
                if buf:
                    parts.append("".join(buf))
                return parts, i + 1
            buf.append(c)
            i += 1
        if quote:
            self.fail(f"unterminated quoted string: add the closing {quote}", self.n)
        if buf:
            parts.append("".join(buf))
        return parts, i

    # ---- ${...}
    def interpolation(self, start: int) -> tuple[Interp, int]:
        i = self.ws(start + 2)
        name, j = self.resolver_name(i)
        if name is not None:
            j = self.ws(j + 1)  # past ':'
            args: list = []
            if j < self.n and self.s[j] == "}":
                return Interp(name=name, args=args, text=self.s[start:j + 1]), j + 1
            args, j = self.sequence(j, "}")
            return Interp(name=name, args=args, text=self.s[start:j]), j
        dots = 0
        while i < self.n and self.s[i] == ".":
            dots += 1
            i += 1
        key: list = []
        first = True
        while True:
            if i < self.n and self.s[i] == "[":
                part, i = self.key_part(i + 1)
                if i >= self.n or self.s[i] != "]":
                    self.fail("expected ']' after a bracketed key", i)
                key.append(("[]", part))
                i += 1
            elif first or (i < self.n and self.s[i] == "."):
                if not first:
                    i += 1
                part, i = self.key_part(i)
                key.append((".", part))
            else:
                break
            first = False
        i = self.ws(i)
        if i >= self.n:
            self.fail("unterminated interpolation: add the closing '}'", start)
        if self.s[i] != "}":
            self.fail(f"unexpected {self.s[i]!r} in the interpolation key", i)
        return Interp(dots=dots, key=key, text=self.s[start:i + 1]), i + 1

    def key_part(self, i: int) -> tuple[list, int]:
        """One key between dots or brackets: text and nested interpolations."""
        parts: list = []
        while i < self.n:
            if self.s.startswith("${", i):
                node, i = self.interpolation(i)
                parts.append(node)
                continue
            m = _KEY_CHARS.match(self.s, i)
            if not m:
                break
            parts.append(m.group())
            i = m.end()
        if not parts:
            if i >= self.n:
                self.fail("unterminated interpolation: add the closing '}'", i)
            self.fail(f"expected a key, found {self.s[i]!r}", i)
        return parts, i

    def resolver_name(self, i: int):
        """``(name parts, index of ':')`` when a resolver call starts at ``i``."""
        parts: list = []
        while True:
            if self.s.startswith("${", i):
                try:
                    node, i = self.interpolation(i)
                except GrammarParseError:
                    return None, i
                parts.append(node)
            else:
                m = _ID.match(self.s, i)
                if not m:
                    return None, i
                parts.append(m.group())
                i = m.end()
            if i < self.n and self.s[i] == ".":
                parts.append(".")
                i += 1
                continue
            break
        j = self.ws(i)
        if j < self.n and self.s[j] == ":":
            return parts, j
        return None, i

    # ---- resolver arguments
    def sequence(self, i: int, closer: str) -> tuple[list, int]:
        """Comma-separated elements up to ``closer``; returns the index after it."""
        items: list = []
        i = self.ws(i)
        while True:
            if i >= self.n:
                self.fail(f"unterminated {'interpolation' if closer == '}' else 'list'}: "
                          f"add the closing {closer!r}", i)
            if self.s[i] in ",":
                items.append(Primitive([""], ""))
                warnings.warn(f"an argument is missing in {self.s!r}: write '' for an empty "
                              f"string", UserWarning, stacklevel=2)
                i = self.ws(i + 1)
                if i < self.n and self.s[i] == closer:
                    items.append(Primitive([""], ""))
                    return items, i + 1
                continue
            item, i = self.element(i, trim=True)
            items.append(item)
            i = self.ws(i)
            if i < self.n and self.s[i] == ",":
                i = self.ws(i + 1)
                if i < self.n and self.s[i] == closer:
                    items.append(Primitive([""], ""))
                    warnings.warn(f"an argument is missing in {self.s!r}: write '' for an "
                                  f"empty string", UserWarning, stacklevel=2)
                    return items, i + 1
                continue
            if i < self.n and self.s[i] == closer:
                return items, i + 1
            if i >= self.n:
                continue
            self.fail(f"unexpected {self.s[i]!r}: expected ',' or {closer!r} (quote an "
                      f"argument that holds it)", i)

    def element(self, i: int, trim: bool):
        c = self.s[i] if i < self.n else ""
        if c in ("'", '"'):
            parts, i = self.text(i + 1, c)
            return Text(parts, quoted=True), i
        if c == "[":
            j = self.ws(i + 1)
            if j < self.n and self.s[j] == "]":
                return ListArg([]), j + 1
            items, j = self.sequence(j, "]")
            return ListArg(items), j
        if c == "{":
            return self.dict_arg(i)
        return self.primitive(i, trim)

    def dict_arg(self, start: int):
        i = self.ws(start + 1)
        pairs = []
        if i < self.n and self.s[i] == "}":
            return DictArg(pairs), i + 1
        while True:
            key, i = self.primitive(i, trim=True, in_key=True)
            i = self.ws(i)
            if i >= self.n or self.s[i] != ":":
                self.fail("expected ':' after a dict key", i)
            i = self.ws(i + 1)
            value, i = self.element(i, trim=True)
            pairs.append((key, value))
            i = self.ws(i)
            if i < self.n and self.s[i] == ",":
                i = self.ws(i + 1)
                continue
            if i < self.n and self.s[i] == "}":
                return DictArg(pairs), i + 1
            self.fail("expected ',' or '}' in a dict", i)

    def primitive(self, i: int, trim: bool, in_key: bool = False):
        parts: list = []
        raw: list[str] = []  # the plain text: typed (1, true, null) when nothing else
        plain = True
        start = i
        while i < self.n:
            c = self.s[i]
            if c == "$" and self.s.startswith("${", i) and not in_key:
                node, i = self.interpolation(i)
                parts.append(node)
                plain = False
                continue
            if c == "\\" and i + 1 < self.n and self.s[i + 1] in _ESCAPABLE:
                parts.append(_Escaped(self.s[i + 1]))
                plain = False
                i += 2
                continue
            if c.isalnum() or c in "_-" or c in _UNQUOTED or c in _WS or \
                    (c == ":" and not in_key):
                j = i
                while j < self.n and (self.s[j].isalnum() or self.s[j] in "_-"
                                      or self.s[j] in _UNQUOTED or self.s[j] in _WS
                                      or (self.s[j] == ":" and not in_key)) \
                        and not self.s.startswith("${", j) and not (
                            self.s[j] == "\\" and j + 1 < self.n and self.s[j + 1] in _ESCAPABLE):
                    j += 1
                parts.append(self.s[i:j])
                raw.append(self.s[i:j])
                i = j
                continue
            break
        if i == start:
            if i >= self.n:
                self.fail("a value is missing", i)
            self.fail(f"unexpected character {self.s[i]!r} (quote the argument: '...')", i)
        if trim:  # whitespace before ',' ']' '}' ':' belongs to the separator
            while parts and type(parts[-1]) is str and parts[-1].rstrip(_WS) != parts[-1]:
                stripped = parts[-1].rstrip(_WS)
                if stripped:
                    parts[-1] = stripped
                    break
                parts.pop()
            if raw:
                raw[-1] = raw[-1].rstrip(_WS)
        text = "".join(raw) if plain else None
        return Primitive(parts, text), i


_cache: dict = {}


def parse(text: str) -> Text:
    """Parse a whole config value (text with interpolations)."""
    node = _cache.get(text)
    if node is None:
        try:
            parts, _ = _Parser(text).text(0, None)
        except RecursionError:
            raise GrammarParseError("interpolations or resolver arguments nested too "
                                    "deeply") from None
        node = _cache[text] = Text(parts)
        if len(_cache) > 4096:
            _cache.clear()
    return node


def _typed(text: str):
    if _INT.fullmatch(text):
        return int(text.replace("_", ""))
    if _FLOAT.fullmatch(text):
        return float(text.replace("_", ""))
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _NULL.fullmatch(text):
        return None
    return text


# --------------------------------------------------------------------------- resolution
class _NotFound(Exception):
    pass


class _Resolver:
    def __init__(self, root, resolvers=None):
        self.root = root
        self.resolvers = {**RESOLVERS, **(resolvers or {})}
        self.done: dict = {}
        self.stack: list = []  # paths of values being resolved, outermost first

    # ---- tree access
    def raw(self, path: tuple):
        node = self.root
        for p in path:
            node = node[p]
        return node

    def display(self, path: tuple) -> str:
        out = ""
        node = self.root
        for p in path:
            if isinstance(node, list):
                out += f"[{p}]"
            else:
                out += f".{p}" if out else str(p)
            node = node[p]
        return out

    def value(self, path: tuple):
        """The resolved value at ``path`` (containers resolved throughout)."""
        if path in self.done:
            return self.done[path]
        raw = self.raw(path)
        if isinstance(raw, dict):
            out = {k: self.value(path + (k,)) for k in raw}
        elif isinstance(raw, list):
            out = [self.value(path + (i,)) for i in range(len(raw))]
        elif isinstance(raw, str) and "${" in raw:
            if len(self.stack) >= MAX_CHAIN:
                chain = [self.display(p) for p in self.stack[:3]]
                raise InterpolationResolutionError(
                    f"interpolations nested too deeply: {' -> '.join(chain)} -> ... -> "
                    f"{self.display(path)} is a chain of more than {MAX_CHAIN} "
                    f"references")
            self.stack.append(path)
            try:
                out = self.evaluate(parse(raw), path)
            except InterpolationError as e:
                if len(self.stack) == 1:  # errors name the value the walk was resolving
                    e.locate(self.display(path), raw)
                raise
            finally:
                self.stack.pop()
        else:
            out = raw
        self.done[path] = out
        return out

    # ---- key lookup
    def split_key(self, key: str) -> list:
        parts: list = []
        for m in re.finditer(r"\[([^\]]*)\]|([^.\[\]]+)", key):
            parts.append(m.group(1) if m.group(1) is not None else m.group(2))
        return parts

    def locate(self, dots: int, key: str, here: tuple, display: str):
        """``('path', tuple)`` of an existing key, or ``('value', v)`` when the walk went
        through an interpolated container; raises :class:`_NotFound`."""
        if dots:
            base = here[:-1]
            up = dots - 1
            if up > len(base):
                raise InterpolationKeyError(f"ConfigKeyError while resolving interpolation: "
                                            f"Error resolving key '{display}'")
            base = base[:len(base) - up]
        else:
            base = ()
        path = base
        node = self.raw(path)
        detached = False
        for part in self.split_key(key):
            if isinstance(node, str) and "${" in node and not detached:
                node = self.target(path)
                detached = True
            if isinstance(node, dict):
                if part in node:
                    step = part
                elif part.lstrip("-").isdigit() and int(part) in node:
                    step = int(part)  # an int key written as text (Ato, not OmegaConf)
                else:
                    raise _NotFound
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                step = int(part)
            else:
                raise _NotFound
            node = node[step]
            path = path + (step,)
        return ("value", node) if detached else ("path", path)

    def target(self, path: tuple):
        """The resolved value an interpolation gets for ``path`` (checks for cycles)."""
        for busy in self.stack:
            if busy[:len(path)] == path and len(busy) > len(path):
                chain = " -> ".join(self.display(p) for p in self.stack[self.stack.index(busy):])
                raise InterpolationCycleError(
                    f"Interpolation to parent node detected: {chain} -> {self.display(path)}")
            if busy == path:
                chain = " -> ".join(self.display(p) for p in self.stack[self.stack.index(busy):])
                raise InterpolationCycleError(
                    f"Recursive interpolation detected: {chain} -> {self.display(path)}")
        raw = self.raw(path)
        if raw == MISSING:
            raise InterpolationToMissingValueError(
                f"MissingMandatoryValue while resolving interpolation: Missing mandatory "
                f"value: {self.display(path)}")
        return copy.deepcopy(self.value(path))

    def select(self, key: str, here: tuple):
        """``(found, value)`` for an ``oc.select``-style key (``???`` counts as absent)."""
        dots = len(key) - len(key.lstrip("."))
        try:
            kind, where = self.locate(dots, key[dots:], here, key)
        except _NotFound:
            return False, None
        if kind == "value":
            return (where != MISSING), copy.deepcopy(where)
        if self.raw(where) == MISSING:
            return False, None
        return True, self.target(where)

    # ---- evaluation
    def evaluate(self, node, here: tuple):
        if isinstance(node, Text):
            if len(node.parts) == 1 and isinstance(node.parts[0], Interp) and not node.quoted:
                return self.interp(node.parts[0], here)
            return "".join(p if isinstance(p, str) else str(self.interp(p, here))
                           for p in node.parts)
        if isinstance(node, Primitive):
            if node.raw is not None:
                return _typed(node.raw)
            if len(node.parts) == 1 and isinstance(node.parts[0], Interp):
                return self.interp(node.parts[0], here)
            return "".join(p if isinstance(p, str) else str(self.interp(p, here))
                           for p in node.parts)
        if isinstance(node, ListArg):
            return [self.evaluate(item, here) for item in node.items]
        if isinstance(node, DictArg):
            return {self.evaluate(k, here): self.evaluate(v, here) for k, v in node.pairs}
        raise TypeError(node)  # pragma: no cover - the parser builds only the above

    def text_of(self, parts: list, here: tuple) -> str:
        return "".join(p if isinstance(p, str) else str(self.interp(p, here)) for p in parts)

    def interp(self, node: Interp, here: tuple):
        if node.name is not None:
            name = self.text_of(node.name, here)
            resolver = self.resolvers.get(name)
            if resolver is None:
                raise UnsupportedInterpolationType(f"Unsupported interpolation type {name}")
            args = [self.evaluate(a, here) for a in node.args]
            _check_arity(name, resolver, args)
            try:
                return resolver(self, here, *args)
            except InterpolationError:
                raise
            except Exception as e:  # as OmegaConf: any error of a resolver is wrapped
                detail = e.args[0] if isinstance(e, KeyError) and e.args else e
                shown = f'"{detail}"' if isinstance(e, KeyError) else str(detail)
                raise InterpolationResolutionError(
                    f"{type(e).__name__} raised while resolving interpolation: {shown}") from e
        key = ""
        for sep, part in node.key:
            text = self.text_of(part, here)
            key += f"[{text}]" if sep == "[]" else (f".{text}" if key else text)
        display = "." * node.dots + key
        try:
            kind, where = self.locate(node.dots, key, here, display)
        except _NotFound:
            raise InterpolationKeyError(f"Interpolation key '{key}' not found") from None
        if kind == "value":
            if where == MISSING:
                raise InterpolationToMissingValueError(
                    f"MissingMandatoryValue while resolving interpolation: Missing mandatory "
                    f"value: {key}")
            return copy.deepcopy(where)
        return self.target(where)


# --------------------------------------------------------------------------- resolvers
_NO_DEFAULT = object()


def _env(res, here, key=_NO_DEFAULT, default=_NO_DEFAULT):
    if key is _NO_DEFAULT:
        raise TypeError("env() missing 1 required positional argument: 'key'")
    if not isinstance(key, str):
        raise TypeError(f"str expected, not {type(key).__name__}")
    try:
        return os.environ[key]
    except KeyError:
        if default is _NO_DEFAULT:
            raise KeyError(f"Environment variable '{key}' not found") from None
        return None if default is None else str(default)


def _select(res, here, key, default=_NO_DEFAULT):
    found, value = res.select(str(key), here)
    if found:
        return value
    return None if default is _NO_DEFAULT else default


def decode(text, evaluate=None):
    """``oc.decode``: the typed value of ``text`` written as a resolver argument."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"`oc.decode` can only take strings or None as input, but `{text}` "
                        f"is of type {type(text).__name__}")
    p = _Parser(text)
    try:
        element, end = p.element(0, trim=False) if text else (None, 0)
    except GrammarParseError as e:
        raise InterpolationResolutionError(
            f"GrammarParseError raised while resolving interpolation: {e.message}") from None
    except RecursionError:
        raise InterpolationResolutionError(
            "GrammarParseError raised while resolving interpolation: cannot decode a value "
            "nested this deeply") from None
    if element is None or end != len(text):
        where = "an empty string" if element is None else f"{text[end:]!r} after the value"
        raise InterpolationResolutionError(
            f"GrammarParseError raised while resolving interpolation: cannot decode "
            f"{text!r}: unexpected {where}")
    return evaluate(element) if evaluate else element


def _decode(res, here, text=None):
    return decode(text, lambda element: res.evaluate(element, here))


def _create(res, here, obj):
    if isinstance(obj, str):
        from ato.formats.yaml import loads

        return loads(obj)
    if not isinstance(obj, (dict, list)) and obj is not None:
        raise ValueError(f"oc.create needs a dict, a list or YAML text, not "
                         f"{type(obj).__name__}")
    return obj


def _deprecated(res, here, key, message="'$OLD_KEY' is deprecated. Change your code and "
                                        "config to use '$NEW_KEY'"):
    found, value = res.select(str(key), here)
    if not found:
        raise KeyError(f"In oc.deprecated resolver at '{res.display(here)}': Key not found: "
                       f"'{key}'")
    text = str(message).replace("$OLD_KEY", res.display(here)).replace("$NEW_KEY", str(key))
    warnings.warn(text, UserWarning, stacklevel=2)
    return value


def _dict_node(res, here, key, name):
    """The path (or detached value) of the mapping ``key`` names, unresolved."""
    key = str(key)
    dots = len(key) - len(key.lstrip("."))
    try:
        kind, where = res.locate(dots, key[dots:], here, key)
    except _NotFound:
        raise InterpolationResolutionError(f"ConfigKeyError raised while resolving "
                                           f"interpolation: Key not found: '{key}'") from None
    node = res.raw(where) if kind == "path" else where
    if kind == "path" and isinstance(node, str) and "${" in node:
        kind, node = "value", res.target(where)  # an interpolation: use what it gives
        where = node
    if not isinstance(node, dict):
        kind_name = "ListConfig" if isinstance(node, list) else type(node).__name__
        raise TypeError(f"`{name}` cannot be applied to objects of type: {kind_name}")
    return kind, where, node


def _keys(res, here, key):
    return list(_dict_node(res, here, key, "oc.dict.keys")[2])


def _values(res, here, key):
    kind, where, node = _dict_node(res, here, key, "oc.dict.values")
    if kind == "value":
        return list(copy.deepcopy(node).values())
    return [res.target(where + (k,)) for k in node]


def _check_arity(name: str, resolver, args: list) -> None:
    """A built-in resolver called with too many arguments says what it takes."""
    import inspect

    try:
        signature = inspect.signature(resolver)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    params = list(signature.parameters.values())[2:]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(args) <= len(params):
        return
    wanted = ", ".join(p.name if p.default is p.empty else f"[{p.name}]" for p in params)
    raise InterpolationResolutionError(
        f"TypeError raised while resolving interpolation: {name} takes ({wanted}), "
        f"got {len(args)} arguments {args!r}")


RESOLVERS = {
    "oc.env": _env, "oc.select": _select, "oc.decode": _decode, "oc.create": _create,
    "oc.deprecated": _deprecated, "oc.dict.keys": _keys, "oc.dict.values": _values,
}


def resolve_tree(tree, resolvers=None, hidden=()):
    """A copy of ``tree`` (dicts and lists) with every interpolation resolved.

    ``resolvers`` adds or replaces resolvers: ``{name: f}``, ``f(resolver, key_path,
    *args)``.  The top-level keys in ``hidden`` can be referenced but are neither resolved
    (unless referenced) nor returned.

    Raises:
        InterpolationError: a subclass named as OmegaConf names it; the message ends with
            the key being resolved and its text.
    """
    res = _Resolver(tree, resolvers)
    if not hidden:
        return res.value(())
    return {k: res.value((k,)) for k in tree if k not in hidden}


def user_resolver(function):
    """Wrap ``function(*args)`` (as given to ``OmegaConf.register_new_resolver``) for
    :func:`resolve_tree`."""
    def call(res, here, *args):
        return function(*args)
    return call
