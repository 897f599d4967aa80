"""The registry part of the tracker protocol: models, datasets, their versions and lineage.

A backend that declares the ``registry`` capability gives its logger four calls —
``use_dataset``, ``use_reference``, ``use_model`` and ``log_model`` — and its finder seven read-only
queries — ``registry_assets``, ``registry_versions``, ``alias_history``, ``run_lineage``,
``runs_using``, ``produced_by`` and ``downstream`` — returning the frozen records below.
ato-sql implements them in its own database (docs/models-and-data.md);
``ato.tracking.conformance`` tests any backend that declares the capability.

Conventions:

- An *asset* is one model or dataset (``kind`` ``'model'`` or ``'dataset'``) of one
  project; its *versions* are numbered 1, 2, … without gaps, each immutable content named
  by ``digest`` (a SHA-256 in hex: of the file's bytes; of a directory, over its sorted list
  of relative path, size and file digest; of a reference, over its URI, ETag and size).
- ``ref`` names one version: a number (``3``, ``'3'``, ``'v3'``), an alias (``'champion'``)
  or ``None`` for ``'latest'``, the alias that moves by itself to the newest version (to the
  newest one not deleted when it is deleted; a deleted version is ``pruned``, then
  ``collected`` once its files are freed).
- ``project=None`` searches every project; a name found in several is an error.
- Errors: :class:`RegistryError` (a ``LookupError``) naming what does not exist or cannot
  be used, e.g. ``no model named 'net' in project 'mnist'`` or ``model 'net' has no alias
  'prod' (versions 1..3; aliases: latest)``.
- Times are naive UTC ``datetime``; sizes are bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ato.errors import AtoError

#: The kinds of asset.
KINDS = ("model", "dataset")

#: The states of a version: ``live``; ``pruned`` (let go by ``keep=``, its files still
#: stored until garbage collection); ``collected`` (its files were freed).
VERSION_STATES = ("live", "pruned", "collected")


class RegistryError(AtoError, LookupError):
    """A model, dataset, version or alias that does not exist or cannot be used as asked."""


#: The largest version number a registry can hold (its column is a 32-bit integer): a
#: larger number names no version, and is looked up nowhere.
MAX_VERSION = 2**31 - 1

_NUMBER = re.compile(r"v?([0-9]+)\Z", re.ASCII)
_NUMBER_LIKE = re.compile(r"[+-]?[0-9]|v[+-]", re.ASCII)  # no alias starts so
_NUMBERS = "version numbers are whole numbers from 1 (3, '3' or 'v3')"
#: An alias name: an ASCII letter, then ASCII letters, digits, '_', '.', '-' (at most 128).
_ALIAS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,127}\Z", re.ASCII)


def parse_ref(ref) -> int | str:
    """What ``ref`` names: a version number (an ``int`` >= 1, maybe beyond any version
    there is) or an alias (a ``str``; ``None`` is ``'latest'``).

    ``3``, ``'3'``, ``'v3'`` and NumPy integers are numbers; any other text that does not
    start like a number and follows the alias rule (an ASCII letter, then ASCII letters,
    digits, ``_ . -``: ``'champion'``) is an alias.  Errors: :class:`RegistryError` for a
    number below 1 (``-1``, ``'0'``, ``'v-2'``), any other text that is neither a number
    (ASCII digits, an optional ``v``) nor an alias name (``'3.0'``, ``'1e3'``, ``' 3'``,
    ``'+3'``, ``'٣'``), a ``bool`` and any other type (``3.0``: a float is not a version
    number), each naming the value."""
    if ref is None:
        return "latest"
    if isinstance(ref, bool) or type(ref).__name__ == "bool_":
        raise RegistryError(f"ref {ref!r}: a bool is not a version; {_NUMBERS}, aliases "
                            f"are text")
    if isinstance(ref, str):
        m = _NUMBER.match(ref)
        if m is None:
            if _NUMBER_LIKE.match(ref) or not _ALIAS_NAME.match(ref):  # ' 3', '٣', '+3', …
                raise RegistryError(f"ref {ref!r}: {_NUMBERS}, and an alias starts with a "
                                    f"letter (then letters, digits, '_', '.' or '-')")
            return ref
        number = int(m[1])
    else:
        try:
            import operator

            number = operator.index(ref)  # int, NumPy integers
        except TypeError:
            raise RegistryError(f"ref {ref!r} has type {type(ref).__name__}: {_NUMBERS}, "
                                f"aliases are text") from None
    if number < 1:
        raise RegistryError(f"ref {ref!r}: {_NUMBERS}")
    return number


# characters a printed ato:// URI percent-encodes in a project or name: its own delimiters,
# '%' itself, and whatever a shell or a config file would split or mangle
_URI_UNSAFE = frozenset("%/@?#&=\"'\\")


def quote_uri_part(text: str) -> str:
    """``text`` (a project or asset name) as it is written in an ``ato://`` URI: ``%``,
    ``/``, ``@``, ``?``, ``#``, ``&``, ``=``, quotes, backslashes, whitespace and control
    characters percent-encoded (UTF-8); other characters, letters of any script
    included, are kept.  :func:`unquote_uri_part` reverses it."""
    out = []
    for c in text:
        if c in _URI_UNSAFE or c.isspace() or not c.isprintable():
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        else:
            out.append(c)
    return "".join(out)


def unquote_uri_part(text: str) -> str:
    """A project, name or ref of an ``ato://`` URI with its ``%XX`` escapes decoded.
    Errors: :class:`RegistryError` for escapes that are not UTF-8."""
    if "%" not in text:
        return text
    from urllib.parse import unquote

    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise RegistryError(f"{text!r}: its %-escapes are not UTF-8") from None


def version_uri(project: str, kind: str, name: str, version: int) -> str:
    """``ato://project/name@vN?kind=K``: the URI Ato prints for a version.  It always
    names the kind, so it stays unambiguous when a model and a dataset later share the
    name, and percent-encodes the project and name (:func:`quote_uri_part`)."""
    return (f"ato://{quote_uri_part(project)}/{quote_uri_part(name)}@v{version}"
            f"?kind={kind}")


@dataclass(frozen=True)
class RegistryAsset:
    """One model or dataset: ``versions`` is how many it has, ``latest`` the version the
    alias ``latest`` names (``None`` before the first, or once every version was deleted),
    ``size`` the bytes of its versions whose files were not collected,
    ``aliases`` ``{alias: version number}`` (``latest`` included) and ``tags`` its tags,
    sorted (``ato models tag``)."""

    project: str
    kind: str
    name: str
    description: str | None = None
    versions: int = 0
    latest: int | None = None
    size: int = 0
    aliases: Mapping[str, int] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryVersion:
    """One version of a model or dataset.

    ``digest`` identifies the content (64 hex digits); ``size`` is its bytes and
    ``file_count`` its files (1 for a file, 0 for a reference); ``source`` is the path it
    was registered from; ``reference`` the URI of data recorded by reference (nothing read
    or stored; ``None`` otherwise); ``store_url`` the artifact store holding its content
    (models always; datasets with ``copy=True``; ``None`` for data recorded in place);
    ``run_id`` the run that
    produced (model) or first recorded (dataset) it; ``step``/``score`` as given to
    ``log_model``; ``state`` one of :data:`VERSION_STATES`; ``aliases`` the aliases that
    point at it now, sorted.  ``created`` is true only in what a logger call returns when
    that call made the version (false when the content was already a version);
    ``hashed_files`` is how many files that call read (0 when a stat cache vouched for all).
    """

    project: str
    kind: str
    name: str
    version: int
    digest: str
    size: int = 0
    file_count: int = 0
    is_dir: bool = False
    source: str | None = None
    reference: str | None = None
    store_url: str | None = None
    run_id: int | None = None
    step: int | None = None
    score: float | None = None
    meta: Mapping[str, Any] | None = None
    state: str = "live"
    created_by: str | None = None
    created_at: datetime | None = None
    aliases: tuple[str, ...] = ()
    created: bool = False
    hashed_files: int = 0

    @property
    def uri(self) -> str:
        """``ato://project/name@vN?kind=K``: this version, for :func:`resolve`-style lookups
        and config values (:func:`version_uri`: the kind always named, the project and
        name percent-encoded where needed)."""
        return version_uri(self.project, self.kind, self.name, self.version)


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: from version ``from_version`` to ``to_version`` (``None`` /
    ``None``: the alias was created / removed), by ``actor`` (``$ATO_USER`` or
    ``user@host``), in run ``run_id`` when a logger moved it, at ``at``."""

    project: str
    kind: str
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str | None = None
    run_id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Lineage:
    """What one run consumed and produced: ``inputs`` are the dataset (and model) versions
    it used, ``outputs`` the versions it logged, each sorted by (project, kind, name,
    version)."""

    run_id: int
    inputs: tuple[RegistryVersion, ...] = ()
    outputs: tuple[RegistryVersion, ...] = ()


