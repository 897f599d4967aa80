"""YAML through PyYAML's safe loader and dumper, with the scalar rules of OmegaConf 2.3.

PyYAML resolves plain scalars by YAML 1.1, where ``1e-3``, ``1E5`` and ``1.0e3`` are
*strings* (1.1 floats need a dot and a signed exponent).  Hydra and OmegaConf read them as
floats, and so does Ato: :class:`AtoSafeLoader` is a ``yaml.SafeLoader`` whose float rule
accepts every float YAML 1.2 accepts (plus 1.1's ``_`` separators and ``1:30.5``
sexagesimals), and which, like OmegaConf, reads unquoted dates as strings and refuses a
mapping that repeats a key.  The full table is in ``docs/formats.md``.

:class:`AtoSafeDumper` uses the same rules to decide when a string must be quoted, so a
string ``'1e-3'`` (or ``'2001-12-14'``) is written quoted and reads back as a string; dates
and datetimes are written with an explicit ``!!timestamp`` tag and read back as dates.
"""

from __future__ import annotations

import datetime
import re

import yaml as _yaml

from ato.errors import ConfigFileError
from ato.plugins.interfaces import config_data
from ato.representable import Unrepresentable, a_type, prepare

_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

#: A plain scalar that is a float (checked before ints, which never match it).
_FLOAT = re.compile(r"""^(?:
      [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?   # 1.  1.5  1.5e3  1_000.5
    | [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+                      # 1e3  1E-5  +2e+7
    | [-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?               # .5  -.5e3
    | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*           # 190:20:30.15 (YAML 1.1)
    | [-+]?\.(?:inf|Inf|INF)
    | \.(?:nan|NaN|NAN)
    )$""", re.X)


def _resolvers(base: dict, drop=(_FLOAT_TAG, _TIMESTAMP_TAG)) -> dict:
    """``base``'s implicit resolvers with Ato's float rule first and the ``drop`` tags
    removed."""
    out: dict = {}
    for first, rules in base.items():
        kept = [(tag, rx) for tag, rx in rules if tag not in drop]
        if first in "-+0123456789.":
            kept.insert(0, (_FLOAT_TAG, _FLOAT))
        out[first] = kept
    for first in "-+0123456789.":
        out.setdefault(first, [(_FLOAT_TAG, _FLOAT)])
    return out


