"""Hydra-style composition of config trees: ``ADict.compose_hierarchy``.

Follows Hydra's defaults-list rules (hydra-core 1.3): the ``defaults`` list of the primary
config and of every group file is processed depth first; ``_self_`` says where a config's
own values go (last when absent); group content is placed under the group's package (its
path, dotted) unless a ``# @package`` header or a ``group@pkg`` entry says otherwise
(``_global_`` is the root, ``_here_`` the containing config's package); ``null`` skips a
group, ``???`` requires a selection, ``optional`` tolerates a missing file, ``override``
changes a choice made elsewhere in the tree, and a list selects several options.
``select`` replaces a group's choice (or adds the group); ``overrides`` set dotted keys like
Hydra's ``++key=value``.  ``${...}`` interpolations are left as written unless
``resolve=True``, which resolves them with OmegaConf 2.3's grammar, resolvers and errors
(:mod:`ato.mmlab.interpolation`) plus Hydra's ``now``, ``python_version`` and ``hydra``.  The ``hydra`` group (Hydra's own settings) is skipped and a top-level
``hydra`` key dropped, as ``hydra.compose()`` does.
"""

from __future__ import annotations

import copy
import os
import re
import warnings

from ato.adict import ADict
from ato.errors import AtoError, ConfigFileError, user_stacklevel
from ato.representable import a_type

EXTENSIONS = (".yaml", ".yml", ".json", ".toml", ".xyz")
MISSING = "???"
_HEADER = re.compile(r"^#\s*@package\s+(\S+)\s*$")


class CompositionError(AtoError, ValueError):
    """The defaults lists cannot be composed (names the file and the entry)."""


class MissingConfigError(AtoError, FileNotFoundError):
    """A config that a defaults list, ``select`` or the call asked for does not exist; the
    message names who asked for it, the config root and the options the group has."""

    def __str__(self) -> str:  # OSError would prefix "[Errno ...]" for two arguments
        return self.args[0]


class MissingRequiredKeyError(AtoError, KeyError):
    """A key listed in ``required`` is not in the composed config."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ComposeArgumentError(AtoError, TypeError):
    """An argument of ``compose_hierarchy`` has a type or form it does not take."""


def _find(root: str, rel: str) -> str | None:
    for ext in EXTENSIONS:
        path = os.path.join(root, rel + ext)
        if os.path.isfile(path):
            return path
    return None


def _select_label(key, option) -> str:
    return f"select={{{key!r}: {option!r}}}"


def _options(root: str, group: str) -> list[str]:
    """The options (file names without extension) of ``group`` under ``root``."""
    folder = os.path.join(root, group)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted({os.path.splitext(n)[0] for n in names
                   if n.endswith(EXTENSIONS) and os.path.isfile(os.path.join(folder, n))})


def _line_of(path: str, *words: str) -> int | None:
    """The first line of ``path`` that holds every one of ``words`` (whole words), or
    ``None``: where a defaults entry naming them was written."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    patterns = [re.compile(rf"(?<![\w/.-]){re.escape(w)}(?![\w.-])") for w in words if w]
    for number, line in enumerate(lines, 1):
        if all(p.search(line) for p in patterns):
            return number
    return None