@dataclass(frozen=True)
class RunUse:
    """A run that used a version (``runs_using``): its id, project, effective status and
    start time."""

    run_id: int
    project: str
    status: str
    start_time: datetime | None = None


@dataclass(frozen=True)
class Provenance:
    """What produced a model version (``produced_by``): the ``version``; the ``run``
    (``None`` for a version registered outside a run); that run's ``config`` (a plain
    nested dict) and code ``fingerprints`` (``{trace_id: fingerprint}``, static and runtime
    keyed ``'name (static)'``/``'name (runtime)'``); the versions it used (``inputs``)."""

    version: RegistryVersion
    run: RunUse | None = None
    config: Mapping[str, Any] | None = None
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[RegistryVersion, ...] = ()


# --------------------------------------------------------------------------- protocols
@runtime_checkable
class RegistryLogger(Protocol):
    """The logger's registry calls (``registry`` capability).  Each works with or without
    a current run; with one, it links the version to the run (``use_*``: an input;
    ``log_model``: an output).  Each returns the :class:`RegistryVersion`."""

    def use_dataset(self, name: str, path, *, copy: bool = False, aliases: Sequence[str] = (),
                    etag: str | None = None, size: int | None = None,
                    description: str | None = None, meta: Mapping | None = None
                    ) -> RegistryVersion:
        """Record which version of dataset ``name`` the run uses: ``path`` is a file or a
        directory (hashed, symbolic links inside it followed; a backend may skip files its
        stat cache vouches for) or a remote
        URI (``s3://…``; recorded as by :meth:`use_reference`, with ``etag``/``size``, which a
        local path refuses).  Content already a version
        returns it (``created=False``); new content is version N+1 (``created=True``) and
        moves ``latest``.  ``copy=True`` also stores the files; ``aliases`` are pointed at the
        version (recorded in the alias history).

        Errors: ``FileNotFoundError`` for a missing path; :class:`RegistryError` for a bad
        name or alias (``'vN'`` is reserved, ``'latest'`` moves by itself)."""

    def use_reference(self, name: str, uri: str, *, etag: str | None = None,
                      size: int | None = None, aliases: Sequence[str] = (),
                      meta: Mapping | None = None) -> RegistryVersion:
        """Record remote data by reference, reading and copying nothing: the version is
        named by ``uri``, ``etag`` and ``size`` (``reference`` holds the URI)."""

    def use_model(self, name: str, ref: str | int | None = None, *,
                  project: str | None = None) -> RegistryVersion:
        """Record that the run uses version ``ref`` of the registered model ``name`` (an
        alias, a version number or ``'vN'``; ``None``: ``latest``) — the weights it
        fine-tunes, distils or evaluates — as one of its inputs, so that
        :meth:`RegistryFinder.produced_by` of what the run logs names that model version
        and ``runs_using(name, ref, kind='model')`` names the run.  ``project``: the
        project the model was registered in (default: the run's own), so a run can start
        from another project's model.  Nothing is read or copied; returns the version (its
        ``uri`` resolves to a local path).

        Errors: :class:`RegistryError` for an unknown model, version or alias (naming the
        other projects that have a model of that name), and for a ``name`` that is not a
        str or is an ``ato://`` URI (resolve a URI instead)."""

    def log_model(self, name: str, path, *, step: int | None = None,
                  aliases: Sequence[str] = (), keep: int | None = None,
                  score: float | None = None, mode: str = "max",
                  description: str | None = None, meta: Mapping | None = None
                  ) -> RegistryVersion:
        """Store the model file or directory at ``path`` (content-addressed: identical
        content is stored once) as a version of ``name`` produced by the run.  ``keep=N``
        lets go of this run's older versions of ``name`` beyond the last N (the best N by
        ``score`` when scores are given, ``mode`` ``'max'`` or ``'min'``); aliased versions
        are never let go.

        Errors: as :meth:`use_dataset`; ``keep`` < 1 or ``mode`` other than
        ``'max'``/``'min'`` is a :class:`RegistryError`."""


