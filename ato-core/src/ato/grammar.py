"""The command-line grammar: ``key=value`` assignments and bare view names.

A hand-written tokenizer and recursive-descent parser.  Nothing the user types is ever
evaluated: values are literals only (numbers, ``True``/``False``/``None``, quoted or
``%percent%`` strings, and lists, tuples and dicts of those, nested).  Every failure is a
:class:`~ato.errors.CLIError` naming the token and the position in it.

>>> parse_args(['lr=0.01', 'model=%resnet 101%', 'high_lr'])
[Assign(key=('lr',), value=0.01, token='lr=0.01'), Assign(key=('model',), value='resnet 101', token='model=%resnet 101%'), Word(name='high_lr', token='high_lr')]
"""

from __future__ import annotations

from bisect import bisect_right

from ato.errors import CLIError
from ato.representable import MAX_NESTING, a_type

__all__ = ["Assign", "Word", "Piece", "parse_args", "split_items", "parse_pieces", "parse_value", "format_value", "split_tokens",
           "shell_quote", "match_key"]

_CONSTANTS = {"True": True, "False": False, "None": None}
_FLOATS = {"inf": float("inf"), "+inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
_ATOM_STOP = frozenset(" \t\n\r\f\v,:[](){}'\"%")
_OPERATORS = "+-*/=;<>&|^~@!"


def _is_key_part(part: str) -> bool:
    """A name (letters, digits, ``_``, ``-``; not starting with a digit) or an index."""
    if not part:
        return False
    if part.isascii() and part.isdigit():
        return True
    if part[0].isdigit() or part[0] == "-":
        return False
    return all(c.isalnum() or c in "_-" for c in part)
_CLOSERS = {"[": "]", "(": ")", "{": "}"}
_OPENERS = {v: k for k, v in _CLOSERS.items()}
_VALUE_FORMS = "a number, True/False/None, %text%, [list], (tuple) or {dict}"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"',
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class _Item:
    """A parsed item; ``argument`` (where on the command line it came from, see
    :class:`~ato.errors.CLIError`) and ``context`` (``(whole_argument, offset)`` when the
    item is one of several in one argument, else ``None``) take no part in equality or the
    repr."""

    __slots__ = ()
    _fields: tuple = ()

    def where(self, position: int | None = None) -> dict:
        """The ``token``/``position``/``argument`` of a :class:`CLIError` about this item
        (``position`` counted in the item): an item of a multi-item argument is shown in
        its whole argument, pointed at."""
        context = getattr(self, "context", None)
        if context is None:
            return {"token": self.token, "position": position, "argument": self.argument}
        whole, offset = context
        return {"token": whole, "position": offset + (position or 0),
                "argument": self.argument}

    def __eq__(self, other):
        return type(self) is type(other) and all(
            _same(getattr(self, f), getattr(other, f)) for f in self._fields)

    def __hash__(self):
        return hash(tuple(getattr(self, f) for f in self._fields if f != "value"))

    def __repr__(self):
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({fields})"


def _same(a, b) -> bool:
    """Equality that also holds for NaN, so parsed values compare by content."""
    if type(a) is float and type(b) is float and a != a and b != b:
        return True
    if isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class Assign(_Item):
    """``key=value``: ``key`` is the dotted path split into parts."""

    __slots__ = ("key", "value", "token", "argument", "context")
    _fields = ("key", "value", "token")

    def __init__(self, key: tuple, value, token: str, argument=None, context=None):
        self.key, self.value, self.token, self.argument = key, value, token, argument
        self.context = context


class Word(_Item):
    """A bare word: the name of a view (possibly ``scope.view``)."""

    __slots__ = ("name", "token", "argument", "context")
    _fields = ("name", "token")

    def __init__(self, name: str, token: str, argument=None, context=None):
        self.name, self.token, self.argument, self.context = name, token, argument, context


# ----------------------------------------------------------------------- tokenizing
def _scan_percent(text: str, i: int, in_brackets: bool) -> int:
    """``text[i]`` is an opening ``%``; return the index of its closing ``%``."""
    stops = " \t\n\r\f\v" + (",]}):" if in_brackets else "")
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "%":
            if j + 1 < n and text[j + 1] == "%" and j + 2 < n and text[j + 2] not in stops:
                j += 2
                continue
            return j
        j += 1
    raise CLIError("unterminated %string: add the closing '%'", None, i)


def _scan_quote(text: str, i: int) -> int:
    q = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == q:
            return j
        j += 1
    raise CLIError(f"unterminated string: add the closing {q}", None, i)


def _scan_brackets(text: str, i: int) -> int:
    """``text[i]`` opens a bracket; return the index of the matching closer."""
    stack = [_CLOSERS[text[i]]]
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "%":
            j = _scan_percent(text, j, True) + 1
            continue
        if c in "'\"":
            j = _scan_quote(text, j) + 1
            continue
        if c == "\\":
            j += 2
            continue
        if c in _CLOSERS:
            stack.append(_CLOSERS[c])
        elif c in ")]}":
            if c != stack[-1]:
                raise CLIError(f"{c!r} does not match the open {_OPENERS[stack[-1]]!r}: "
                               f"close it with {stack[-1]!r}", None, j)
            stack.pop()
            if not stack:
                return j
        j += 1
    raise CLIError(f"unbalanced bracket: {text[i]!r} is never closed: add the closing "
                   f"{_CLOSERS[text[i]]!r}", None, i)


def split_tokens(text: str) -> list[str]:
    """Split a command line into tokens; ``%...%``, quoted and bracketed values may hold
    spaces."""
    return [text[start:stop] for start, stop in _token_spans(text)]


def _token_spans(text: str, place=None) -> list[tuple[int, int]]:
    """The ``(start, stop)`` offsets of each token of ``text``; ``place(start, stop)``
    gives the ``(token, offset of start in it, argument)`` of an error about that span."""
    spans = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        end = i
        while end < n and not text[end].isspace():
            end += 1
        eq = text.find("=", start, end)
        if eq < 0:
            spans.append((start, end))
            i = end
            continue
        v = eq + 1
        try:
            if v < n and text[v] == "%":
                stop = _scan_percent(text, v, False) + 1
            elif v < n and text[v] in "'\"":
                stop = _scan_quote(text, v) + 1
            elif v < n and text[v] in _CLOSERS:
                stop = _scan_brackets(text, v) + 1
            else:
                stop = end
        except CLIError as e:
            # the value runs to the end of the line: the rest of it is the token at fault
            rest = text[start:].rstrip()
            token, offset, argument = (rest, 0, None) if place is None else \
                place(start, start + len(rest))
            raise CLIError(e.detail, token, e.position - start + offset, argument) from None
        spans.append((start, stop))
        i = stop
    return spans


class Piece:
    """One item of the command line before it is parsed: its ``token``, ``argument``
    number (or ``(first, last)``), ``context`` (``(whole_argument, offset)`` when it is one
    of several items in one argument) and ``glued``, the :class:`CLIError` for text glued
    to its end (raised once the item itself parsed)."""

    __slots__ = ("token", "argument", "context", "glued")

    def __init__(self, token: str, argument=None, context=None, glued=None):
        self.token, self.argument, self.context, self.glued = token, argument, context, glued

    def error(self, message: str, position: int | None = None, cls=CLIError) -> CLIError:
        """A ``cls`` error about this item, shown in its whole argument."""
        if self.context is None:
            return cls(message, self.token, position, self.argument)
        whole, offset = self.context
        return cls(message, whole, offset + (position or 0), self.argument)

    def __repr__(self):
        return f"Piece({self.token!r}, {self.argument!r})"


def split_items(argv: list[str], numbers: list | None = None) -> list[Piece]:
    """The items of the command line ``argv`` (``numbers[i]`` is the number errors give
    ``argv[i]``, by default counted from 1): the arguments are joined and split again at
    white space, as the original did (SPEC 2), so one argument may hold several items and
    a value the shell split over several arguments (``model=%resnet 101%`` unquoted) is
    one item."""
    argv = list(argv)
    if numbers is None:
        numbers = list(range(1, len(argv) + 1))
    text = " ".join(argv)
    starts = []
    offset = 0
    for arg in argv:
        starts.append(offset)
        offset += len(arg) + 1

    def span_args(start: int, stop: int) -> tuple[int, int]:
        return bisect_right(starts, start) - 1, bisect_right(starts, max(stop - 1, start)) - 1

    def locate(start: int, stop: int):
        first, last = span_args(start, stop)
        return numbers[first] if first == last else (numbers[first], numbers[last])

    def place(start: int, stop: int):
        first, last = span_args(start, stop)
        token = text[start:stop]
        if first == last and argv[first].strip() != token:
            return argv[first], start - starts[first], numbers[first]
        return token, 0, locate(start, stop)

    spans = _token_spans(text, place)
    pieces = []
    for index, (start, stop) in enumerate(spans):
        token = text[start:stop]
        first, last = span_args(start, stop)
        context = None
        if first == last and argv[first].strip() != token:
            context = (argv[first], start - starts[first])
        piece = Piece(token, locate(start, stop), context)
        if index + 1 < len(spans) and spans[index + 1][0] == stop:
            # text glued to the item (``x='a'b``): an unquoted tail, not a second item
            end = stop
            while end < len(text) and not text[end].isspace():
                end += 1
            what = "the value" if "=" in token else "the view name"
            piece.glued = CLIError(
                f"unexpected {text[stop:end]!r} after {what} (one value per item; text goes "
                f"whole in %...%)", " ".join(argv[first:last + 1]), stop - starts[first],
                locate(start, stop))
        pieces.append(piece)
    return pieces


def parse_pieces(pieces: list[Piece]) -> list:
    """Parse :func:`split_items`' pieces into :class:`Assign` and :class:`Word` items."""
    items = []
    for piece in pieces:
        try:
            item = _item(piece.token, piece.argument)
        except CLIError as e:
            if piece.context is None:
                raise
            raise piece.error(e.detail, e.position, type(e)) from None
        item.context = piece.context
        items.append(item)
        if piece.glued is not None:
            raise piece.glued
    return items


# ----------------------------------------------------------------------- values
class _ValueParser:
    def __init__(self, text: str, key: str | None = None):
        self.text = text
        self.key = key
        self.pos = 0
        self.depth = 0  # containers open around the value being parsed

    def error(self, message, pos=None):
        raise CLIError(message, None, self.pos if pos is None else pos)

    def skip_ws(self):
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse(self, in_brackets=False):
        self.skip_ws()
        t = self.text
        if self.pos >= len(t):
            self.error(f"a value is missing here: write {_VALUE_FORMS} (%% is the empty "
                       f"string)")
        c = t[self.pos]
        if c == "%":
            end = _scan_percent(t, self.pos, in_brackets)
            value = _unescape_percent(t[self.pos + 1:end])
            self.pos = end + 1
            return value
        if c in "'\"":
            end = _scan_quote(t, self.pos)
            value = _unescape_quoted(t[self.pos + 1:end], self.pos)
            self.pos = end + 1
            return value
        if c in "[({":
            if self.depth >= MAX_NESTING:
                self.error(f"containers nested more than {MAX_NESTING} deep: Ato keeps at "
                           f"most {MAX_NESTING} levels of lists and dicts")
            self.depth += 1
            try:
                return self.parse_dict() if c == "{" else self.parse_sequence(c)
            finally:
                self.depth -= 1
        end = self.pos
        while end < len(t) and t[end] not in _ATOM_STOP:
            end += 1
        if end == self.pos:
            self.error(f"unexpected {c!r} where a value should start: write {_VALUE_FORMS}; "
                       f"text holding {c!r} goes in %...%")
        atom = t[self.pos:end]
        value = _atom_value(atom)
        if value is not _NOT_A_VALUE:
            self.pos = end
            return value
        # Not a literal: find the longest literal prefix to say precisely what is wrong.
        for cut in range(len(atom) - 1, 0, -1):
            if atom[cut] in _OPERATORS and _atom_value(atom[:cut]) is not _NOT_A_VALUE:
                self.pos += cut
                return _atom_value(atom[:cut])
        word = atom
        hint = {"true": "True", "false": "False", "none": "None", "null": "None"}.get(word.lower())
        if hint:
            self.error(f"{word!r} is not a value; did you mean {hint}?")
        if word[0] in _OPERATORS:
            self.error(self.not_an_expression(word))
        self.error(f"{word!r} is not a value; write strings as %{word}% "
                   + self.string_hint(self.pos, end))

    def not_an_expression(self, rest: str) -> str:
        """The message for an operator where a value or its end was expected."""
        if rest.startswith("=") and self.key is not None and self.pos == 0:
            try:
                parse_value(rest[1:])
                fix = f"{self.key}={rest[1:]}"
            except CLIError:  # `c==`: no value after the second '=' — the text is meant
                fix = f"{self.key}={format_value(rest)} for the text {rest!r}"
            return (f"unexpected {rest!r}: one '=' separates key and value (write "
                    f"{fix}; text holding '=' goes in %...%)")
        return (f"unexpected {rest!r}: values are literals, expressions are not evaluated "
                f"(write the value itself, or text as %{self.text}%)")

    def string_hint(self, start: int, end: int) -> str:
        """How to write ``text[start:end]`` as a string so that it survives a shell: the
        whole argument with ``%...%``, or with Python quotes inside the shell's quotes."""
        text, key, word = self.text, self.key, self.text[start:end]
        value = f"{text[:start]}{format_value(word)}{text[end:]}"
        try:
            parse_value(value)
        except CLIError:
            key = None  # the rest of the value is wrong too: show only the string
        if key is None:
            return (f"or '{word}' (Python quotes reach Ato only inside the shell's quotes: "
                    f"\"'{word}'\")")
        quoted = f"{key}={text[:start]}'{word}'{text[end:]}"
        return (f"(type {shell_quote(key + '=' + value)}, or {shell_quote(quoted)}: "
                f"a shell removes quotes that are not themselves quoted)")

    def parse_sequence(self, opener):
        closer = _CLOSERS[opener]
        start = self.pos
        self.pos += 1
        items = []
        trailing_comma = False
        while True:
            self.skip_ws()
            if self.pos >= len(self.text):
                self.error(f"unbalanced bracket: {opener!r} is never closed: add the "
                           f"closing {closer!r}", start)
            if self.text[self.pos] == closer:
                self.pos += 1
                break
            items.append(self.parse(True))
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                trailing_comma = True
                continue
            trailing_comma = False
            if self.pos < len(self.text) and self.text[self.pos] == closer:
                continue
            if self.pos >= len(self.text):
                self.error(f"unbalanced bracket: {opener!r} is never closed: add the "
                           f"closing {closer!r}", start)
            self.error(f"expected ',' or {closer!r} after an item (separate items with ','; "
                       f"text holding spaces or commas goes in %...%)")
        if opener == "(" and len(items) == 1 and not trailing_comma:
            return items[0]  # (x) is just x, as in Python
        return items if opener == "[" else tuple(items)

    def parse_dict(self):
        start = self.pos
        self.pos += 1
        out = {}
        while True:
            self.skip_ws()
            if self.pos >= len(self.text):
                self.error("unbalanced bracket: '{' is never closed: add the closing '}'", start)
            if self.text[self.pos] == "}":
                self.pos += 1
                return out
            key_pos = self.pos
            key = self.parse(True)
            try:
                hash(key)
            except TypeError:
                self.error(f"a dict key must be a string or number, not {a_type(key)}",
                           key_pos)
            self.skip_ws()
            if self.pos >= len(self.text) or self.text[self.pos] != ":":
                self.error("expected ':' after a dict key (write {key: value, ...})")
            self.pos += 1
            out[key] = self.parse(True)
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
            elif self.pos < len(self.text) and self.text[self.pos] != "}":
                self.error("expected ',' or '}' after a dict value (write {key: value, ...})")


_NOT_A_VALUE = object()


def _atom_value(atom: str):
    """The value of an unquoted atom (number or constant), or ``_NOT_A_VALUE``."""
    if atom in _CONSTANTS:
        return _CONSTANTS[atom]
    if atom in _FLOATS:
        return _FLOATS[atom]
    body = atom[1:] if atom[:1] in "+-" else atom
    if not body or not (body[0].isdigit() or (body[0] == "." and body[1:2].isdigit())):
        return _NOT_A_VALUE
    if not all(ch.isascii() and (ch.isalnum() or ch in "._+-") for ch in body):
        return _NOT_A_VALUE
    if "__" in atom or atom.endswith("_") or "_." in atom or "._" in atom:
        return _NOT_A_VALUE
    try:
        if body[:2].lower() in ("0x", "0o", "0b"):
            return int(atom, 0)
        if all(ch.isdigit() or ch == "_" for ch in body):
            return int(atom)
        return float(atom)
    except ValueError:
        return _NOT_A_VALUE


def _unescape_percent(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in "%\\":
            out.append(body[i + 1])
            i += 2
        elif c == "%" and i + 1 < len(body) and body[i + 1] == "%":
            out.append("%")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _unescape_quoted(body: str, offset: int) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(body):
            out.append("\\")
            break
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise CLIError(f"bad \\{e} escape: expected {width} hex digits (write \\\\ for "
                               f"a backslash)", None, offset + 1 + i)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise CLIError(f"\\{e}{digits} is not a valid character (the largest is "
                               f"\\U0010ffff)", None, offset + 1 + i)
            out.append(chr(code))
            i += 2 + width
        else:
            out.append("\\" + e)
            i += 2
    return "".join(out)


def parse_value(text: str, key: str | None = None):
    """Parse one value (the right-hand side of ``key=value``; ``key``, when given, makes
    error hints show the whole argument)."""
    p = _ValueParser(text, key)
    value = p.parse()
    p.skip_ws()
    if p.pos != len(text):
        rest = text[p.pos:]
        if rest.startswith(("+", "-", "*", "/", "=", ";", "[", "(")):
            p.error(p.not_an_expression(rest))
        p.error(f"unexpected {rest!r} after the value (one value per item; text goes whole "
                f"in %...%)")
    return value


def _parse_key(key: str, token: str, argument=None) -> tuple:
    if not key:
        raise CLIError("the key before '=' is empty: write key=value, e.g. lr=0.1", token, 0,
                       argument)
    parts = key.split(".")
    if len(parts) > MAX_NESTING:
        raise CLIError(f"the key has {len(parts)} parts: Ato nests keys at most {MAX_NESTING} "
                       f"deep", token, None, argument)
    for part in parts:
        if not _is_key_part(part):
            pos = token.find(part) if part else token.find("..")
            raise CLIError(
                f"{key!r} is not a valid key (use names separated by dots, e.g. model.depth)",
                token, max(pos, 0), argument,
            )
    return tuple(parts)


def parse_args(argv: list[str], numbers: list[int] | None = None) -> list:
    """Turn command-line arguments into :class:`Assign` and :class:`Word` items.

    ``numbers[i]`` is the number that error messages give ``argv[i]`` (its index in
    ``sys.argv``); by default ``argv`` is numbered from 1.  Each item's ``argument`` is that
    number, or ``(first, last)`` for a token spread over several arguments.

    Raises:
        CLIError: a token is neither a view name nor a ``key=value`` assignment with a
            literal value; the error names the token (the whole argument, for one of
            several items in it), its argument number and the character where the problem
            is, and says how to write it instead.
    """
    return parse_pieces(split_items(argv, numbers))


def _item(token: str, argument) -> Assign | Word:
    eq = token.find("=")
    if eq < 0:
        if not all(_is_key_part(p) for p in token.split(".")):
            raise CLIError(
                "not a view name or key=value assignment (set a value as key=value; "
                "arguments for your own parser: Scope(use_external_parser=True), "
                "docs/config.md#argparse)", token, argument=argument)
        return Word(token, token, argument)
    key = _parse_key(token[:eq], token, argument)
    try:
        value = parse_value(token[eq + 1:], token[:eq])
    except CLIError as e:
        raise CLIError(e.detail, token, (e.position or 0) + eq + 1, argument) from None
    return Assign(key, value, token, argument)


# ----------------------------------------------------------------------- formatting
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "%_-.=,:/+@")


def shell_quote(argument: str) -> str:
    """``argument`` as typed in a POSIX shell: bare when nothing in it is special to the
    shell (quotes, spaces, brackets, globs, ``$``...), else in double quotes when that is
    enough, else in single quotes."""
    if argument and all(c in _SHELL_SAFE for c in argument):
        return argument
    if not any(c in '"$`\\!' for c in argument):
        return f'"{argument}"'
    return "'" + argument.replace("'", "'\"'\"'") + "'"


def format_value(value) -> str:
    """The CLI text that :func:`parse_value` reads back as ``value``."""
    if value is None or value is True or value is False:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value:
            return "nan"
        return repr(value)
    if isinstance(value, str):
        return "%" + value.replace("\\", "\\\\").replace("%", "\\%") + "%"
    if isinstance(value, tuple):
        inner = ",".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict) or hasattr(value, "items"):
        return "{" + ",".join(f"{format_value(k)}:{format_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{type(value).__name__} values cannot be written on the command line")


def match_key(mapping, part: str, token: str, where: str = "", argument=None):
    """The key of ``mapping`` that the command-line key part ``part`` names.

    A part made of digits names an existing ``int`` key of that value (``classes.1=...``
    on ``{0: 'cat', 1: 'dog'}`` updates key ``1``); otherwise the text itself is the key.

    Raises:
        CLIError: the mapping has both ``'1'`` and ``1``, so ``part`` is ambiguous.
    """
    if not (part.isascii() and part.isdigit()):
        return part
    number = int(part)
    has_int = any(type(k) is int and k == number for k in mapping)
    if not has_int:
        return part
    if part in mapping:
        place = f"{where!r}" if where else "the config"
        raise CLIError(f"{place} has both the key {part!r} (text) and the key {number} "
                       f"(int), so {part} is ambiguous; rename one of them", token,
                       argument=argument)
    return number