def _load(path: str):
    from ato.plugins.manager import format_for, parse_text

    with open(path, encoding="utf-8") as f:
        text = f.read()
    header = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        m = _HEADER.match(stripped)
        if m:
            header = m.group(1)
    data = parse_text(format_for(path), text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(path, f"a composed config must be a mapping, not "
                                    f"{a_type(data)}")
    return data, header


class _Entry:
    __slots__ = ("kind", "group", "package", "option", "optional", "override")

    def __init__(self, kind, group=None, package=None, option=None, optional=False,
                 override=False):
        self.kind, self.group, self.package, self.option = kind, group, package, option
        self.optional, self.override = optional, override


def _parse_entry(raw, path: str) -> _Entry:
    if raw == "_self_":
        return _Entry("self")
    if isinstance(raw, str):
        words = raw.split()
        optional = words[0] == "optional"
        name = words[-1]
        target, _, package = name.partition("@")
        return _Entry("config", target, package or None, optional=optional)
    if isinstance(raw, dict) and len(raw) == 1:
        (key, option), = raw.items()
        words = str(key).split()
        flags = set(words[:-1])
        unknown = flags - {"optional", "override"}
        if unknown:
            raise CompositionError(f"{path}: unknown keyword {sorted(unknown)[0]!r} in defaults "
                                   f"entry {raw!r}")
        group, _, package = words[-1].partition("@")
        return _Entry("group", group, package or None, option, "optional" in flags,
                      "override" in flags)
    raise CompositionError(f"{path}: cannot read defaults entry {raw!r}")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _absolute(group: str, here: str) -> str:
    """A group path from a defaults entry, made absolute (``/x`` is already absolute)."""
    return group[1:] if group.startswith("/") else _join(here, group)


def _package_of(entry_package, header, group_path: str, parent_package: str) -> str:
    if entry_package is not None:
        if entry_package == "_here_":
            return parent_package
        if entry_package == "_global_":
            return ""
        if entry_package.startswith("_global_."):
            return entry_package[len("_global_."):]
        return ".".join(p for p in (parent_package, entry_package.replace("_here_.", "")) if p)
    if header is not None:
        if header == "_global_":
            return ""
        if header == "_group_":
            return group_path.replace("/", ".")
        return header[len("_global_."):] if header.startswith("_global_.") else header
    return group_path.replace("/", ".")


def merge_into(target: dict, source, path: list[str] | None = None) -> None:
    """OmegaConf-style merge: mappings key by key, anything else replaces."""
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _merge_at(result: dict, package: str, data: dict) -> None:
    node = result
    if package:
        for part in package.split("."):
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
    merge_into(node, data)


class _Composer:
    def __init__(self, root, select, on_missing):
        self.root = root
        self.select = {str(k): v for k, v in (select or {}).items()}
        self.on_missing = on_missing
        self.loading: list[str] = []  # the files whose defaults are being processed

    def missing(self, what: str, asker: str | None = None, group: str | None = None,
                line: int | None = None) -> None:
        """``what`` (a path under the root, without extension) does not exist; ``asker``
        is the file (or argument) that asked for it, ``group`` the group it is an option
        of, ``line`` the line of ``asker`` that asked."""
        where = ""
        if asker is not None:
            where = asker + (f":{line}" if line is not None else "") + ": "
        message = f"{where}{what} not found (no {what}.[yaml|yml|json|toml|xyz] in {self.root}"
        if group is not None:
            options = _options(self.root, group)
            message += (f"; options of group {group!r}: {', '.join(options)}" if options else
                        f"; group {group!r} has no options there")
        message += ")"
        if self.on_missing == "error":
            raise MissingConfigError(message)
        if self.on_missing == "warn":
            warnings.warn(f"missing: {message}", UserWarning, stacklevel=user_stacklevel())

    def compose(self, config_filename: str) -> dict:
        tree_overrides: dict = {}
        for _ in range(16):  # overrides found deeper in the tree may change earlier choices
            self.choices = {**tree_overrides, **self.select}
            self.found_overrides: dict = {}
            self.used: set = set()
            result = self.build(config_filename)
            new = {k: v for k, v in self.found_overrides.items() if k not in self.select}
            if new == tree_overrides:
                return result
            tree_overrides = new
        raise CompositionError("defaults-list overrides do not settle (a cycle of overrides)")

    def build(self, config_filename: str) -> dict:
        result: dict = {}
        path = _find(self.root, config_filename)
        if path is None:
            self.missing(config_filename, f"config_filename={config_filename!r}")
            for key, option in self.select.items():
                self.add_group(result, key, option, "", "", _select_label(key, option))
            return result
        self.load_config(result, path, "", None, "", primary=True)
        return result

    def load_config(self, result, path, group_dir, entry_package, parent_package, primary=False,
                    group_path=""):
        if path in self.loading:
            chain = self.loading[self.loading.index(path):] + [path]
            shown = " -> ".join(os.path.relpath(p, self.root) for p in chain)
            raise CompositionError(f"{os.path.relpath(path, self.root)}: defaults cycle: "
                                   f"{shown}")
        self.loading.append(path)
        try:
            self._load_config(result, path, group_dir, entry_package, parent_package, primary,
                              group_path)
        finally:
            self.loading.pop()

    def _load_config(self, result, path, group_dir, entry_package, parent_package, primary,
                     group_path):
        data, header = _load(path)
        raw_defaults = data.pop("defaults", None) or []
        if not isinstance(raw_defaults, list):
            raise CompositionError(f"{path}: 'defaults' must be a list")
        package = "" if primary and entry_package is None and header in (None, "_global_") else \
            _package_of(entry_package, header, group_path, parent_package)
        entries = [_parse_entry(raw, path) for raw in raw_defaults]
        if not any(e.kind == "self" for e in entries):
            entries.append(_Entry("self"))
        for entry in entries:
            if entry.kind == "self":
                _merge_at(result, package, data)
            elif entry.kind == "config":
                rel = _absolute(entry.group, group_dir)
                target = _find(self.root, rel)
                if target is None:
                    if not entry.optional:
                        self.missing(rel, path, line=_line_of(path, entry.group))
                    continue
                sub_group = os.path.dirname(rel).replace(os.sep, "/")
                self.load_config(result, target, sub_group, entry.package, package,
                                 group_path=sub_group)
            else:
                self.group_entry(result, entry, group_dir, package, path)
        if primary:
            for key, option in self.select.items():
                if key not in self.used:
                    self.add_group(result, key, option, "", package,
                                   _select_label(key, option))

    def group_entry(self, result, entry, group_dir, package, path):
        group = _absolute(entry.group, group_dir)
        key = group + (f"@{entry.package}" if entry.package else "")
        if entry.override:
            self.found_overrides.setdefault(key, entry.option)
            return
        if group == "hydra" or group.startswith("hydra/"):
            return
        option, asker = entry.option, path
        for candidate in (key, group):
            if candidate in self.choices:
                option = self.choices[candidate]
                self.used.add(candidate)
                asker = _select_label(candidate, option) if candidate in self.select else path
                break
        self.load_group(result, group, entry.package, option, entry.optional, package, asker,
                        entry.group)

    def add_group(self, result, key, option, group_dir, package, path):
        group, _, pkg = key.partition("@")
        self.used.add(key)
        self.load_group(result, _absolute(group, group_dir), pkg or None, option, False, package,
                        path)

    def load_group(self, result, group, entry_package, option, optional, package, path,
                   written=None):
        """Load ``option`` of ``group``; ``path`` is the file (or ``'select'``) that chose
        it, ``written`` the group as its defaults entry spells it."""
        if option is None:
            return
        if option == MISSING:
            raise CompositionError(f"{path}: you must select a config for group {group!r} "
                                   f"(it defaults to ???)")
        options = option if isinstance(option, (list, tuple)) else [option]
        for opt in options:
            target = _find(self.root, _join(group, str(opt)))
            if target is None:
                if not optional:
                    line = None
                    if os.path.isfile(path):
                        line = _line_of(path, written or group, str(opt))
                    self.missing(f"{group}/{opt}", path, group, line)
                continue
            self.load_config(result, target, group, entry_package, package, group_path=group)


def resolve_interpolations(config: ADict, hydra_node=None, config_filename: str = "config",
                           resolvers=None) -> ADict:
    """Resolve every ``${...}`` with OmegaConf 2.3's grammar, resolvers and errors (see
    :mod:`ato.mmlab.interpolation`), plus Hydra's ``now``, ``python_version`` and ``hydra``
    resolvers; ``resolvers`` maps more names to plain functions."""
    from ato.mmlab.interpolation import resolve_tree, user_resolver

    tree = config.to_dict()
    hidden = ()
    if hydra_node is not None and "hydra" not in tree:
        tree["hydra"] = hydra_node
        hidden = ("hydra",)
    extra = _hydra_resolvers(config_filename)
    extra.update({name: user_resolver(f) for name, f in (resolvers or {}).items()})
    return ADict(resolve_tree(tree, extra, hidden))


def _hydra_resolvers(config_filename: str) -> dict:
    """Hydra's own resolvers, answered without a Hydra run."""
    import datetime
    import sys

    from ato.mmlab.interpolation import InterpolationResolutionError

    started = datetime.datetime.now()

    def now(res, here, pattern="%Y-%m-%d"):
        return started.strftime(str(pattern))  # one instant per composition, as Hydra caches

    def python_version(res, here, level="major"):
        parts = {"major": 1, "minor": 2, "micro": 3}
        if level not in parts:
            raise ValueError(f"python_version takes major, minor or micro, not {level!r}")
        return ".".join(str(v) for v in sys.version_info[:parts[level]])

    def hydra(res, here, path):
        path = str(path)
        found, value = res.select(f"hydra.{path}", ())
        if found:
            return value
        if path == "runtime.cwd":
            return os.getcwd()
        if path == "runtime.output_dir":
            found, run_dir = res.select("hydra.run.dir", ())
            return os.path.abspath(run_dir if found else
                                   started.strftime(os.path.join("outputs", "%Y-%m-%d",
                                                                 "%H-%M-%S")))
        if path == "job.name":
            return config_filename
        raise InterpolationResolutionError(
            f"'hydra:{path}' is not known without a Hydra run: Ato answers runtime.cwd, "
            f"runtime.output_dir, job.name and the keys of a 'hydra:' mapping in the "
            f"primary config (or pass overrides= for the key that uses it)")

    return {"now": now, "python_version": python_version, "hydra": hydra}


def compose_hierarchy(root, config_filename: str = "config", select=None, overrides=None,
                      on_missing: str = "error", required=None, resolve: bool = False,
                      resolvers=None) -> ADict:
    """Compose ``root/<config_filename>`` with its defaults lists (see the module docs).

    ``resolve=True`` resolves interpolations after the overrides are applied;
    ``resolvers`` (``{name: function}``) adds resolvers as
    ``OmegaConf.register_new_resolver`` does.  Raises
    :class:`~ato.mmlab.interpolation.InterpolationError` subclasses named as OmegaConf's.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise MissingConfigError(f"config root {root} does not exist")
    pairs = _override_pairs(overrides, root)
    _check_mapping("select", select, "{'model': 'resnet50'} (a group's option, or a list of "
                                     "options)")
    _check_mapping("resolvers", resolvers, "{'mul': lambda a, b: a * b}")
    if isinstance(required, str):
        required = [required]
    if required is not None and not isinstance(required, (list, tuple, set, frozenset)):
        raise ComposeArgumentError(f"required takes a list of dotted keys (['model.lr']), not "
                                   f"{a_type(required)} {required!r}")
    if isinstance(config_filename, str) and config_filename.endswith(EXTENSIONS):  # as Hydra
        config_filename = os.path.splitext(config_filename)[0]
    result = _Composer(root, select, on_missing).compose(config_filename)
    hydra_node = result.pop("hydra", None)
    config = ADict._from_mapping(result)
    for dotted, value in pairs:
        if isinstance(value, _Delete):  # Hydra's `~key`
            _delete(config, str(dotted), value.where)
            continue
        config.set_value_by_name(str(dotted), value)
    if resolve:
        config = resolve_interpolations(config, hydra_node, config_filename, resolvers)
    for dotted in required or []:
        node = config
        for part in str(dotted).split("."):
            if not isinstance(node, ADict) or part not in node:
                raise MissingRequiredKeyError(f"Missing required key: {dotted} (listed in "
                                              f"required=; the composed config lacks it)")
            node = node._data[part]
        if isinstance(node, str) and node == MISSING:  # OmegaConf's MISSING, as in Hydra
            raise MissingRequiredKeyError(
                f"Missing required key: {dotted} (listed in required=; its value is {MISSING}, "
                f"which means no value yet: give one with overrides={{{str(dotted)!r}: ...}})")
    return config


def _check_mapping(name: str, value, example: str) -> None:
    if value is None or hasattr(value, "items"):
        return
    hint = ""
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and
                                  all(isinstance(v, str) and "=" in v for v in value)):
        hint = " (Hydra's 'group=option' strings are written as a dict here)"
    raise ComposeArgumentError(f"{name} takes a dict such as {example}, not {a_type(value)} "
                               f"{value!r}{hint}")


_OVERRIDES_FORMS = ("overrides takes a dict {'model.lr': 0.01} or, as hydra.compose, a list "
                    "of 'key=value' strings (['model.lr=0.01'], values written as on Ato's "
                    "command line)")


class _Delete:
    """The value of a ``~key`` override (Hydra's deletion): delete the key."""

    def __init__(self, where: str):
        self.where = where


def _delete(config: ADict, dotted: str, where: str) -> None:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node._data.get(part) if isinstance(node, ADict) else None
    if not isinstance(node, ADict) or last not in node._data:
        raise ComposeArgumentError(f"{where}: cannot delete {dotted}, the composed config "
                                   f"has no such key")
    del node[last]


def _override_pairs(overrides, root: str | None = None) -> list[tuple[str, object]]:
    """``overrides`` as ``(dotted key, value)`` pairs: a mapping, or a list of
    ``'key=value'`` strings (``+``/``++`` prefixes allowed) read with the CLI grammar, one
    per item; ``'~key'`` deletes the key (the value is then a ``_Delete``)."""
    from ato.errors import CLIError
    from ato.grammar import Assign, Word, parse_args

    if overrides is None:
        return []
    if hasattr(overrides, "items"):
        return [(str(k), v) for k, v in overrides.items()]
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise ComposeArgumentError(f"{_OVERRIDES_FORMS}, not {a_type(overrides)} "
                                   f"{overrides!r}" + (f": write [{overrides!r}]"
                                                       if isinstance(overrides, str) else ""))
    pairs = []
    for index, text in enumerate(overrides):
        if not isinstance(text, str):
            raise ComposeArgumentError(f"overrides[{index}] is {a_type(text)} "
                                       f"{text!r}: {_OVERRIDES_FORMS}")
        where = f"overrides[{index}] {text!r}"
        body = text.lstrip("+")
        deleting = body.startswith("~")
        if deleting:  # Hydra's deletion: `~key` (Hydra's `~key=value` checks the value)
            body = body[1:]
            if "=" in body:
                raise ComposeArgumentError(f"{where}: write ~{body.partition('=')[0]} to "
                                           f"delete the key (Ato does not compare a value)")
        key, eq, value = body.partition("=")
        group = _group_dir(root, key.strip())
        if eq and group and value.strip() and value.strip()[0] not in "%'\"[({":
            raise ComposeArgumentError(
                f"{where}: {key.strip()!r} is a config group (the folder {group}), so its "
                f"option is chosen with select={{{key.strip()!r}: {value.strip()!r}}}, not "
                f"set as a value")
        try:
            items = parse_args([body])
        except CLIError as e:
            if "use_external_parser" in e.detail:  # the command line's hint: not here
                raise ComposeArgumentError(f"{where} is not a key=value assignment (choose "
                                           f"a group's option with select=)") from None
            raise ComposeArgumentError(f"{where}: {e.detail}") from None
        if len(items) > 1:
            raise ComposeArgumentError(
                f"{where} holds {len(items)} overrides: write one per list item "
                f"({[item.token for item in items]!r})")
        if deleting and len(items) == 1 and isinstance(items[0], Word):
            pairs.append((items[0].name, _Delete(where)))
            continue
        if len(items) != 1 or not isinstance(items[0], Assign):
            raise ComposeArgumentError(f"{where} is not a key=value assignment (choose a "
                                       f"group's option with select=)")
        pairs.append((".".join(items[0].key), items[0].value))
    return pairs


def _group_dir(root: str | None, key: str) -> str | None:
    """The folder of config group ``key`` (``model``, ``db/mysql`` as ``db.mysql``) under
    ``root``, or ``None``."""
    if not root or not key or "/" in key or key.startswith("."):
        return None
    path = os.path.join(root, *key.split("."))
    return path if os.path.isdir(path) else None


class ComposeSource:
    """``ADict.compose_hierarchy(...)``."""

    PLUGIN_NAME = "compose_hierarchy"

    @staticmethod
    def load(root, **kwargs) -> ADict:
        return compose_hierarchy(root, **kwargs)
