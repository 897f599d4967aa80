"""XYZ: Ato's small indentation-based text format (used by ``manual``, ``print`` and
``.xyz`` files).

Writing is exact; reading is lossy by design (strings that look like numbers come back as
numbers), which is why ``.xyz`` *files* refuse such strings before writing (see
:func:`reads_back`).  Unlike the original reader, the text after ``key:`` or ``index)`` is always one
scalar, negative numbers are numbers, and text that fails numeric conversion stays text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["dumps", "dump", "loads", "load"]

_DEFAULT_FORMAT = {"key-prefix": "", "key-postfix": ":", "index-prefix": "", "index-postfix": ")"}
_INDENT = "  "
_FLOAT_WORDS = frozenset({"inf", "-inf", "+inf", "nan"})


def _fmt(format_dict):
    fmt = dict(_DEFAULT_FORMAT)
    for k, v in (format_dict or {}).items():
        fmt[k.replace("_", "-")] = v
    return fmt


def _lines(obj, depth, fmt, out):
    pad = _INDENT * depth
    if isinstance(obj, Mapping):
        items = [(f"{fmt['key-prefix']}{k}{fmt['key-postfix']}", v) for k, v in obj.items()]
    else:
        items = [(f"{fmt['index-prefix']}{i}{fmt['index-postfix']}", v) for i, v in enumerate(obj)]
    for marker, value in items:
        if isinstance(value, Mapping):
            if len(value) == 0:
                out.append(f"{pad}{marker} [Empty Mapping]")
            else:
                out.append(f"{pad}{marker}")
                _lines(value, depth + 1, fmt, out)
        elif isinstance(value, (list, tuple)):
            if len(value) == 0:
                out.append(f"{pad}{marker} [Empty Sequence]")
            else:
                out.append(f"{pad}{marker}")
                _lines(value, depth + 1, fmt, out)
        else:
            out.append(f"{pad}{marker} {value}")


def dumps(obj, format_dict=None) -> str:
    """Render a mapping or sequence as XYZ text (no trailing newline)."""
    fmt = _fmt(format_dict)
    out: list[str] = []
    if format_dict:
        out.extend(f"{k} -> {v}" for k, v in fmt.items() if _DEFAULT_FORMAT[k] != v)
    if isinstance(obj, Mapping) and len(obj) == 0:
        out.append(" [Empty Mapping]")
    elif not isinstance(obj, Mapping) and len(obj) == 0:
        out.append(" [Empty Sequence]")
    else:
        _lines(obj, 0, fmt, out)
    return "\n".join(out)


def dump(obj, path_or_file, format_dict=None) -> None:
    text = dumps(obj, format_dict)
    if hasattr(path_or_file, "write"):
        path_or_file.write(text)
        return
    from ato.plugins.manager import atomic_write_text

    atomic_write_text(os.fspath(path_or_file), text)


def _scalar(text: str):
    low = text.lower()
    if low == "none" or text == "":
        return None
    if low == "true":
        return True
    if low == "false":
        return False
    if text == "[Empty Sequence]":
        return []
    if text == "[Empty Mapping]":
        return {}
    if text in _FLOAT_WORDS:
        return float(text)
    body = text[1:] if text[:1] in "+-" else text
    if body.isascii() and body.isdigit():  # not "²" or "٣": int() refuses them
        return int(text)
    mantissa = body.replace(".", "", 1).replace("e+", "", 1).replace("e-", "", 1)
    if mantissa.isascii() and mantissa.isdigit():
        try:
            return float(text)
        except ValueError:
            return text
    return text


def reads_back(text: str):
    """What :func:`loads` makes of ``text`` written after a marker (one scalar)."""
    return _scalar(text.strip())


def loads(text: str):
    """Parse XYZ text back into plain dicts/lists."""
    fmt = dict(_DEFAULT_FORMAT)
    body = []
    numbers = []  # the file line of each body line
    for number, raw in enumerate(text.splitlines(), 1):
        head = raw.strip()
        if " -> " in head and head.split(" -> ", 1)[0] in _DEFAULT_FORMAT and not body:
            name, value = head.split(" -> ", 1)
            fmt[name] = value
            continue
        if head:
            body.append(raw)
            numbers.append(number)
    if not body:
        return {}
    if len(body) == 1 and body[0].strip() in ("[Empty Mapping]", "[Empty Sequence]"):
        return _scalar(body[0].strip())
    pos = 0

    def parse_block(depth):
        nonlocal pos
        container = None
        first_line: dict = {}  # key (or ("seq", index)) -> the line that set it
        while pos < len(body):
            line = body[pos]
            indent = (len(line) - len(line.lstrip(" "))) // len(_INDENT)
            if indent < depth:
                break
            content = line.strip()
            kp, kq = fmt["key-prefix"], fmt["key-postfix"]
            ip, iq = fmt["index-prefix"], fmt["index-postfix"]
            pos += 1
            marker = index_marker(content, fmt)
            if marker is not None and not isinstance(container, dict):
                # `0) 1:30` is an index line whose value holds ':', not a key line
                idx, rest = marker
                if container is None:
                    container = []
                slot = ("seq", idx)
            elif kq in content and content.startswith(kp):
                key, _, rest = content[len(kp):].partition(kq)
                if container is None:
                    container = {}
                slot = ("map", key)
            elif iq in content and content.startswith(ip):
                index, _, rest = content[len(ip):].partition(iq)
                try:
                    idx = int(index)
                except ValueError:
                    raise ValueError(f"line {numbers[pos - 1]}: bad index {index!r} in "
                                     f"{content!r}") from None
                if container is None:
                    container = []
                slot = ("seq", idx)
            else:
                return _scalar(content)
            rest = rest.strip()
            line = numbers[pos - 1]
            if rest:
                value = _scalar(rest)
                if pos < len(body) and _depth(body[pos]) > indent:
                    raise ValueError(
                        f"line {numbers[pos]}: indented under line {line} ({content!r}), "
                        f"whose value is a scalar, which cannot hold keys or items (indent it "
                        f"as line {line} for a sibling, or move the value into it)")
            elif pos < len(body) and _depth(body[pos]) > depth:
                value = parse_block(depth + 1)
            else:
                value = None
            if slot[0] == "map":
                if not isinstance(container, dict):
                    raise ValueError(f"line {line}: key {slot[1]!r} inside a sequence")
                if slot[1] in first_line:
                    raise ValueError(f"line {line}: duplicate key {slot[1]!r} (first at line "
                                     f"{first_line[slot[1]]})")
                first_line[slot[1]] = line
                container[slot[1]] = value
            else:
                if not isinstance(container, list):
                    raise ValueError(f"line {line}: index {slot[1]} inside a mapping")
                if slot in first_line:
                    raise ValueError(f"line {line}: duplicate index {slot[1]} (first at line "
                                     f"{first_line[slot]})")
                first_line[slot] = line
                while len(container) <= slot[1]:
                    container.append(None)
                container[slot[1]] = value
        return container

    return parse_block(0)


def index_marker(content: str, fmt: dict | None = None):
    """``(index, rest)`` when ``content`` starts with an index marker such as ``0)``."""
    fmt = fmt or _DEFAULT_FORMAT
    ip, iq = fmt["index-prefix"], fmt["index-postfix"]
    if not content.startswith(ip):
        return None
    i = len(ip)
    j = i
    while j < len(content) and content[j] in "0123456789":
        j += 1
    if j == i or not content.startswith(iq, j):
        return None
    return int(content[i:j]), content[j + len(iq):]


def _depth(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // len(_INDENT)


def load(path_or_file):
    if hasattr(path_or_file, "read"):
        return loads(path_or_file.read())
    with open(path_or_file, encoding="utf-8") as f:
        return loads(f.read())