class AtoSafeLoader(_yaml.SafeLoader):
    """``yaml.SafeLoader`` with OmegaConf's scalar rules and duplicate keys refused."""

    yaml_implicit_resolvers = _resolvers(_yaml.SafeLoader.yaml_implicit_resolvers)

    def compose_node(self, parent, index):
        """Refuse an alias used inside its own anchor (``a: &a {b: *a}``): the data would
        contain itself, which no config can."""
        open_anchors = self.__dict__.setdefault("_open_anchors", {})
        event = self.peek_event()
        if isinstance(event, _yaml.AliasEvent) and event.anchor in open_anchors:
            raise _yaml.composer.ComposerError(
                "while composing a node", open_anchors[event.anchor],
                f"recursive alias: *{event.anchor} is used inside its own anchor "
                f"&{event.anchor} (line {open_anchors[event.anchor].line + 1}), so the value "
                f"would contain itself", event.start_mark)
        anchor = None if isinstance(event, _yaml.AliasEvent) else event.anchor
        if anchor is not None:
            open_anchors[anchor] = event.start_mark
        try:
            return super().compose_node(parent, index)
        finally:
            if anchor is not None:
                open_anchors.pop(anchor, None)

    def compose_document(self):
        """Refuse a document whose aliases expand to more than :data:`MAX_ALIAS_VALUES`
        values (anchors used inside anchors multiply: a "billion laughs" file of 500 bytes
        would load as 10**9 values): counted on the node graph, each shared node once."""
        node = super().compose_document()
        added = _expanded_size(node)
        if added > MAX_ALIAS_VALUES:
            raise AliasExpansionError(
                f"aliases expand to more than {MAX_ALIAS_VALUES:,} values ({added:,}: "
                f"anchors used inside anchors multiply); write the data out or nest fewer "
                f"aliases")
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, _yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, _yaml.ScalarNode) or key_node.tag == \
                        "tag:yaml.org,2002:merge":
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key_node.value!r} (first at line {seen[key] + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


#: How many values a YAML document may add through aliases (each use of an alias counts
#: every value of its anchor again); a file of plain values has no such limit.
MAX_ALIAS_VALUES = 1_000_000


class AliasExpansionError(_yaml.YAMLError):
    """A YAML document's aliases expand to more values than Ato reads."""


def _expanded_size(root) -> int:
    """How many values ``root`` makes once every alias is expanded, beyond the nodes the
    document holds itself (0 for a document without aliases); linear in the nodes, each
    shared node counted once with memoisation by ``id``."""
    size: dict = {}
    seen: set = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size or (not done and key in seen):
            continue
        children = []
        if isinstance(node, _yaml.SequenceNode):
            children = node.value
        elif isinstance(node, _yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            size[key] = 1 + sum(size.get(id(c), 0) for c in children)
            continue
        seen.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in seen)
    return size.get(id(root), 0) - len(seen)


class AtoSafeDumper(_yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes every string :class:`AtoSafeLoader` *or* a YAML 1.1
    reader (PyYAML, MMEngine) would retype, so its files mean the same to both."""

    yaml_implicit_resolvers = _resolvers(_yaml.SafeDumper.yaml_implicit_resolvers, drop=())


def _represent_date(dumper, value):
    # Quoted, so the tag is written explicitly: `!!timestamp '2001-01-02'`.
    text = value.isoformat(" ") if isinstance(value, datetime.datetime) else value.isoformat()
    return dumper.represent_scalar(_TIMESTAMP_TAG, text, style="'")


AtoSafeDumper.add_representer(datetime.date, _represent_date)
AtoSafeDumper.add_representer(datetime.datetime, _represent_date)


def _yaml_rule(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.date, bytes, set, frozenset)):
        return value  # !!timestamp, !!binary, !!set
    if isinstance(value, datetime.time):
        raise Unrepresentable("a time of day (datetime.time)", "store it as a string")
    raise Unrepresentable(f"{a_type(value)}", "convert it to a str, number or list")


def _yaml_key(key):
    if key is None or isinstance(key, (bool, int, float, str)):
        return key
    raise Unrepresentable(f"the key {key!r} ({a_type(key)})",
                          "use a string, number, bool or None as key")


def loads(text: str):
    """Parse YAML text with :class:`AtoSafeLoader` (raises ``yaml.YAMLError``)."""
    return _yaml.load(text, Loader=AtoSafeLoader)  # noqa: S506 - a SafeLoader subclass


class YAMLFormat:
    PLUGIN_NAME = "yaml"
    suffixes = (".yaml", ".yml")

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        try:
            data = loads(text)
        except _yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            message = e.problem or e.context
            if e.problem and e.context and not e.context.startswith("while "):
                message = f"{e.context}, {e.problem}"  # "expected a single document ..."
            raise ConfigFileError(path, message, line, column) from None
        except _yaml.YAMLError as e:
            raise ConfigFileError(path, str(e)) from None
        return {} if data is None else config_data(data, path)

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        nel = []  # PyYAML writes U+0085 raw, and reads it back as a space: escape it

        def rule(value):
            if isinstance(value, str) and "\x85" in value:
                nel.append(True)
            return _yaml_rule(value)

        def key_rule(key):
            if isinstance(key, str) and "\x85" in key:
                nel.append(True)
            return _yaml_key(key)

        data = prepare(data, path, "YAML", rule, key_rule)
        options = {"default_flow_style": False, "sort_keys": True, "allow_unicode": not nel}
        options.update(kwargs)
        if options.get("sort_keys"):
            data, options["sort_keys"] = _sorted(data), False
        try:
            return _yaml.dump(data, Dumper=AtoSafeDumper, **options)
        except _yaml.representer.RepresenterError as e:
            raise ConfigFileError(path, f"cannot write as YAML: {e.args[-1]!r}") from None


def _sorted(value):
    """``value`` with every mapping's keys in order: None, booleans, numbers, then strings
    (keys of different types cannot be compared, so PyYAML's own sort would fail)."""
    if isinstance(value, dict):
        def order(key):
            rank = 0 if key is None else 1 if isinstance(key, bool) else \
                2 if isinstance(key, (int, float)) else 3
            return (rank, key if rank in (1, 2, 3) else 0)
        return {k: _sorted(value[k]) for k in sorted(value, key=order)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