@runtime_checkable
class RegistryFinder(Protocol):
    """The finder's registry queries (``registry`` capability); read-only."""

    def registry_assets(self, kind: str | None = None, project: str | None = None
                        ) -> list[RegistryAsset]:
        """Every model and/or dataset (only ``kind``/``project`` when given), sorted by
        (project, kind, name).  Errors: ``ValueError`` for a ``kind`` not in :data:`KINDS`."""

    def registry_versions(self, name: str, project: str | None = None,
                          kind: str | None = None) -> list[RegistryVersion]:
        """Every version of one asset, oldest first.  Errors: :class:`RegistryError`."""

    def alias_history(self, name: str, alias: str | None = None, project: str | None = None,
                      kind: str | None = None) -> list[AliasEvent]:
        """Every move of ``alias`` (of every alias when ``None``) of one asset, oldest first;
        ``kind`` (``'model'``/``'dataset'``) picks the asset when a model and a dataset share
        the name. Errors: :class:`RegistryError` for an unknown or ambiguous asset."""

    def run_lineage(self, run_id: int) -> Lineage:
        """The versions run ``run_id`` used and produced (empty for a run without any)."""

    def runs_using(self, name: str, ref: str | int | None = None,
                   project: str | None = None, kind: str = "dataset") -> list[RunUse]:
        """The runs that used version ``ref`` of dataset ``name`` (of model ``name`` with
        ``kind='model'``: the runs that called ``use_model``), by run id (``status`` the
        effective one, as ``find_runs`` reports it)."""

    def produced_by(self, name: str, ref: str | int | None = None,
                    project: str | None = None) -> Provenance:
        """What produced version ``ref`` of model ``name``: run, config, code, inputs."""

    def downstream(self, name: str, ref: str | int | None = None,
                   project: str | None = None, kind: str = "dataset"
                   ) -> list[RegistryVersion]:
        """What version ``ref`` of dataset ``name`` (of model ``name`` with
        ``kind='model'``) fed: every version produced by a run that used it, by (run id,
        name, version)."""

    def resolve(self, uri: str, verify: bool = True) -> str:
        """The local path of ``ato://project/name@ref`` (``ref`` as above; none: latest),
        checked against the version's digest unless ``verify=False``: a stored file, a
        read-only checkout of a stored directory, the original path of data recorded in
        place (which must still hold that content), or the URI of a reference.  Writes
        nothing to the tracker (a backend may materialise a checkout in its artifact store).

        Errors: :class:`RegistryError` for a malformed URI, an unknown version, content
        that was collected, is missing or no longer matches its digest."""


#: The logger members the ``registry`` capability adds.
REGISTRY_LOGGER_MEMBERS = ("use_dataset", "use_reference", "use_model", "log_model")
#: The finder members the ``registry`` capability adds.
REGISTRY_FINDER_MEMBERS = ("registry_assets", "registry_versions", "alias_history",
                           "run_lineage", "runs_using", "produced_by", "downstream", "resolve")

__all__ = ["KINDS", "MAX_VERSION", "REGISTRY_FINDER_MEMBERS", "REGISTRY_LOGGER_MEMBERS", "VERSION_STATES",
           "AliasEvent", "Lineage", "Provenance", "RegistryAsset", "RegistryError",
           "RegistryFinder", "RegistryLogger", "RegistryVersion", "RunUse", "parse_ref",
           "quote_uri_part", "unquote_uri_part", "version_uri"]
