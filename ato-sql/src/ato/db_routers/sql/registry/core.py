"""The model registry and dataset versioning, in the tracker's own database.

A *version* is immutable content identified by its SHA-256 (a file) or tree digest (a
directory).  Registering content that an asset already has returns that version (and links
the run to it); new content becomes version N+1, numbered inside a write transaction that
holds the asset's row lock (PostgreSQL) or the database's write lock (SQLite), so
concurrent processes get gap-free numbers.  Blobs are written to the store *before* the
transaction that records them, so a version in the database always has its files.
"""

from __future__ import annotations

import collections
import collections.abc
import functools
import getpass
import json
import math
import os
import re
import shlex
import socket
import sys
import threading
import time
import unicodedata
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ato.artifacts import (
    ArtifactStoreError,
    BadFileNameError,
    ChangedWhileHashingError,
    EmptyDirectoryError,
    FileEntry,
    MissingPathError,
    SpecialFileError,
    StatCache,
    default_cache_dir,
    map_in_threads,
    open_store,
    snapshot,
    special_kind,
    url_scheme,
)
from ato.db_routers.sql import values
from ato.errors import user_stacklevel
from ato.tracking.registry import (
    MAX_VERSION,
    RegistryVersion,
    parse_ref,
    quote_uri_part,
    unquote_uri_part,
    version_uri,
)
from ato.tracking.registry import RegistryError as ProtocolRegistryError
from ato.tracking.secrets import db_option

from .queries import VERSION_COLUMNS as _VERSION_COLUMNS
from .queries import VERSION_FROM as _VERSION_FROM
from .queries import AmbiguousNameError as _AmbiguousName
from .queries import RegistryReader, as_time, input_kind, tag_list

KINDS = ("model", "dataset")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,127}\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z")
NAME_RULE = ("an ASCII letter or digit (A-Z, a-z, 0-9), then ASCII letters, digits, '_', "
             "'.' or '-' (at most 128 characters; no accented or non-Latin letters, no '/', "
             "'@', spaces)")
_URI = re.compile(r"ato://(?P<project>[^/@?]+)/(?P<name>[^@?]+?)(?:@(?P<ref>[^@/?]+))?"
                  r"(?:\?kind=(?P<kind>[^&]*))?\Z")
_URI_FORM = "ato://project/name@ref, optionally ?kind=model or ?kind=dataset"


class RegistryError(ProtocolRegistryError):
    """A model, dataset, version or alias that does not exist or cannot be used as asked
    (the tracker protocol's :class:`ato.tracking.RegistryError`)."""


class AmbiguousNameError(RegistryError, _AmbiguousName):
    """A name held by several assets (``choices``: ``(kind, project)``), a
    :class:`RegistryError` that says how to name one."""


class RegistryWarning(UserWarning):
    """Something a registration did besides what was asked, or did not do: a request not
    applied (e.g. a new ``score`` for content an existing version already holds), or a
    store repaired (a recorded blob found missing or damaged and stored again)."""


class _Placements:
    """What the store wrote into place during one registration: ``{digest: found}``
    (``'absent'`` or ``'damaged'``, see :meth:`ato.artifacts.LocalStore.put`); called from
    several threads."""

    def __init__(self):
        self.found: dict = {}
        self._lock = threading.Lock()

    def __call__(self, digest: str, found: str) -> None:
        with self._lock:
            if self.found.get(digest) != "damaged":
                self.found[digest] = found


class _BlobVanished(Exception):
    """A blob was collected between writing it and recording it: write it again."""


class _One:
    """One :class:`~ato.artifacts.FileEntry` in the shape of a snapshot (``files``)."""

    def __init__(self, entry):
        self.files = (entry,)


class BackgroundRegistrationError(RegistryError):
    """Registrations started with ``wait=False`` that failed, found when the run ended
    (``logger.finish()`` or the end of its ``with`` block raise it after recording the run
    as ``failed``).  ``failures``: ``[(PendingVersion, exception)]``."""

    def __init__(self, failures: list):
        self.failures = failures
        lines = "; ".join(f"{p.describe()}: {type(e).__name__}: {e}" for p, e in failures)
        super().__init__(f"{len(failures)} background registration(s) failed: {lines}")


class RegistrationAbandoned(RegistryError):
    """A registration given up by Ctrl-C before its version was recorded: nothing of it
    was recorded, and its copy was removed from the store's temporary area."""


class PendingVersion:
    """A registration started with ``wait=False``: the file is already copied into the
    store's temporary area; hashing that copy, storing it and recording the version run in
    the registry's background thread.

    - :meth:`result` waits (at most ``timeout`` seconds, else ``TimeoutError``) and returns
      the version record, or re-raises the error the background step met (e.g.
      :class:`~ato.artifacts.ArtifactStoreError`, a database error);
    - :meth:`done` says whether it finished (either way), without waiting;
    - :meth:`exception` waits and returns the error, or ``None``.

    ``kind``, ``name`` and ``path`` say what is being registered."""

    def __init__(self, kind: str, name: str, path, future: Future | None = None,
                 convert=None, shared: dict | None = None):
        self.kind, self.name, self.path = kind, name, os.fspath(path)
        self._future = future if future is not None else Future()
        self._convert = convert
        self._shared = shared if shared is not None else {"observed": False, "owner": None}

    def map(self, convert) -> PendingVersion:
        """The same registration whose :meth:`result` is ``convert(result)``."""
        inner = self._convert
        return PendingVersion(self.kind, self.name, self.path, self._future,
                              convert if inner is None else (lambda v: convert(inner(v))),
                              self._shared)

    def done(self) -> bool:
        return self._future.done()

    def abandon(self) -> None:
        """Give the registration up (Ctrl-C): unless its version is already committed, the
        background step stops at its next chunk, removes its copy from the store's
        temporary area and records nothing; :meth:`result` then raises
        :class:`RegistrationAbandoned`."""
        self._shared.setdefault("cancel", threading.Event()).set()

    def abandoned(self) -> bool:
        cancel = self._shared.get("cancel")
        return cancel is not None and cancel.is_set()

    def result(self, timeout: float | None = None):
        self._shared["observed"] = True
        value = self._future.result(timeout)
        _emit_notes(value)  # in the caller's thread, pointing at its line
        return value if self._convert is None else self._convert(value)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._shared["observed"] = True
        return self._future.exception(timeout)

    def describe(self) -> str:
        call = "log_model" if self.kind == "model" else "use_dataset"
        return f"{call}({self.name!r}, {self.path!r})"

    def __repr__(self):
        state = "pending" if not self.done() else (
            "failed" if self._future.exception() is not None else "done")
        return f"<PendingVersion {self.describe()} {state}>"


# wait=False registrations of this process not yet finished, and those that failed (kept
# so that a failure is reported even when the caller dropped its handle)
_unfinished: set = set()
_exit_hooked = [False]


def wait_pending(timeout: float | None = None) -> list:
    """Wait for every registration of this process started with ``wait=False``; returns
    ``[(PendingVersion, exception)]`` for those that failed (nothing is raised)."""
    failed = []
    deadline = None if timeout is None else time.monotonic() + timeout
    for pending in list(_unfinished):  # a copy: the worker removes finished ones
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            error = pending._future.exception(left)
        except TimeoutError:
            continue
        if error is not None:
            failed.append((pending, error))
    return failed


#: True while the end of a run or of the interpreter waits for pending registrations: a
#: Ctrl-C then abandons them (the logger's SIGINT handler raises at once)
_waiting = [False]


def wait_or_abandon(pendings, who: str = "", again: bool = False,
                    observe: bool = True) -> tuple[list, bool]:
    """Wait for the registrations ``pendings``, saying so on stderr when some are still
    running (``ato: <who>waiting for N pending registration(s) (Ctrl-C [again] to
    abandon)``); a Ctrl-C meanwhile abandons those not finished (nothing is recorded for
    them, see :meth:`PendingVersion.abandon`), waits for them to stop and says so.

    Returns ``([(pending, error)] of those that failed or were abandoned, whether a
    Ctrl-C interrupted the wait)``."""
    left = [p for p in pendings if not p.done()]
    interrupted = False
    if left:
        print(f"ato: {who}waiting for {len(left)} pending registration(s) (Ctrl-C "
              f"{'again ' if again else ''}to abandon)", file=sys.stderr, flush=True)
        _waiting[0] = True
        try:
            for p in left:
                p._future.exception()
        except KeyboardInterrupt:
            interrupted = True
            stopping = [p for p in left if not p.done()]
            for p in stopping:
                p.abandon()
            try:
                for p in stopping:  # each stops at its next chunk, removing its copy
                    p._future.exception()
            except KeyboardInterrupt:
                pass  # once more: leave now (what they copied is removed by ato store gc)
            print(f"ato: {who}abandoned {len(stopping)} pending registration(s): nothing "
                  f"recorded for them", file=sys.stderr, flush=True)
        finally:
            _waiting[0] = False
    failed = []
    for p in pendings:
        if not p.done():
            failed.append((p, RegistrationAbandoned(f"{p.describe()}: abandoned")))
            continue
        if not observe:  # only looked at: a failure nobody asked about is still reported
            error = p._future.exception()
            if error is not None:
                failed.append((p, error))
            continue
        try:
            p.result()
        except Exception as e:
            failed.append((p, e))
    return failed, interrupted


def _report_at_exit() -> None:
    """At interpreter exit: wait for the registrations still running (saying so; Ctrl-C
    abandons them); a failed background registration that no logger owns and nobody asked
    about is printed, so it cannot pass unnoticed."""
    again = isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)
    wait_or_abandon(list(_unfinished), again=again, observe=False)  # not silently
    for pending, error in wait_pending(0):
        if pending._shared["owner"] is None and not pending._shared["observed"]:
            print(f"ato: {pending.describe()} failed in the background and was not "
                  f"recorded: {type(error).__name__}: {error}", file=sys.stderr)


@dataclass
class Version:
    """One version of a model or dataset (``kind``).  ``digest`` identifies the content;
    ``store_url`` is ``None`` for data recorded in place and ``reference`` holds the URI of
    data recorded by reference; ``created`` is ``False`` when registering returned an
    existing version."""

    id: int
    project: str
    kind: str
    name: str
    version: int
    digest: str
    size: int
    file_count: int
    is_dir: bool
    source: str | None
    reference: str | None
    store_url: str | None
    run_id: int | None
    step: int | None
    score: float | None
    meta: dict | None
    state: str
    created_by: str | None
    created_at: object
    aliases: list[str] = field(default_factory=list)
    created: bool = False
    hashed_files: int = 0
    #: RegistryWarning texts not yet issued (see _emit_notes)
    _notes: list = field(default_factory=list, repr=False, compare=False)

    @property
    def uri(self) -> str:
        """The URI Ato prints for this version (:func:`ato.tracking.registry.version_uri`:
        the kind always named, project and name percent-encoded where needed)."""
        return version_uri(self.project, self.kind, self.name, self.version)

    def record(self) -> RegistryVersion:
        """This version as the tracker protocol's frozen :class:`RegistryVersion`."""
        return RegistryVersion(
            project=self.project, kind=self.kind, name=self.name, version=self.version,
            digest=self.digest, size=self.size, file_count=self.file_count, is_dir=self.is_dir,
            source=self.source, reference=self.reference, store_url=self.store_url,
            run_id=self.run_id, step=self.step,
            score=None if self.score is None else float(self.score), meta=self.meta,
            state=self.state, created_by=self.created_by, created_at=as_time(self.created_at),
            aliases=tuple(sorted(self.aliases)), created=self.created,
            hashed_files=self.hashed_files)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "project", "kind", "name", "version", "digest", "size", "file_count", "is_dir",
            "source", "reference", "store_url", "run_id", "step", "score", "meta", "state",
            "created_by", "aliases")}
        out["created_at"] = str(self.created_at) if self.created_at is not None else None
        out["uri"] = self.uri
        return out


def actor() -> str:
    """``$ATO_USER`` or ``user@host``: who moved an alias.  The environment is read on
    every call; ``user@host`` is looked up once per process (:func:`_login`)."""
    return os.environ.get("ATO_USER") or _login()


@functools.lru_cache(maxsize=1)
def _login() -> str:
    """``user@host`` of this process (the password database and the host name are not
    consulted again for every registration)."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_alias(alias: str) -> str:
    """``alias`` when it may be set — by ``log_model(aliases=…)`` and ``ato models alias``
    alike: a letter, then letters, digits, ``_ . -``; not ``vN`` (a version number) nor
    ``latest`` (which moves by itself).  Raises :class:`RegistryError` naming the rule."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise RegistryError(f"alias {alias!r}: use a letter then letters, digits, '_', '.' or "
                            f"'-' (at most 128 characters)")
    if re.fullmatch(r"v\d+", alias):
        raise RegistryError(f"alias {alias!r} looks like a version number; 'vN' is reserved")
    if alias == "latest":
        raise RegistryError("alias 'latest' moves by itself to the newest version")
    return alias


def check_name(kind: str, name) -> str:
    """``name`` if it follows :data:`NAME_RULE`, else :class:`RegistryError` naming the rule.
    Applied to new registrations only: records made before the rule stay readable."""
    if not isinstance(name, str):
        raise RegistryError(f"{kind} name {name!r} has type {type(name).__name__}: use a str, "
                            f"{NAME_RULE}")
    if not _NAME.match(name):
        why = "is empty" if not name else f"is {len(name)} characters long"
        for i, c in enumerate(name):  # the first character the rule refuses
            if not (c.isascii() and (c.isalnum() or (i > 0 and c in "_.-"))):
                why = (f"has {c!r} (U+{ord(c):04X}) at position {i + 1}, which "
                       f"{'cannot start a name' if c in '_.-' else 'is not allowed'}")
                break
        raise RegistryError(f"{kind} name {name!r} {why}: use {NAME_RULE}")
    return name


def _check_aliases(kind: str, name: str, aliases) -> list[str]:
    """The aliases a registration asks for, by the rule of ``ato models alias``."""
    try:
        return [check_alias(a) for a in ([aliases] if isinstance(aliases, str) else aliases)]
    except RegistryError as e:
        raise RegistryError(f"{kind} {name!r}: {e}") from None


def check_score(kind: str, name: str, score) -> float | None:
    """``score`` as a float: ``None`` or a finite real number, else :class:`RegistryError`."""
    if score is None:
        return None
    if isinstance(score, (str, bytes, bool)):
        raise RegistryError(f"{kind} {name!r}: score={score!r} must be a finite number")
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise RegistryError(f"{kind} {name!r}: score={score!r} must be a finite number") from None
    if not math.isfinite(value):
        raise RegistryError(f"{kind} {name!r}: score={score!r} must be a finite number "
                            f"(versions are ranked by it)")
    return value


def _numpy_bool(value) -> bool:
    """Whether ``value`` is a NumPy bool (``numpy.bool_``; ``numpy.bool`` in NumPy 2)."""
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")


def _type_name(value) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


#: The range of the ``step`` column (a 32-bit ``INTEGER`` on every backend).
STEP_RANGE = (-(1 << 31), (1 << 31) - 1)


def check_step(kind: str, name: str, step) -> int | None:
    """``step`` as an ``int``: ``None`` or an integer (a NumPy integer is converted) that
    fits the column, else :class:`RegistryError` naming the asset and the value.  A bool,
    a float (even ``3.0``) or a string is refused: a step counts something."""
    if step is None:
        return None
    if isinstance(step, bool) or _numpy_bool(step):
        raise RegistryError(f"{kind} {name!r}: step={step!r} must be an integer, not a bool")
    import operator

    try:
        value = operator.index(step)  # int and NumPy integers; not float, str, Decimal
    except TypeError:
        raise RegistryError(f"{kind} {name!r}: step={step!r} must be an integer "
                            f"(got {_type_name(step)})") from None
    if not STEP_RANGE[0] <= value <= STEP_RANGE[1]:
        raise RegistryError(f"{kind} {name!r}: step={step!r} is out of range (a step is "
                            f"recorded as a 32-bit integer, {STEP_RANGE[0]}..{STEP_RANGE[1]})")
    return value


#: How deep ``meta`` may nest (deeper is taken for a cycle).
META_DEPTH = 64


def check_meta(kind: str, name: str, meta, label: str = "meta") -> dict | None:
    """``meta`` as plain JSON values: ``None`` or a dict with ``str`` keys whose values are
    ``None``, bools, ints, floats, strs, or lists/tuples/dicts of those (recursively).
    Numbers of other types (NumPy scalars, ``fractions.Fraction``…) become ``int``/``float``
    and NumPy bools ``bool``; a tuple becomes a list.  Anything else is a
    :class:`RegistryError` naming the key path (``meta['a'][0]``) and the type: nothing is
    stored as its ``repr``."""
    import numbers

    if meta is None:
        return None

    def bad(path: str, value, why: str):
        return RegistryError(f"{kind} {name!r}: {path} {why} (meta holds JSON values: "
                             f"numbers, str, bool, None, and lists and str-keyed dicts of "
                             f"those)")

    def convert(value, path: str, depth: int):
        if depth > META_DEPTH:
            raise bad(path, value, f"nests deeper than {META_DEPTH} levels (a cycle?)")
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)  # an IntEnum or int subclass: the plain number
        if isinstance(value, float):
            return float(value)
        if _numpy_bool(value):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise bad(f"{path}[{k!r}]", k, f"has a key of type {_type_name(k)}; "
                                                   f"keys must be str")
                out[k] = convert(v, f"{path}[{k!r}]", depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [convert(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        raise bad(path, value, f"has type {_type_name(value)}")

    if not isinstance(meta, dict):
        raise RegistryError(f"{kind} {name!r}: {label}={meta!r} must be a dict with str keys "
                            f"(got {type(meta).__name__})")
    return convert(meta, label, 0)


#: ``scheme:/…``: a URI (or a malformed one, ``s3:/bucket``), not a local path; one letter
#: before the colon is a Windows drive (``C:/``)
_URI_LIKE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):/")


def local_path(kind: str, name: str, path) -> str:
    """The absolute local path that ``log_model``/``use_dataset`` register, from ``path``
    (a ``str``, ``bytes`` or ``os.PathLike``), else :class:`RegistryError`:

    - an empty path (it would register the current directory);
    - a URI (``s3://…``, also a malformed ``s3:/…``): these take a local path; remote data
      is recorded by reference (``use_reference``, or the logger's ``use_dataset`` with a
      URI).  A local file whose name starts like one is given as ``./s3:/…``;
    - ``file://`` with anything but an absolute path (``file:///data/x`` is ``/data/x``);
    - a name that is not valid UTF-8 text (it cannot be recorded)."""
    try:
        text_path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise RegistryError(f"{kind} {name!r}: path={path!r} must be a str or os.PathLike "
                            f"(got {type(path).__name__})") from None
    if not text_path:
        raise RegistryError(f"{kind} {name!r}: the path is empty (give the file or directory "
                            f"to register; '.' for the current directory)")
    if "\0" in text_path:
        raise RegistryError(f"{kind} {name!r}: path {text_path!r} contains a NUL character")
    m = _URI_LIKE.match(text_path)
    if m is not None:
        from urllib.parse import unquote

        scheme = m["scheme"].lower()
        rest = text_path[len(m["scheme"]) + 1:]  # after 'scheme:'
        if scheme == "file" and rest.startswith("///"):
            text_path = unquote(rest[2:])  # file:///abs/path (no host)
        elif scheme == "file" and rest.lower().startswith("//localhost/"):
            text_path = unquote(rest[len("//localhost"):])
        elif scheme == "file":
            raise RegistryError(f"{kind} {name!r}: {text_path!r} is not a local file URL "
                                f"(file:///absolute/path); give file:///…, or a plain path")
        else:
            call = "use_dataset" if kind == "dataset" else "log_model"
            how = ("record remote data by reference with use_reference(name, uri, etag=…, "
                   "size=…) (the logger's use_dataset(name, 's3://…', etag=…) does the same)"
                   if kind == "dataset" else
                   "a model is stored from a local file or directory (download it first)")
            malformed = "" if rest.startswith("//") else " (a malformed one: scheme://…)"
            raise RegistryError(f"{kind} {name!r}: {text_path!r} looks like a URI{malformed}, "
                                f"but {call} takes a local path: {how}. A local path that "
                                f"starts like this is given as './{text_path}'")
    _check_encodable(kind, name, [text_path])
    return os.path.abspath(text_path)


def _check_encodable(kind: str, name: str, paths) -> None:
    """:class:`RegistryError` naming the paths (escaped) that are not valid UTF-8 text —
    names the file system gave as undecodable bytes, which no database can record."""
    bad = []
    for p in paths:
        try:
            p.encode("utf-8")
        except UnicodeEncodeError:
            bad.append(p)
    if bad:
        shown = ", ".join(ascii(os.fsencode(p))[1:] for p in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise RegistryError(f"{kind} {name!r}: {len(bad)} file name{'s' if len(bad) != 1 else ''}"
                            f" not valid UTF-8: {shown}{more}; only names that are text can be "
                            f"recorded (rename {'it' if len(bad) == 1 else 'them'})")


def default_store_url(db_url: str) -> str | None:
    """``$ATO_STORE``, else for a SQLite file ``<dir>/<name>.ato-store`` beside it, else
    ``None`` (a server database needs an explicit, shared store)."""
    explicit = os.environ.get("ATO_STORE")
    if explicit:
        return explicit
    return beside_store_url(db_url)


def beside_store_url(db_url: str) -> str | None:
    """For a SQLite file, the store beside it (``<dir>/<name>.ato-store``); else ``None``."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        base = os.path.splitext(os.path.abspath(url.database))[0]
        return "file://" + base + ".ato-store"
    return None


DATABASES_DIR = "databases"


def public_url(db_url: str) -> str:
    """``db_url`` as recorded in a shared store: no password, an SQLite path made absolute
    (another process, from another directory, must open the same file)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.password is not None:
        url = url._replace(password=None)  # set() takes None as "unchanged"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        url = url.set(database=os.path.abspath(url.database))
    return url.render_as_string(hide_password=False)


def _db_file(root: str, url: str) -> str:
    import hashlib

    name = hashlib.sha256(url.encode()).hexdigest()[:24]
    return os.path.join(root, DATABASES_DIR, name + ".url")


def _check_tags(name: str, tags) -> list[str]:
    """``tags`` as a list of valid tags, or a RegistryError naming the first bad one."""
    if isinstance(tags, str):
        tags = [tags]
    try:
        tags = list(tags)
    except TypeError:
        raise RegistryError(f"{name!r}: tags must be strings (got {type(tags).__name__})"
                            ) from None
    for tag in tags:
        if not isinstance(tag, str):
            raise RegistryError(f"{name!r}: tag {tag!r} is a {type(tag).__name__}, not a str")
        if not 1 <= len(tag) <= 128 or tag != tag.strip() or any(
                unicodedata.category(c)[0] == "C" for c in tag):
            raise RegistryError(f"{name!r}: tag {tag!r}: a tag is 1 to 128 characters, "
                                f"without control characters or spaces at either end")
    return tags


def record_database(store, db_url: str) -> None:
    """Note in the local store ``store`` that the database ``db_url`` records into it: one
    small file ``<root>/databases/<hash>.url`` holding :func:`public_url`, written once and
    atomically (a temporary file renamed into place).  Stores without a local root (store
    plugins) keep no such list.  A store this process cannot write to is left as it is."""
    root = getattr(store, "root", None)
    if root is None:
        return
    url = public_url(db_url)
    target = _db_file(root, url)
    if os.path.isfile(target):
        return
    tmp = f"{target}.{os.getpid()}.{time.time_ns()}.tmp"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(url + "\n")
        os.replace(tmp, target)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def known_databases(store) -> list[str]:
    """The database URLs (without passwords) recorded as recording into ``store``."""
    root = getattr(store, "root", None)
    folder = os.path.join(root, DATABASES_DIR) if root else None
    if folder is None or not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".url"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    url = f.read().strip()
            except OSError:
                continue
            if url:
                out.append(url)
    return sorted(set(out))


def forget_database(store, db_url: str) -> bool:
    """Remove ``db_url`` from the databases ``store`` knows (a database deleted for good);
    ``True`` when it was listed.  gc then no longer spares what that database referenced."""
    root = getattr(store, "root", None)
    if root is None:
        return False
    try:
        os.unlink(_db_file(root, public_url(db_url)))
        return True
    except FileNotFoundError:
        return False


def location(store) -> str:
    """Where ``store`` is now: ``file://<root>`` for a local store (whatever name its
    versions recorded), else its URL."""
    root = getattr(store, "root", None)
    return "file://" + root if root else store.url


class _OtherDatabases:
    """What the other databases sharing one store reference in it (opened read-only)."""

    def __init__(self, recorded: set, checkouts: set, databases: list[str]):
        self.recorded, self.checkouts, self.databases = recorded, checkouts, databases


def _version(row) -> Version:
    meta = values.loads(row[15])  # SQLite: the JSON text; PostgreSQL: the parsed value
    return Version(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), row[7],
                   bool(row[8]), row[9], row[10], row[11], row[12], row[13], row[14], meta,
                   row[16], row[17], row[18])


class Registry:
    """Models and datasets of the tracker at ``url`` (an SQLAlchemy URL).

    ``store`` is the artifact-store URL new blobs go to (default:
    :func:`default_store_url`); ``cache`` the :class:`~ato.artifacts.StatCache` (default:
    the per-user one); ``engine`` an open engine to use as is (a finder's read-only one,
    for reading and :meth:`resolve`: the schema is then neither checked nor upgraded).
    """

    def __init__(self, url: str, store: str | None = None, cache: StatCache | None = None,
                 engine=None):
        self.url = url
        if engine is None:
            from ato.db_routers.sql.engine import open_engine

            from .schema import ensure_registry_schema

            self.engine = open_engine(url)  # as SQLLogger: TrackerUnavailableError, one line
            ensure_registry_schema(self.engine)
        else:  # a finder's read-only engine: reading and resolving only
            self.engine = engine
        self.store_url = store or default_store_url(url)
        self._cache = cache
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._stores: dict = {}
        self._home_url: str | None = None
        self._jobs: collections.deque = collections.deque()
        self._jobs_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._has_tables = engine is None  # created above; a given engine may lack them
        self._reader = RegistryReader(lambda sql, **params: self._read(sql, **params),
                                      self._tables_exist,
                                      errors=(RegistryError, AmbiguousNameError),
                                      label=f" in {url}")

    def _tables_exist(self) -> bool:
        """Whether the database has the registry's tables (a read-only engine on a
        database nothing was registered in may not: it then reads as empty)."""
        if not self._has_tables:
            from sqlalchemy import inspect

            self._has_tables = inspect(self.engine).has_table("registry_assets")
        return self._has_tables

    @classmethod
    def from_config(cls, config) -> Registry:
        from ato.db_routers.sql.logger import config_value, tracker_url

        store = config_value(config, "experiment.sql.store")
        return cls(tracker_url(config), store=str(store) if store else None)

    @property
    def cache(self) -> StatCache:
        if self._cache is None:
            self._cache = StatCache(on_unavailable=_cache_unavailable)
        return self._cache

    def store(self, url: str | None = None):
        url = url or self._home()
        if url is None:
            raise RegistryError(
                f"no artifact store for {self.url}: a server database needs a shared store; "
                f"set experiment.sql.store or $ATO_STORE (a directory or a store URL)")
        if url not in self._stores:
            where = self._located(url)
            store = open_store(where)
            if where != url:  # moved: new records keep the name the others were recorded by
                store.url = url
            self._stores[url] = store
        return self._stores[url]

    def _home(self) -> str | None:
        """The store URL new blobs are recorded under: :attr:`store_url`, unless it is where
        a store this database recorded under another name now is (the project was moved
        with its store: one name per store keeps gc and verify whole)."""
        if self.store_url is None or url_scheme(self.store_url) != "file":
            return self.store_url
        if self._home_url is None:
            self._home_url = self.store_url
            root = open_store(self.store_url).root
            if self._tables_exist():
                for (recorded,) in self._read("SELECT DISTINCT store_url FROM registry_blobs"):
                    if recorded != self.store_url and url_scheme(recorded) == "file" \
                            and open_store(self._located(recorded)).root == root \
                            and open_store(recorded).root != root:
                        self._home_url = recorded
                        break
        return self._home_url

    def _candidates(self) -> list[str]:
        """Local stores this registry would use: the configured one and the one beside an
        SQLite database (where it is now)."""
        out = []
        for url in (self.store_url, beside_store_url(self.url)):
            if url and url_scheme(url) == "file" and url not in out:
                out.append(url)
        return out

    def _located(self, url: str) -> str:
        """Where the store recorded as ``url`` is now: ``url`` itself, unless it is a local
        directory that no longer exists and a store this registry would use
        (:meth:`_candidates`) holds its blobs — a project moved with its database and its
        store (``mv /tmp/p /tmp/p-moved``): the default store is found beside the database
        wherever it now is, a moved explicit one where ``--store``/``$ATO_STORE`` say."""
        if url_scheme(url) != "file" or os.path.isdir(open_store(url).root):
            return url
        if not self._tables_exist():
            return url
        sample = [r[0] for r in self._read("SELECT digest FROM registry_blobs WHERE "
                                           "store_url = :s ORDER BY digest LIMIT 8", s=url)]
        for candidate in self._candidates():
            store = open_store(candidate)
            if os.path.isdir(store.root) and any(store.has(d) for d in sample):
                return candidate
        return url

    def _missing_store(self, url: str) -> str | None:
        """For the local store recorded as ``url`` when it is nowhere to be found: one line
        saying where it was looked for and how to point at it; else ``None``."""
        root = getattr(self.store(url), "root", None)
        if root is None or os.path.isdir(root):
            return None
        looked = [open_store(c).root for c in self._candidates() if open_store(c).root != root]
        also = (f"; its blobs are not in {' nor in '.join(looked)} either" if looked else "")
        return (f"store {root} is missing (no such directory){also}: if it was moved, point "
                f"at it with --store DIR or $ATO_STORE (a default store is found beside its "
                f"SQLite database)")

    def _former_self(self, db: str, store) -> bool:
        """Whether the database ``db`` listed by ``store`` is this one at its old place: an
        SQLite file that no longer exists, which stood where this database stands now
        relative to the store, the store having been moved (``mv /tmp/p /tmp/p-moved``) or
        copied (``cp -r /tmp/p /tmp/p2``, the original since removed) with it.  The store's
        old place is any name this database recorded it under that now resolves to it
        (:meth:`_names_of`); while the old file still exists it is another database."""
        from ato.db_routers.sql.engine import sqlite_path

        root = getattr(store, "root", None)
        try:
            old, mine = sqlite_path(db), sqlite_path(self.url)
        except Exception:
            return False
        if None in (old, mine, root) or os.path.exists(old):
            return False
        here = os.path.relpath(mine, os.path.dirname(root))
        for name in self._names_of(store):
            recorded = name[len("file://"):]
            if recorded != root and os.path.relpath(old, os.path.dirname(recorded)) == here:
                return True
        return False

    def _names_of(self, store) -> list[str]:
        """The local store names (``file://`` URLs) that stand for the physical ``store``:
        its own and every name this database recorded that resolves to the same root."""
        root = getattr(store, "root", None)
        names = [store.url] if store.url.startswith("file://") else []
        if root is None or not self._tables_exist():
            return names
        for (url,) in self._read("SELECT DISTINCT store_url FROM registry_blobs"):
            if url not in names and url_scheme(url) == "file" \
                    and getattr(self.store(url), "root", None) == root:
                names.append(url)
        return names

    def _store_groups(self) -> dict:
        """The stores this database uses grouped by the physical store each recorded name
        resolves to: ``{where it is now: [recorded names]}`` (a project copied with
        ``cp -r`` and registered into records its store under the old and the new name:
        one store, counted once)."""
        groups: dict = {}
        for url in self._store_urls():
            root = getattr(self.store(url), "root", None)
            groups.setdefault("file://" + root if root else url, []).append(url)
        return groups

    def _others(self, store, url: str, forget=frozenset()) -> _OtherDatabases:
        """The union of what every *other* database recorded in ``store`` references there:
        blob digests and digests of live or aliased directory checkouts.  Each is opened
        read-only, except those in ``forget`` (:func:`public_url` s a gc dry run treats as
        forgotten).  Raises :class:`RegistryError` naming a database that cannot be opened
        (garbage collection must not guess) and how to proceed."""
        from ato.db_routers.sql.engine import display_url, open_engine

        me = public_url(self.url)
        recorded: set = set()
        checkouts: set = set()
        others = [db for db in known_databases(store) if db != me and db not in forget
                  and not self._former_self(db, store)]
        for db in others:
            try:
                engine = open_engine(db, readonly=True)
                with engine.connect() as conn:
                    from sqlalchemy import inspect

                    if not inspect(conn).has_table("registry_blobs"):
                        continue
                    recorded |= {r[0] for r in conn.execute(text(
                        "SELECT digest FROM registry_blobs WHERE store_url = :s"), {"s": url})}
                    recorded |= {r[0] for r in conn.execute(text(
                        "SELECT f.digest FROM registry_files f JOIN registry_versions v ON "
                        "v.id = f.version_id WHERE v.store_url = :s AND v.state <> 'collected'"),
                        {"s": url})}
                    checkouts |= {r[0] for r in conn.execute(text(
                        "SELECT v.digest FROM registry_versions v WHERE v.store_url = :s AND "
                        "v.is_dir = :t AND (v.state = 'live' OR EXISTS (SELECT 1 FROM "
                        "registry_aliases al WHERE al.version_id = v.id))"), {"s": url, "t": True})}
            except Exception as e:  # any failure to read it: refuse, naming it
                reason = str(getattr(e, "orig", None) or e).splitlines()[0]
                raise RegistryError(
                    f"store {url} is shared with the database {display_url(db)}, which cannot be "
                    f"opened ({reason}); without it nothing can tell which blobs are still in "
                    f"use, so nothing is deleted. Make it reachable (a server database takes its "
                    f"password from ~/.pgpass or $PGPASSWORD), or, if it is gone for good, run "
                    f"'ato store gc --forget-db {shlex.quote(display_url(db))} --delete "
                    f"{db_option(self.url)}'") from None
        return _OtherDatabases(recorded, checkouts, others)

    # ------------------------------------------------------------------ transactions
    def _now(self):
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return now.strftime("%Y-%m-%d %H:%M:%S.%f") if self._sqlite else now

    def _write(self, work):
        """Run ``work(conn)`` in one write transaction, again while the database is busy or
        a concurrent writer won a unique constraint."""
        from ato.db_routers.sql.engine import _is_transient

        delay = 0.005
        for attempt in range(200):
            try:
                with self.engine.connect() as conn:
                    if self._sqlite:
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        try:
                            result = work(conn)
                            conn.exec_driver_sql("COMMIT")
                        except BaseException:
                            conn.exec_driver_sql("ROLLBACK")
                            raise
                    else:
                        with conn.begin():
                            result = work(conn)
                    return result
            except IntegrityError as e:
                message = str(e).lower()
                if attempt == 199 or not ("unique" in message or "duplicate" in message):
                    raise
            except Exception as e:
                if attempt == 199 or not _is_transient(e):
                    raise
            time.sleep(delay * (1 + (os.getpid() % 7) / 7))
            delay = min(delay * 2, 0.25)

    def _read(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).fetchall()

    # ------------------------------------------------------------------ registration
    def use_dataset(self, project: str, name: str, path, run_id: int | None = None,
                    copy: bool = False, aliases=(), description: str | None = None,
                    meta: dict | None = None) -> Version:
        """Record the dataset at ``path`` (a file or directory) as used by ``run_id``;
        ``copy=True`` also stores its files.  See :meth:`register`."""
        return self.register("dataset", project, name, path, run_id=run_id, copy=copy,
                             aliases=aliases, description=description, meta=meta)

    def use_reference(self, project: str, name: str, uri: str, etag: str | None = None,
                      size: int | None = None, run_id: int | None = None, aliases=(),
                      meta: dict | None = None) -> Version:
        """Record remote data by reference: nothing is read or copied; the version's
        identity is the SHA-256 of ``uri``, ``etag`` (a str) and ``size`` (bytes, an int
        >= 0).  Give at least one of the last two: without either every use makes the same
        version, which a :class:`RegistryWarning` says.  Bad arguments are a
        :class:`RegistryError` naming the parameter."""
        import hashlib

        check_name("dataset", name)
        aliases = _check_aliases("dataset", name, aliases)
        if not isinstance(uri, str) or not re.match(r"[A-Za-z][A-Za-z0-9+.\-]+://.", uri):
            raise RegistryError(f"dataset {name!r}: reference {uri!r} is not a URI (scheme://…)")
        if etag is not None and not isinstance(etag, str):
            raise RegistryError(f"dataset {name!r}: etag={etag!r} must be a str or None "
                                f"(got {type(etag).__name__})")
        if size is not None:
            import operator

            try:
                if isinstance(size, bool):
                    raise TypeError
                size = operator.index(size)  # int and NumPy integers
            except TypeError:
                raise RegistryError(f"dataset {name!r}: size={size!r} must be a number of bytes "
                                    f"(an int >= 0) or None (got {type(size).__name__})"
                                    ) from None
            if not 0 <= size < 1 << 63:
                raise RegistryError(f"dataset {name!r}: size={size!r} must be a number of bytes "
                                    f"(an int >= 0) or None")
        meta = check_meta("dataset", name, meta)
        notes = []
        if etag is None and size is None:
            notes.append(f"dataset {name!r}: reference {uri} has neither etag nor size: every "
                         f"use records the same version, even when the data changed (give "
                         f"etag= or size= to tell versions apart)")
        digest = hashlib.sha256(f"{uri}\0{etag or ''}\0{size if size is not None else ''}"
                                .encode()).hexdigest()
        info = dict(meta or {}, etag=etag)
        out = self._record("dataset", project, name, digest=digest, size=int(size or 0),
                           files=[], is_dir=False, source=None, reference=uri, store_url=None,
                           run_id=run_id, step=None, score=None, meta=info, aliases=aliases,
                           description=None, keep=None, mode="max", hashed=0)
        out._notes = notes + out._notes
        _emit_notes(out)
        return out

    def use_model(self, project: str, name: str, ref=None, run_id: int | None = None
                  ) -> Version:
        """Record that run ``run_id`` uses version ``ref`` of model ``name`` (alias, number,
        ``'vN'``; ``None``: ``latest``) as an input: the weights it fine-tunes or
        evaluates.  Reads and copies nothing; without a run it only looks the version up.
        Returns the version.  Errors: :class:`RegistryError` for an unknown model, version
        or alias (a pruned or collected version is refused: its weights may be gone), and
        for a ``name`` that is not a str or is a URI."""
        if isinstance(name, str) and re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", name):
            raise RegistryError(f"use_model({name!r}): a URI is not a model name; give the "
                                f"name and project= (use_model('NAME', 'REF', project='P')), "
                                f"or resolve the URI (ato.db_routers.sql.registry.resolve)")
        if not isinstance(name, str):
            raise RegistryError(f"model name {name!r} has type {type(name).__name__}: use a "
                                f"str, {NAME_RULE}")
        version = self.get(name, ref, project, "model")
        if version.state != "live":
            raise RegistryError(f"model {name!r} v{version.version} is {version.state} "
                                f"(let go by keep= or 'ato models delete'); use a live version")
        if run_id is not None:
            now = self._now()
            self._write(lambda conn: self._link(conn, run_id, version.id, "input", now))
        return version

    def log_model(self, project: str, name: str, path, run_id: int | None = None,
                  step: int | None = None, aliases=(), keep: int | None = None,
                  score: float | None = None, mode: str = "max",
                  description: str | None = None, meta: dict | None = None,
                  wait: bool = True) -> Version | PendingVersion:
        """Store the model file or directory at ``path`` and record it as produced by
        ``run_id``.  ``keep=N`` lets go of this run's older versions beyond the last N
        (or the best N by ``score``, ``mode`` ``'max'`` or ``'min'``); aliased versions are
        always kept, and ``ato store gc`` frees what was let go.

        ``wait=False`` returns once the file is copied into the store's temporary area
        (the caller may then overwrite it) with a :class:`PendingVersion`; hashing the
        copy and recording the version finish in the background.  See :meth:`register`."""
        return self.register("model", project, name, path, run_id=run_id, copy=True, step=step,
                             aliases=aliases, keep=keep, score=score, mode=mode,
                             description=description, meta=meta, wait=wait)

    def register(self, kind: str, project: str, name: str, path, *, run_id=None, copy=True,
                 step=None, aliases=(), keep=None, score=None, mode="max", description=None,
                 meta=None, wait: bool = True) -> Version | PendingVersion:
        """Hash ``path`` (unchanged files come from the stat cache), store its files when
        ``copy``, and record the version, its files, the run link, ``aliases`` (and
        ``latest``) in one transaction.  Returns the :class:`Version`.

        Every registration runs in two steps.  In the caller: check the arguments and make
        the content safe from later edits of ``path`` — a single file the stat cache does
        not know (or whose blob is gone) is copied by the kernel into a locked temporary
        file of the store (:meth:`~ato.artifacts.LocalStore.stage`); a known file whose
        blob is stored needs nothing; a directory (or a store without ``stage``) is hashed
        and stored right away.  In this registry's background thread, one registration
        after the other in the order they were started: hash the copy, sync it, rename it to
        its digest's place and record the version.  With ``wait=True`` the hash follows the
        copy chunk by chunk (the caller waits for both); with ``wait=False`` it starts once
        the copy is made, so the copy the caller waits for runs alone.
        ``wait=True`` (the default) waits for that and returns the :class:`Version`;
        ``wait=False`` returns a :class:`PendingVersion` at once.

        Raises (at the call) :class:`RegistryError` for a bad name, alias or ``keep``,
        :class:`~ato.artifacts.MissingPathError` for a missing path and ``OSError`` when
        the copy fails; errors of the background step (e.g. a database error) are raised
        by the call with ``wait=True``, else by :meth:`PendingVersion.result`."""
        if kind not in KINDS:
            raise RegistryError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        check_name(kind, name)
        if description is not None and not isinstance(description, str):
            raise RegistryError(f"{kind} {name!r}: description={description!r} must be a str "
                                f"or None (got {_type_name(description)})")
        for label, flag in (("copy", copy), ("wait", wait)):
            if not isinstance(flag, bool) and not _numpy_bool(flag):
                raise RegistryError(f"{kind} {name!r}: {label}={flag!r} must be True or False "
                                    f"(got {_type_name(flag)})")
        copy, wait = bool(copy), bool(wait)
        aliases = _check_aliases(kind, name, aliases)
        score = check_score(kind, name, score)
        step = check_step(kind, name, step)
        meta = check_meta(kind, name, meta)
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool)
                                 or keep < 1):
            raise RegistryError(f"{kind} {name!r}: keep={keep!r} must be a positive integer")
        if mode not in ("max", "min"):
            raise RegistryError(f"{kind} {name!r}: mode={mode!r} must be 'max' or 'min'")
        source = local_path(kind, name, path)
        if not os.path.lexists(source):
            raise MissingPathError(f"{kind} {name!r}: {source}: no such file or directory")
        if special_kind(source) is not None:  # before opening it: a FIFO blocks forever
            raise RegistryError(f"{kind} {name!r}: {source} is {special_kind(source)}; only "
                                f"regular files and directories can be registered")
        self._check_not_own_files(kind, name, source)
        store = self.store() if copy else None
        if store is not None:  # only registering enrols a database in a shared store
            record_database(store, self.url)
        explained = functools.partial(_explain_os_error, kind, name, source, store)
        placed = _Placements()
        started = self._now()
        cancel = threading.Event()  # set by Ctrl-C: the background step records nothing

        def record(digest, size, files, file_count, is_dir, hashed):
            return self._record(
                kind, project, name, digest=digest, size=size, files=files,
                file_count=file_count, is_dir=is_dir, source=source, reference=None,
                store_url=store.url if store is not None else None, run_id=run_id, step=step,
                score=score, meta=meta, aliases=aliases, description=description, keep=keep,
                mode=mode, hashed=hashed, placed=(placed, started), cancelled=cancel.is_set)

        try:
            planned = (self._stored_file_job(store, source, record, placed, cancel)
                       if store is not None else None)
            job, staged = planned or (
                self._snapshot_job(store, source, source, record, placed,
                                   label=f"{kind} {name!r}"), None)
        except (SpecialFileError, BadFileNameError, ChangedWhileHashingError,
                EmptyDirectoryError) as e:
            raise RegistryError(f"{kind} {name!r}: {e}") from None  # inside a directory
        except OSError as e:  # an unreadable file, a store that cannot be written
            better = explained(e)
            if better is None:
                raise
            raise better from e
        job = _explaining(job, explained)
        pending = PendingVersion(kind, name, path,
                                 shared={"observed": False, "owner": None, "cancel": cancel})
        if not wait:
            _unfinished.add(pending)  # before the worker can see it; it discards successes
            if not _exit_hooked[0]:
                import atexit

                _exit_hooked[0] = True
                atexit.register(_report_at_exit)
        try:
            if staged is not None and not wait:
                # the copy alone first: a hash running beside it slows the copy the caller
                # waits for (measured: 0.22 s alone, 0.36 s beside the hash, 256 MiB, load 5)
                try:
                    staged.copy()
                except BaseException:
                    staged.commit_after_failure()
                    raise
                self._submit(job, pending)
            else:
                try:
                    self._submit(job, pending)
                except BaseException:
                    if staged is not None:
                        staged.cancel()  # never queued: nothing will commit it
                    raise
                if staged is not None:  # (wait=True) a failed copy is raised right here
                    staged.copy()  # the background thread hashes right behind it
        except BaseException:
            cancel.set()  # e.g. Ctrl-C during the copy: the background step records nothing
            _unfinished.discard(pending)
            raise
        if not wait:
            return pending
        try:
            return pending.result()
        except KeyboardInterrupt:
            # Ctrl-C while the background step hashes or records: it stops at its next
            # chunk (removing its copy) or rolls its transaction back, so nothing is
            # recorded — unless the version was already committed, complete
            pending.abandon()
            try:
                pending._future.exception()
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: leave at once (the step still records nothing)
            raise

    def _check_not_own_files(self, kind: str, name: str, source: str) -> None:
        """:class:`RegistryError` when the directory ``source`` holds this registry's own
        files — its artifact store, its SQLite database or the stat cache — which change
        while they are hashed (and a store would be copied into itself)."""
        if not os.path.isdir(source):
            return
        own = []
        if self.store_url is not None and url_scheme(self.store_url) == "file":
            root = self.store_url
            own.append(("the artifact store", root[len("file://"):]
                        if root.startswith("file://") else root))
        database = self.engine.url.database if self._sqlite else None
        if database and database != ":memory:" and not database.startswith("file:"):
            own.append(("the database", database))
        cache = self._cache.path if self._cache is not None else os.path.join(
            default_cache_dir(), "statcache.sqlite")
        own.append(("the stat cache", cache))
        top = os.path.join(os.path.realpath(source), "")
        for what, where in own:
            real = os.path.realpath(where)
            if os.path.join(real, "").startswith(top):
                raise RegistryError(
                    f"{kind} {name!r}: {source} holds {what} ({real}), which changes while "
                    f"it is registered; register a directory that does not contain it (or "
                    f"move {what} elsewhere)")

    def _stored_file_job(self, store, source: str, record, placed: _Placements,
                         cancel: threading.Event | None = None):
        """For a single regular file and a store that stages: ``(background job,
        StagedCopy the caller must copy)`` — the copy ``None`` when the stat cache knows the
        file and its blob is stored.  ``None`` for anything else."""
        if not hasattr(store, "stage"):
            return None
        import stat as stat_module

        try:
            st = os.stat(source)
        except FileNotFoundError:
            return None  # snapshot() raises the error that names it
        if not stat_module.S_ISREG(st.st_mode):
            return None
        base = os.path.basename(source)
        known = self.cache.lookup([(source, st)]).get(source)
        if known is not None and store.has(known):
            entry = FileEntry(base, st.st_size, known, source)

            def job_known():
                for _attempt in range(3):
                    try:
                        return record(known, st.st_size, [entry], 1, False, 0)
                    except _BlobVanished:
                        self._put_all(store, _One(entry), placed)  # stored again from the file
                raise ArtifactStoreError(f"{source}: its blob kept disappearing from "
                                         f"{store.url} while registering (is 'ato store gc "
                                         f"--delete' running?)")

            # reads nothing when the blob is intact; a damaged one is stored again now
            self._put_all(store, _One(entry), placed)
            return job_known, None
        staged = store.stage(source)

        def job_staged():
            options = _place_report(staged.commit, placed)
            if cancel is not None and _takes(staged.commit, "cancel"):  # optional for plugins
                options["cancel"] = cancel
            blob = staged.commit(**options)
            if staged.source_unchanged:  # the copied bytes are what the path held
                self.cache.store([(source, staged.source_stat, blob.digest, staged.started_ns)])
            try:
                return record(blob.digest, blob.size,
                              [FileEntry(base, blob.size, blob.digest, source)], 1, False, 1)
            except _BlobVanished:
                raise ArtifactStoreError(
                    f"{source}: its blob {blob.digest[:12]} was collected from {store.url} "
                    f"before the version was recorded (is 'ato store gc --delete --grace 0' "
                    f"running?); register it again") from None

        return job_staged, staged

    def _snapshot_job(self, store, source: str, path, record, placed: _Placements,
                      label: str = ""):
        """Hash (and store) ``path`` now through the stat cache; the job records it.  A
        symbolic link to a directory left out (a cycle) is a :class:`RegistryWarning`
        naming it (``label``: what is registered, e.g. ``dataset 'd'``)."""
        hasher = None
        if store is not None:
            report = _place_report(store.put, placed)
            hasher = lambda p: store.put(p, **report).digest  # noqa: E731
        snap = snapshot(path, self.cache, hasher=hasher)
        if snap.skipped:
            import warnings

            for rel, target, why in snap.skipped:
                warnings.warn(f"{label}: skipped the symbolic link {os.path.join(source, rel)} "
                              f"-> {target}: {why}; its files are not part of the version",
                              RegistryWarning, stacklevel=user_stacklevel())
        if store is not None:
            self._put_all(store, snap, placed)

        def job():
            for _attempt in range(3):
                try:
                    # built only for a new or revived version: an unchanged tree of 100k
                    # files answers without one object per file
                    return record(snap.digest, snap.size, lambda s=snap: s.files,
                                  snap.file_count, snap.is_dir, snap.hashed)
                except _BlobVanished:
                    # what gc took is stored again from the files
                    self._put_all(store, snap, placed)
            raise ArtifactStoreError(f"{source}: blobs kept disappearing from {store.url} while "
                                     f"registering (is 'ato store gc --delete' running?)")

        return job

    def _submit(self, job, pending: PendingVersion) -> None:
        """Queue ``job`` for the background thread, which settles ``pending``'s future."""
        with self._jobs_lock:
            self._jobs.append((job, pending))
            if self._worker is None or not self._worker.is_alive():
                # a daemon: the interpreter's exit waits for queued registrations in
                # wait_pending (atexit) and the run's end, which say so and let Ctrl-C
                # abandon them — a plain thread would be joined first, silently
                self._worker = threading.Thread(target=self._work, name="ato-register",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            with self._jobs_lock:
                if not self._jobs:
                    self._worker = None
                    return
                job, pending = self._jobs.popleft()
            try:
                value = job()
            except BaseException as e:
                if pending.abandoned() and not isinstance(e, RegistrationAbandoned):
                    e = RegistrationAbandoned(f"{pending.describe()}: abandoned before it was "
                                              f"recorded")
                pending._future.set_exception(e)
            else:
                pending._future.set_result(value)
                _unfinished.discard(pending)

    def _put_all(self, store, snap, placed: _Placements | None = None) -> None:
        report = _place_report(store.put, placed)

        def put(entry):
            blob = store.put(entry.source, expected=entry.digest, **report)
            if blob.digest != entry.digest:
                raise ArtifactStoreError(
                    f"{entry.source} changed while it was being registered (hashed "
                    f"{entry.digest[:12]}, copied {blob.digest[:12]}); register it again")

        if len(snap.files) == 1:
            put(snap.files[0])
            return
        map_in_threads(put, snap.files, os.cpu_count() or 2, "ato-put")

    def _record(self, kind, project, name, *, digest, size, files, is_dir, source, reference,
                store_url, run_id, step, score, meta, aliases, description, keep, mode,
                hashed, file_count=None, placed=None, cancelled=None) -> Version:
        """``files``: the :class:`~ato.artifacts.FileEntry` list, or a function returning it
        (called only when the version is new or revived).  ``placed``: ``(placements,
        start time)`` of the registration, to tell a repaired store (a blob this database
        recorded before the registration started, written into place again) from a first
        store."""
        who = actor()
        if file_count is None:
            file_count = len(files)
        listed: list = []

        def entries():
            if not listed:
                listed.append(files() if callable(files) else files)
            return listed[0]
        # the encoding of configs (values.dumps): Python's NaN/Infinity tokens are not JSON,
        # and PostgreSQL's json type refuses them
        meta_json = values.dumps(meta) if meta is not None else None
        store = self.store(store_url) if store_url else None

        def work(conn):
            notes.clear()  # a retried transaction starts over
            now = self._now()
            repaired = self._repaired(conn, store, placed)
            asset_id = self._asset(conn, project, kind, name, description, now)
            row = conn.execute(text("SELECT id, version, state, store_url, score, step, meta "
                                    "FROM registry_versions WHERE asset_id = :a AND digest = :d"),
                               {"a": asset_id, "d": digest}).fetchone()
            created = row is None
            if created:
                number = conn.execute(text("SELECT COALESCE(MAX(version), 0) + 1 FROM "
                                           "registry_versions WHERE asset_id = :a"),
                                      {"a": asset_id}).scalar()
                version_id = conn.execute(text(
                    "INSERT INTO registry_versions (asset_id, version, digest, size, file_count, "
                    "is_dir, source, reference, store_url, run_id, step, score, meta, state, "
                    "created_by, created_at) VALUES (:a, :n, :d, :size, :count, :is_dir, "
                    ":source, :ref, :store, :run, :step, :score, :meta, 'live', :who, :now) "
                    "RETURNING id"),
                    {"a": asset_id, "n": number, "d": digest, "size": size, "count": file_count,
                     "is_dir": is_dir, "source": source, "ref": reference, "store": store_url,
                     "run": run_id, "step": step, "score": score, "meta": meta_json,
                     "who": who, "now": now}).scalar()
                if number == 1:  # a new asset: does it make unqualified URIs ambiguous?
                    note = _shared_name(conn, asset_id, project, kind, name)
                    if note:
                        notes.append(note)
                if file_count:
                    conn.execute(text("INSERT INTO registry_files (version_id, path, size, digest) "
                                      "VALUES (:v, :p, :s, :d)"),
                                 [{"v": version_id, "p": f.path, "s": f.size, "d": f.digest}
                                  for f in entries()])
            revived = False
            if not created:
                version_id, number, state, had_store, old_score, old_step, old_meta = row
                note = _unapplied(kind, name, number, score, old_score, step, old_step,
                                  meta_json, old_meta)
                if note is not None:
                    notes.append(note)
                revived = state != "live" or (had_store is None and store_url is not None)
                if revived and state != "live":
                    notes.append(
                        f"{kind} {name!r}: this content is v{number}, which was {state} ("
                        + ("its files had been freed by 'ato store gc'; stored again now"
                           if state == "collected" else "let go by keep= or a delete")
                        + f"): v{number} is live again, with its old number")
                if revived:
                    if store_url is None and reference is None:
                        raise RegistryError(f"{kind} {name!r} v{number} was collected; register "
                                            f"it with its files stored to revive it")
                    conn.execute(text("UPDATE registry_versions SET state = 'live', "
                                      "store_url = :s WHERE id = :v"),
                                 {"s": store_url, "v": version_id})
            if store is not None and (created or revived):
                # a live version's blobs cannot be collected: only new or revived ones
                self._check_blobs(conn, store, entries(), now)
            if run_id is not None:
                self._link(conn, run_id, version_id, "output" if kind == "model" else "input", now)
            targets = list(aliases)
            if created:
                latest = conn.execute(text("SELECT MAX(version) FROM registry_versions "
                                           "WHERE asset_id = :a"), {"a": asset_id}).scalar()
                if latest == number:
                    targets.append("latest")
            for alias in dict.fromkeys(targets):
                self._move_alias(conn, asset_id, alias, version_id, number, who, run_id, now)
            if keep is not None and run_id is not None:
                self._apply_keep(conn, asset_id, run_id, keep, mode)
            if cancelled is not None and cancelled():  # abandoned (Ctrl-C): roll back
                raise RegistrationAbandoned(f"{kind} {name!r}: abandoned before it was recorded")
            return version_id, created, repaired

        notes: list = []
        if cancelled is not None and cancelled():
            raise RegistrationAbandoned(f"{kind} {name!r}: abandoned before it was recorded")
        version_id, created, repaired = self._write(work)
        out = self._version_by_id(version_id)
        if repaired:
            notes.append(_repaired_note(kind, name, out.version, store.url, source, repaired))
        out._notes = notes  # issued in the caller's thread (_emit_notes)
        out.created = created
        out.hashed_files = hashed
        return out

    def _repaired(self, conn, store, placed) -> dict:
        """``{digest: 'missing' | 'damaged'}``: the blobs this registration wrote into
        ``store`` in place of a damaged one, or where this database had recorded one before
        the registration started (so it had gone missing).  A blob written for the first
        time is not a repair."""
        if store is None or placed is None or not placed[0].found:
            return {}
        placements, started = placed
        found = dict(placements.found)
        out = {d: "damaged" for d, how in found.items() if how == "damaged"}
        absent = sorted(d for d, how in found.items() if how == "absent")
        from sqlalchemy import bindparam

        query = text("SELECT digest FROM registry_blobs WHERE store_url = :s AND "
                     "created_at < :t AND digest IN :ds").bindparams(
            bindparam("ds", expanding=True))
        for i in range(0, len(absent), 500):
            for (digest,) in conn.execute(query, {"s": store.url, "t": started,
                                                  "ds": absent[i:i + 500]}):
                out[digest] = "missing"
        return out

    def _asset(self, conn, project, kind, name, description, now) -> int:
        conn.execute(text("INSERT INTO projects (name, created_at) VALUES (:n, :t) "
                          "ON CONFLICT (name) DO NOTHING"), {"n": project, "t": now})
        project_id = conn.execute(text("SELECT id FROM projects WHERE name = :n"),
                                  {"n": project}).scalar()
        conn.execute(text("INSERT INTO registry_assets (project_id, kind, name, description, "
                          "tags, created_at) VALUES (:p, :k, :n, :d, '[]', :t) "
                          "ON CONFLICT (project_id, kind, name) DO NOTHING"),
                     {"p": project_id, "k": kind, "n": name, "d": description, "t": now})
        lock = "" if self._sqlite else " FOR UPDATE"
        asset_id = conn.execute(text(f"SELECT id FROM registry_assets WHERE project_id = :p AND "
                                     f"kind = :k AND name = :n{lock}"),
                                {"p": project_id, "k": kind, "n": name}).scalar()
        if description is not None:
            conn.execute(text("UPDATE registry_assets SET description = :d WHERE id = :a"),
                         {"d": description, "a": asset_id})
        return asset_id

    def _check_blobs(self, conn, store, files, now) -> None:
        """Record the blobs, holding their rows, and make sure each file is still in the
        store (garbage collection removes files only while holding the same rows)."""
        rows = {f.digest: f.size for f in files}
        conn.execute(text("INSERT INTO registry_blobs (store_url, digest, size, created_at) "
                          "VALUES (:s, :d, :z, :t) ON CONFLICT (store_url, digest) "
                          "DO UPDATE SET size = excluded.size"),
                     [{"s": store.url, "d": d, "z": z, "t": now} for d, z in rows.items()])
        for digest in rows:
            if not store.has(digest):
                raise _BlobVanished(digest)

    def _link(self, conn, run_id, version_id, role, now) -> None:
        conn.execute(text("INSERT INTO registry_links (run_id, version_id, role, at) "
                          "VALUES (:r, :v, :role, :t) ON CONFLICT DO NOTHING"),
                     {"r": run_id, "v": version_id, "role": role, "t": now})

    def _move_alias(self, conn, asset_id, alias, version_id, number, who, run_id, now) -> None:
        old = conn.execute(text("SELECT v.version, v.id FROM registry_aliases al JOIN "
                                "registry_versions v ON v.id = al.version_id "
                                "WHERE al.asset_id = :a AND al.alias = :al"),
                           {"a": asset_id, "al": alias}).fetchone()
        if old is not None and old[1] == version_id:
            return
        if old is None:
            conn.execute(text("INSERT INTO registry_aliases (asset_id, alias, version_id) "
                              "VALUES (:a, :al, :v)"), {"a": asset_id, "al": alias, "v": version_id})
        else:
            conn.execute(text("UPDATE registry_aliases SET version_id = :v WHERE asset_id = :a "
                              "AND alias = :al"), {"a": asset_id, "al": alias, "v": version_id})
        conn.execute(text("INSERT INTO registry_alias_events (asset_id, alias, from_version, "
                          "to_version, actor, run_id, at) VALUES (:a, :al, :f, :t, :who, :r, :now)"),
                     {"a": asset_id, "al": alias, "f": old[0] if old else None, "t": number,
                      "who": who, "r": run_id, "now": now})

    def _apply_keep(self, conn, asset_id, run_id, keep, mode) -> None:
        rows = conn.execute(text(
            "SELECT v.id, v.version, v.score, EXISTS (SELECT 1 FROM registry_aliases al WHERE "
            "al.version_id = v.id) FROM registry_versions v WHERE v.asset_id = :a "
            "AND v.run_id = :r AND v.state = 'live'"),
            {"a": asset_id, "r": run_id}).fetchall()
        if any(r[2] is not None for r in rows):
            sign = -1 if mode == "max" else 1
            # versions without a score rank last; ties keep the newer one
            ranked = sorted(rows, key=lambda r: (r[2] is None, sign * (r[2] or 0), -r[1]))
        else:
            ranked = sorted(rows, key=lambda r: -r[1])
        drop = [r[0] for r in ranked[keep:] if not r[3]]  # aliased versions always stay
        if drop:
            conn.execute(text("UPDATE registry_versions SET state = 'pruned' WHERE id = :v"),
                         [{"v": v} for v in drop])

    # ------------------------------------------------------------------ reading
    def _version_by_id(self, version_id: int) -> Version:
        rows = self._read(f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.id = :v",
                          v=version_id)
        out = _version(rows[0])
        out.aliases = [r[0] for r in self._read(
            "SELECT alias FROM registry_aliases WHERE version_id = :v ORDER BY alias", v=version_id)]
        return out

    def _asset_row(self, name: str, project: str | None = None, kind: str | None = None):
        """``(asset id, project, kind, name, description)``: the finder's lookup
        (:meth:`RegistryReader.asset_row`) raising this module's :class:`RegistryError` and
        :class:`AmbiguousNameError`."""
        return self._reader.asset_row(name, project, kind)

    def get(self, name: str, ref: str | int | None = None, project: str | None = None,
            kind: str | None = None) -> Version:
        """One version: ``ref`` is a version number (``3``, ``'3'``, ``'v3'``), an alias, or
        ``None`` for ``latest``."""
        try:
            ref = parse_ref(ref)  # a bad ref is named before the name is looked up
        except ProtocolRegistryError as e:
            raise RegistryError(str(e)) from None
        asset_id, project, kind, name, _ = self._asset_row(name, project, kind)
        if isinstance(ref, int):
            # a number beyond the column names no version (SQLite cannot even bind it)
            rows = [] if ref > MAX_VERSION else self._read(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} "
                f"WHERE v.asset_id = :a AND v.version = :n", a=asset_id, n=ref)
            what = f"version {ref}"
        else:
            rows = self._read(f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} JOIN "
                              f"registry_aliases al ON al.version_id = v.id "
                              f"WHERE al.asset_id = :a AND al.alias = :al", a=asset_id, al=ref)
            what = f"alias {ref!r}"
        if not rows:
            known = [r[0] for r in self._read("SELECT alias FROM registry_aliases WHERE "
                                              "asset_id = :a ORDER BY alias", a=asset_id)]
            top = self._read("SELECT MAX(version) FROM registry_versions WHERE asset_id = :a",
                             a=asset_id)[0][0]
            if ref == "latest" and top:
                raise RegistryError(f"{kind} {name!r} (project {project!r}) has no live version: "
                                    f"versions 1..{top} were all deleted; name one by number")
            raise RegistryError(f"{kind} {name!r} (project {project!r}) has no {what} "
                                f"(versions 1..{top or 0}; aliases: {', '.join(known) or 'none'})")
        return self._version_by_id(rows[0][0])

    def description(self, version: Version) -> str | None:
        """The description of the model or dataset ``version`` belongs to (``None``)."""
        rows = self._read("SELECT a.description FROM registry_versions v JOIN registry_assets "
                          "a ON a.id = v.asset_id WHERE v.id = :v", v=version.id)
        return rows[0][0] if rows else None

    def versions(self, name: str, project: str | None = None, kind: str | None = None
                 ) -> list[Version]:
        """Every version of one model or dataset, oldest first, with their aliases."""
        asset_id = self._asset_row(name, project, kind)[0]
        rows = self._read(f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} WHERE v.asset_id = :a "
                          f"ORDER BY v.version", a=asset_id)
        aliases: dict = {}
        for alias, vid in self._read("SELECT alias, version_id FROM registry_aliases WHERE "
                                     "asset_id = :a ORDER BY alias", a=asset_id):
            aliases.setdefault(vid, []).append(alias)
        out = [_version(r) for r in rows]
        for v in out:
            v.aliases = aliases.get(v.id, [])
        return out

    def assets(self, kind: str | None = None, project: str | None = None) -> list[dict]:
        """Every model and/or dataset: project, kind, name, description, version count,
        latest version number, total bytes and aliases (``{alias: version}``), sorted by
        project, kind and name — the finder's :meth:`RegistryReader.registry_assets`, as
        plain dicts.

        Errors: :class:`RegistryError` for a ``kind`` other than ``'model'``/``'dataset'``."""
        if kind is not None and kind not in KINDS:
            raise RegistryError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        return [{"project": a.project, "kind": a.kind, "name": a.name,
                 "description": a.description, "versions": a.versions, "latest": a.latest,
                 "size": a.size, "aliases": dict(a.aliases), "tags": list(a.tags)}
                for a in self._reader.registry_assets(kind=kind or None, project=project or None)]

    def tag(self, name: str, tags, project: str | None = None, kind: str | None = None,
            delete: bool = False) -> list[str]:
        """Add ``tags`` (strings) to model or dataset ``name`` — or remove them with
        ``delete=True`` — and return its tags after, sorted.  A tag is 1 to 128 characters,
        no control characters, no space at either end; tagging twice changes nothing.
        Errors: :class:`RegistryError` for a bad tag or an unknown or ambiguous name."""
        tags = _check_tags(name, tags)
        asset_id = self._asset_row(name, project, kind)[0]

        def work(conn):
            lock = "" if self._sqlite else " FOR UPDATE"
            row = conn.execute(text(f"SELECT tags FROM registry_assets WHERE id = :a{lock}"),
                               {"a": asset_id}).fetchone()
            now = set(tag_list(row[0]))
            now = sorted(now - set(tags) if delete else now | set(tags))
            value = ":t" if self._sqlite else "CAST(:t AS JSON)"
            conn.execute(text(f"UPDATE registry_assets SET tags = {value} WHERE id = :a"),
                         {"t": json.dumps(now), "a": asset_id})
            return now

        return self._write(work)

    def describe(self, name: str, description: str | None, project: str | None = None,
                 kind: str | None = None) -> None:
        """Set the description of model or dataset ``name`` (``None``: remove it), as
        ``description=`` of a registration does.  Errors: :class:`RegistryError` for a
        description that is not a str and an unknown or ambiguous name."""
        if description is not None and not isinstance(description, str):
            raise RegistryError(f"{name!r}: description must be a str or None "
                                f"(got {type(description).__name__})")
        asset_id = self._asset_row(name, project, kind)[0]
        self._write(lambda conn: conn.execute(
            text("UPDATE registry_assets SET description = :d WHERE id = :a"),
            {"d": description or None, "a": asset_id}))

    def tags(self, name: str, project: str | None = None, kind: str | None = None
             ) -> list[str]:
        """The tags of model or dataset ``name``, sorted."""
        asset_id = self._asset_row(name, project, kind)[0]
        return list(tag_list(self._read("SELECT tags FROM registry_assets WHERE id = :a",
                                        a=asset_id)[0][0]))

    def check_project(self, project: str, kind: str | None = None) -> None:
        """A :class:`RegistryError` when the database has no project ``project``, naming
        the projects it has and the closest one (``ato models list --project``; the
        finder's lookups say the same for a name looked up in it)."""
        if self._tables_exist() and project not in self._reader.projects():
            raise RegistryError(f"no {kind or 'model or dataset'} in project {project!r}: "
                                f"{self._reader.no_project(project)}")

    def files(self, version: Version) -> list[dict]:
        """The files of a version, sorted by path: ``{'path', 'size', 'digest'}``."""
        return [{"path": p, "size": int(s), "digest": d} for p, s, d in self._read(
            "SELECT path, size, digest FROM registry_files WHERE version_id = :v ORDER BY path",
            v=version.id)]

    def diff(self, name: str, a, b, project: str | None = None, kind: str | None = None) -> dict:
        """Files ``added``, ``removed`` and ``changed`` (``{path: [old, new]}`` digests and
        sizes) from version ``a`` to version ``b``.

        Raises :class:`RegistryError` when either is data recorded by reference: only its
        URI, etag and declared size are known, no file list."""
        va = self.get(name, a, project, kind)
        vb = self.get(name, b, project, kind)
        for v in (va, vb):
            if v.reference is not None:
                raise RegistryError(
                    f"{v.kind} {v.name!r} v{v.version} is recorded by reference "
                    f"({v.reference}): a reference has no file list to compare; "
                    f"'ato data show {shlex.quote(v.name)} {v.version}' shows its URI, etag and size")
        fa = {f["path"]: f for f in self.files(va)}
        fb = {f["path"]: f for f in self.files(vb)}
        return {"name": va.name, "kind": va.kind, "from": va.version, "to": vb.version,
                "added": [fb[p] for p in sorted(set(fb) - set(fa))],
                "removed": [fa[p] for p in sorted(set(fa) - set(fb))],
                "changed": [{"path": p, "from": fa[p], "to": fb[p]}
                            for p in sorted(set(fa) & set(fb)) if fa[p]["digest"] != fb[p]["digest"]],
                "unchanged": sum(1 for p in set(fa) & set(fb) if fa[p]["digest"] == fb[p]["digest"])}

    # ------------------------------------------------------------------ aliases
    def set_alias(self, name: str, alias: str, ref, project: str | None = None,
                  kind: str | None = None, who: str | None = None) -> Version:
        """Point ``alias`` at version ``ref`` (recorded in the alias history).

        An alias protects a version from garbage collection; it does not undo ``keep=``: a
        ``pruned`` version stays ``pruned`` while aliased, and once its last alias is
        removed the next ``ato store gc`` frees it."""
        check_alias(alias)
        target = self.get(name, ref, project, kind)
        if target.state == "collected":
            raise RegistryError(f"{target.kind} {target.name!r} v{target.version} was collected "
                                f"by 'ato store gc'; its files are gone")
        asset_id = self._asset_row(target.name, target.project, target.kind)[0]

        def work(conn):
            now = self._now()
            self._move_alias(conn, asset_id, alias, target.id, target.version, who or actor(),
                             None, now)

        self._write(work)
        return self._version_by_id(target.id)

    def delete_alias(self, name: str, alias: str, project: str | None = None,
                     kind: str | None = None, who: str | None = None, ref=None) -> int:
        """Remove ``alias``; returns the version it pointed at (recorded in its history).

        With ``ref`` (a version number or another alias), the alias is removed only if it
        points at that version, checked in the transaction that removes it: otherwise a
        :class:`RegistryError` names the version it points at, and nothing is removed."""
        expected = None if ref is None else self.get(name, ref, project, kind)
        asset_id, project, kind, name, _ = self._asset_row(name, project, kind)
        if alias == "latest":
            raise RegistryError("alias 'latest' cannot be removed")

        def work(conn):
            row = conn.execute(text("SELECT v.version FROM registry_aliases al JOIN "
                                    "registry_versions v ON v.id = al.version_id "
                                    "WHERE al.asset_id = :a AND al.alias = :al"),
                               {"a": asset_id, "al": alias}).fetchone()
            if row is None:
                raise RegistryError(f"{kind} {name!r} has no alias {alias!r}")
            if expected is not None and row[0] != expected.version:
                raise RegistryError(f"{kind} {name!r}: alias {alias!r} points at v{row[0]}, "
                                    f"not v{expected.version} ({ref}); nothing was removed")
            conn.execute(text("DELETE FROM registry_aliases WHERE asset_id = :a AND alias = :al"),
                         {"a": asset_id, "al": alias})
            conn.execute(text("INSERT INTO registry_alias_events (asset_id, alias, from_version, "
                              "to_version, actor, at) VALUES (:a, :al, :f, NULL, :who, :t)"),
                         {"a": asset_id, "al": alias, "f": row[0], "who": who or actor(),
                          "t": self._now()})
            return row[0]

        return self._write(work)

    def delete_versions(self, name: str, refs, project: str | None = None,
                        kind: str | None = None, who: str | None = None) -> list[Version]:
        """Let versions go, as ``keep=`` does: each becomes ``pruned``, and the next
        ``ato store gc --delete`` frees the files no other kept version holds (then
        ``collected``).  The record stays — its lineage, files list and alias history — so
        "which run produced v3" still has an answer.  Registering the same content again
        revives a version.

        ``refs``: version numbers (``3``, ``'v3'``) or aliases.  All or nothing, in one
        transaction: a version held by an alias other than ``latest`` is refused, naming
        the alias (move or remove it first).  ``latest`` moves to the newest version
        still live, or is removed when none is (both recorded in the alias history).
        Versions already ``pruned`` or ``collected`` are returned unchanged.  Returns the
        versions, as recorded afterwards."""
        if isinstance(refs, (str, bytes)) or not isinstance(refs, collections.abc.Iterable):
            refs = [refs]  # one ref (a float or a bool too: get names what is wrong)
        targets = {}
        for ref in refs:
            version = self.get(name, ref, project, kind)
            targets[version.id] = version
        if not targets:
            raise RegistryError(f"{kind or 'asset'} {name!r}: give the versions to delete")
        first = next(iter(targets.values()))
        asset_id = self._asset_row(first.name, first.project, first.kind)[0]
        label = f"{first.kind} {first.name!r}"
        who = who or actor()

        def work(conn):
            now = self._now()
            held = [(alias, number) for alias, vid, number in conn.execute(text(
                "SELECT al.alias, al.version_id, v.version FROM registry_aliases al JOIN "
                "registry_versions v ON v.id = al.version_id WHERE al.asset_id = :a "
                "ORDER BY v.version, al.alias"), {"a": asset_id})
                if vid in targets and alias != "latest"]
            if held:
                alias, number = held[0]
                kind_command = "models" if first.kind == "model" else "data"
                raise RegistryError(
                    f"{label} v{number} is aliased {', '.join(a for a, n in held if n == number)}"
                    f": an alias protects a version; move it or remove it first (ato "
                    f"{kind_command} alias {shlex.quote(first.name)} {alias} --delete "
                    f"{db_option(self.url)});"
                    f" nothing was deleted")
            ids = list(targets)
            conn.execute(text("UPDATE registry_versions SET state = 'pruned' WHERE id = :v "
                              "AND state = 'live'"), [{"v": v} for v in ids])
            latest = conn.execute(text("SELECT version_id FROM registry_aliases WHERE "
                                       "asset_id = :a AND alias = 'latest'"),
                                  {"a": asset_id}).scalar()
            if latest in targets:
                newest = conn.execute(text(
                    "SELECT id, version FROM registry_versions WHERE asset_id = :a AND "
                    "state = 'live' ORDER BY version DESC LIMIT 1"), {"a": asset_id}).fetchone()
                if newest is not None:
                    self._move_alias(conn, asset_id, "latest", newest[0], newest[1], who, None,
                                     now)
                else:
                    conn.execute(text("DELETE FROM registry_aliases WHERE asset_id = :a AND "
                                      "alias = 'latest'"), {"a": asset_id})
                    conn.execute(text(
                        "INSERT INTO registry_alias_events (asset_id, alias, from_version, "
                        "to_version, actor, at) VALUES (:a, 'latest', :f, NULL, :who, :t)"),
                        {"a": asset_id, "f": targets[latest].version, "who": who, "t": now})

        self._write(work)
        return [self._version_by_id(v) for v in targets]

    def alias_history(self, name: str, alias: str | None = None, project: str | None = None,
                      kind: str | None = None) -> list[dict]:
        """Every move of ``alias`` (or of every alias), oldest first: ``{'alias', 'from',
        'to', 'actor', 'run_id', 'at'}`` (``from``/``to`` ``None`` = created/removed).

        Raises :class:`RegistryError` for an ``alias`` the model or dataset never had (a
        typo is not an empty history), naming the aliases it has had."""
        asset_id, project, kind, name, _ = self._asset_row(name, project, kind)
        sql = ("SELECT alias, from_version, to_version, actor, run_id, at FROM "
               "registry_alias_events WHERE asset_id = :a")
        params = {"a": asset_id}
        if alias is not None:
            sql += " AND alias = :al"
            params["al"] = alias
        rows = self._read(sql + " ORDER BY id", **params)
        if alias is not None and not rows:
            known = [r[0] for r in self._read(
                "SELECT alias FROM registry_alias_events WHERE asset_id = :a UNION "
                "SELECT alias FROM registry_aliases WHERE asset_id = :a ORDER BY 1", a=asset_id)]
            raise RegistryError(f"{kind} {name!r} (project {project!r}) never had an alias "
                                f"{alias!r} (its aliases, past and present: "
                                f"{', '.join(known) or 'none'})")
        return [{"alias": r[0], "from": r[1], "to": r[2], "actor": r[3], "run_id": r[4],
                 "at": str(r[5])} for r in rows]

    # ------------------------------------------------------------------ lineage
    def runs_using(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[dict]:
        """The runs that used version ``ref`` of *dataset* ``name`` (of *model* ``name``
        with ``kind='model'``: runs that called ``use_model``) (one query):
        ``{'run_id', 'project', 'status', 'start_time'}``, oldest first.

        The registry's one rule for names: an operation that implies a kind (this one,
        :meth:`produced_by`, ``ato models …``/``ato data …``) looks the name up among that
        kind only, so a model of the same name never makes it ambiguous; where nothing
        implies it (:meth:`get` without ``kind``, an ``ato://`` URI without ``?kind=``), a
        name held by both is an :class:`AmbiguousNameError` saying how to name the kind."""
        v = self.get(name, ref, project, input_kind(kind, RegistryError))
        return [{"run_id": r[0], "project": r[1], "status": r[2], "start_time": str(r[3])}
                for r in self._read(
                    "SELECT e.id, p.name, e.status, e.start_time FROM registry_links l JOIN "
                    "experiments e ON e.id = l.run_id JOIN projects p ON p.id = e.project_id "
                    "WHERE l.version_id = :v AND l.role = 'input' ORDER BY e.id", v=v.id)]

    def produced_by(self, name: str, ref=None, project: str | None = None) -> dict:
        """What produced model version ``ref``: the run, its config, its code fingerprints,
        the dataset versions it used and the model versions it started from (``use_model``)
        (``{'version', 'run', 'config', 'fingerprints', 'datasets', 'models'}``; ``run`` is
        ``None`` for a model registered outside a run)."""
        v = self.get(name, ref, project, "model")
        out = {"version": v.to_dict(), "run": None, "config": None, "fingerprints": {},
               "datasets": [], "models": []}
        if v.run_id is None:
            return out
        rows = self._read(
            "SELECT e.id, e.status, e.start_time, e.config, e.structural_hash, f.trace_id, "
            "f.trace_type, f.fingerprint, dv.version, da.name, dv.digest, da.kind "
            "FROM experiments e "
            "LEFT JOIN fingerprints f ON f.run_id = e.id "
            "LEFT JOIN registry_links l ON l.run_id = e.id AND l.role = 'input' "
            "LEFT JOIN registry_versions dv ON dv.id = l.version_id "
            "LEFT JOIN registry_assets da ON da.id = dv.asset_id WHERE e.id = :r", r=v.run_id)
        if not rows:
            return out
        first = rows[0]
        config = first[3]
        out["run"] = {"run_id": first[0], "status": first[1], "start_time": str(first[2]),
                      "structural_hash": first[4]}
        out["config"] = values.loads(config)  # non-finite floats decoded, as run.config
        inputs: dict = {"dataset": {}, "model": {}}
        for r in rows:
            if r[5] is not None:
                out["fingerprints"][f"{r[5]} ({r[6]})"] = r[7]
            if r[8] is not None:
                inputs[r[11]][(r[9], r[8])] = {"name": r[9], "version": r[8], "digest": r[10]}
        out["datasets"] = [inputs["dataset"][k] for k in sorted(inputs["dataset"])]
        out["models"] = [inputs["model"][k] for k in sorted(inputs["model"])]
        return out

    def downstream(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[dict]:
        """What dataset version ``ref`` fed (with ``kind='model'``: what model version
        ``ref`` fed, through ``use_model``) (one query): every model version produced by a
        run that used it, ``{'run_id', 'model', 'version', 'aliases'}``."""
        v = self.get(name, ref, project, input_kind(kind, RegistryError))
        rows = self._read(
            "SELECT li.run_id, ma.name, mv.version, al.alias FROM registry_links li "
            "JOIN registry_links lo ON lo.run_id = li.run_id AND lo.role = 'output' "
            "JOIN registry_versions mv ON mv.id = lo.version_id "
            "JOIN registry_assets ma ON ma.id = mv.asset_id "
            "LEFT JOIN registry_aliases al ON al.version_id = mv.id "
            "WHERE li.version_id = :v AND li.role = 'input' ORDER BY li.run_id, ma.name, mv.version",
            v=v.id)
        out: dict = {}
        for run_id, model, number, alias in rows:
            entry = out.setdefault((run_id, model, number), {"run_id": run_id, "model": model,
                                                             "version": number, "aliases": []})
            if alias:
                entry["aliases"].append(alias)
        return list(out.values())

    # ------------------------------------------------------------------ resolution
    def resolve(self, uri: str, verify: bool = True) -> str:
        """The local path of ``ato://project/name@ref`` (``ref``: alias, ``vN`` or ``N``;
        default ``latest``), verified against its digest unless ``verify=False``.

        A stored file resolves to its read-only blob; a stored directory to a read-only
        checkout (hard links) inside the store; data recorded in place to its original
        path, which must still hold the same content; a reference to its URI."""
        project, name, ref, kind = parse_uri(uri, with_kind=True)
        try:
            v = self.get(name, ref, project, kind)
        except AmbiguousNameError as e:
            base = (f"ato://{quote_uri_part(project)}/{quote_uri_part(name)}"
                    + (f"@{quote_uri_part(ref)}" if ref else ""))
            raise RegistryError(f"{name!r} is ambiguous in project {project!r} "
                                f"({' and '.join(e.kinds)}): name the kind, "
                                + " or ".join(f"{base}?kind={k}" for k in e.kinds)) from None
        if v.reference is not None:
            return v.reference
        if v.state == "collected":
            raise RegistryError(f"{uri}: {v.kind} v{v.version} was collected by 'ato store gc'")
        if v.store_url is None:
            snap = snapshot(v.source, self.cache) if verify else None
            if snap is not None and snap.digest != v.digest:
                raise RegistryError(f"{uri}: {v.source} no longer holds {v.kind} v{v.version} "
                                    f"(digest {snap.digest[:12]} != {v.digest[:12]})")
            return v.source
        why = self._missing_store(v.store_url)
        if why is not None:
            raise RegistryError(f"{uri}: {v.kind} v{v.version}: {why}")
        store = self.store(v.store_url)
        if not v.is_dir:
            path = store.path(v.digest)
            if verify:
                self._verify_blob(uri, store, path, v.digest)
            return path
        return self._checkout(uri, store, v, verify)

    def _verify_blob(self, uri, store, path, digest) -> None:
        if not os.path.isfile(path):
            raise RegistryError(f"{uri}: blob {digest[:12]} is missing from {store.url}")
        got = snapshot(path, self.cache).digest
        if got != digest:
            raise RegistryError(f"{uri}: blob {digest[:12]} in {store.url} was modified "
                                f"(now {got[:12]}); run 'ato store verify'")

    def _checkout(self, uri, store, v: Version, verify: bool) -> str:
        """The read-only checkout of directory version ``v`` (hard links to its blobs),
        built when absent and, when ``verify`` finds it damaged (a file removed, added or
        replaced), rebuilt from the blobs, which are content-addressed."""
        root = getattr(store, "root", None)
        if root is None:
            raise RegistryError(f"{uri}: directories can be checked out from local stores only")
        target = os.path.join(root, "checkouts", v.digest)
        if not os.path.isdir(target):
            self._build_checkout(uri, store, v, target)
        if verify:
            snap = snapshot(target, self.cache)
            if snap.digest != v.digest:
                _remove_tree(target)
                self._build_checkout(uri, store, v, target)
                snap = snapshot(target, self.cache)
            if snap.digest != v.digest:
                raise RegistryError(f"{uri}: checkout {target} does not match v{v.version} "
                                    f"even rebuilt from its blobs (digest {snap.digest[:12]} != "
                                    f"{v.digest[:12]}): a blob was modified; run "
                                    f"'ato store verify'")
        return target

    def _build_checkout(self, uri, store, v: Version, target: str) -> None:
        import shutil

        tmp = f"{target}.{os.getpid()}.{time.time_ns()}.tmp"
        for f in self.files(v):
            blob = store.path(f["digest"])
            if not os.path.isfile(blob):
                _remove_tree(tmp)
                raise RegistryError(f"{uri}: blob {f['digest'][:12]} of {f['path']} is missing "
                                    f"from {store.url}; run 'ato store verify'")
            dest = os.path.join(tmp, *f["path"].split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            try:
                os.link(blob, dest)
            except OSError:
                shutil.copyfile(blob, dest)
                os.chmod(dest, 0o444)
        os.makedirs(tmp, exist_ok=True)  # a version without files
        _read_only_dirs(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process checked it out first
            _remove_tree(tmp)

    def _checkouts(self, store, url) -> list[tuple[str, Version]]:
        """``(path, version)`` of every checkout in ``store`` of a directory version this
        database records (one version per digest)."""
        root = getattr(store, "root", None)
        folder = os.path.join(root, "checkouts") if root else None
        if folder is None or not os.path.isdir(folder):
            return []
        ids = {r[0]: r[1] for r in self._read(
            "SELECT v.digest, MIN(v.id) FROM registry_versions v WHERE v.store_url = :s AND "
            "v.is_dir = :t AND v.state <> 'collected' GROUP BY v.digest", s=url, t=True)}
        return [(os.path.join(folder, name), self._version_by_id(ids[name]))
                for name in sorted(os.listdir(folder)) if name in ids]

    # ------------------------------------------------------------------ store maintenance
    def _store_urls(self) -> list[str]:
        urls = ({r[0] for r in self._read("SELECT DISTINCT store_url FROM registry_blobs")}
                if self._tables_exist() else set())
        if self.store_url and (not urls or not self._gone(self.store().url)):
            urls.add(self.store().url)  # a configured store that is nowhere, when versions
            # recorded others, is not one more: those are reported (MISSING) themselves
        return sorted(urls)

    def _gone(self, url: str) -> bool:
        """Whether the local store recorded as ``url`` is nowhere to be found."""
        root = getattr(self.store(url), "root", None)
        return root is not None and not os.path.isdir(root)

    def verify(self, quick: bool = False) -> list[dict]:
        """Check every blob recorded in the stores this database uses, then every
        directory checkout of its versions there.

        A local store shared by several databases (``<store>/databases/*.url``) is checked
        for all of them: the blobs the *other* databases record in it are read from them
        (opened read-only) and checked too, each row naming the databases that hold it.

        By default every blob is re-hashed (several at once, one per core) and every
        checkout re-hashed without the stat cache, so bytes changed in place are found even
        when the size, permissions and times of the file are unchanged.  ``quick=True``
        only compares each blob's size with the recorded one and trusts the stat cache for
        checkouts: it finds removed, truncated and grown files, not bytes changed in place.

        Returns one dict per check, sorted by store then digest: ``{'what', 'store',
        'digest', 'size', 'status', 'databases'}``.  ``what`` ``'blob'``: ``status`` ``ok``,
        ``missing`` or ``modified``; ``'checkout'``: ``ok`` or ``damaged`` (a file removed,
        added or changed; resolving the version rebuilds it from the blobs); ``'database'``:
        another database sharing the store could not be read (``status`` ``unreadable``,
        ``database`` its URL without password, ``reason``), so its blobs went unchecked.
        """
        self._require_store()

        from ato.db_routers.sql.engine import display_url

        me = display_url(public_url(self.url))
        problems = []
        gone = {}  # store url -> why: a store that is nowhere is one problem, not N blobs
        for url in self._store_urls():
            why = self._missing_store(url)
            if why is not None:
                gone[url] = why
                problems.append({"what": "store", "store": url, "digest": None, "size": 0,
                                 "status": "missing", "databases": [me],
                                 "reason": f"{why}; its versions need no repair once it is found",
                                 "blobs": 0})
        # a store recorded under several names (a copied project) is one store: each blob
        # and checkout in it is checked once, under its first name
        first = {n: names[0] for names in self._store_groups().values() for n in names}
        blobs: dict = {}  # (store url, digest) -> [size, databases]
        for url, digest, size in (self._read("SELECT store_url, digest, size FROM registry_blobs")
                                  if self._tables_exist() else []):
            if url in gone:
                next(p for p in problems if p["store"] == url)["blobs"] += 1
                continue
            blobs[(first.get(url, url), digest)] = [int(size), [me]]
        seen_unreadable = set()
        for url in self._store_urls():
            if url in gone:
                continue
            theirs, unreadable = self._other_blobs(self.store(url), url)
            for digest, (size, db) in theirs.items():
                dbs = blobs.setdefault((first.get(url, url), digest), [size, []])[1]
                if db not in dbs:
                    dbs.append(db)
            for db, reason in unreadable:
                if (first.get(url, url), db) in seen_unreadable:
                    continue
                seen_unreadable.add((first.get(url, url), db))
                problems.append({"what": "database", "store": first.get(url, url),
                                 "digest": None, "size": 0, "status": "unreadable",
                                 "databases": [db], "database": db, "reason": reason})

        def check(item):
            (url, digest), (size, dbs) = item
            store = self.store(url)
            if quick and _accepts_quick(store):
                status = store.verify(digest, size, quick=True)
            else:
                status = store.verify(digest, size)
            return {"what": "blob", "store": url, "digest": digest, "size": size,
                    "status": status, "databases": dbs}

        items = sorted(blobs.items())
        if len(items) > 1:  # Ctrl-C cancels the blobs not started
            out = map_in_threads(check, items, os.cpu_count() or 2, "ato-verify")
        else:
            out = [check(item) for item in items]
        checked = set()
        for url in self._store_urls():
            if url in gone:
                continue
            for path, v in self._checkouts(self.store(url), url):
                if path in checked:
                    continue
                checked.add(path)
                try:
                    ok = snapshot(path, self.cache if quick else None).digest == v.digest
                except OSError:
                    ok = False
                out.append({"what": "checkout", "store": url, "digest": v.digest, "size": v.size,
                            "status": "ok" if ok else "damaged", "databases": [me]})
        return out + problems

    def _other_blobs(self, store, url: str) -> tuple[dict, list]:
        """``({digest: (size, database)}, [(database, reason)])``: the blobs every other
        database recorded in the local ``store`` holds there, and those that could not be
        read (URLs without passwords)."""
        from sqlalchemy import inspect

        from ato.db_routers.sql.engine import display_url, open_engine

        me = public_url(self.url)
        found: dict = {}
        unreadable = []
        for db in known_databases(store):
            if db == me or self._former_self(db, store):
                continue
            try:
                engine = open_engine(db, readonly=True)
                with engine.connect() as conn:
                    if not inspect(conn).has_table("registry_blobs"):
                        continue
                    for digest, size in conn.execute(text(
                            "SELECT digest, size FROM registry_blobs WHERE store_url = :s"),
                            {"s": url}):
                        found[digest] = (int(size), display_url(db))
            except Exception as e:  # report it, check the rest
                unreadable.append((display_url(db),
                                   str(getattr(e, "orig", None) or e).splitlines()[0]))
        return found, unreadable

    def repair_hint(self, store_url: str, digest: str, status: str) -> str:
        """How to repair blob ``digest`` of ``store_url`` that :meth:`verify` found
        ``missing`` or ``modified``: which command removes the damaged copy, and which
        registration (the versions holding it, with the files they were registered from,
        relative path inside a directory) stores it again."""
        rows = self._read(
            "SELECT p.name, a.name, a.kind, v.version, v.source, v.is_dir, f.path, f.size FROM "
            "registry_files f JOIN registry_versions v ON v.id = f.version_id JOIN "
            "registry_assets a ON a.id = v.asset_id JOIN projects p ON p.id = a.project_id "
            "WHERE f.digest = :d AND v.store_url = :s ORDER BY v.id", d=digest, s=store_url)
        steps = []
        if status == "modified":
            where = getattr(self.store(store_url), "path", None)
            target = where(digest) if where else f"blob {digest} of {store_url}"
            steps.append(f"rm -f {target}")
        if rows:
            p, name, kind, number, source, is_dir, rel, size = rows[0]
            call = "log_model" if kind == "model" else "use_dataset(…, copy=True)"
            origin = os.path.join(source, rel) if is_dir else source
            holders = (", ".join(version_uri(r[0], r[2], r[1], r[3]) for r in rows[:3])
                       + (f" and {len(rows) - 3} more" if len(rows) > 3 else ""))
            try:
                changed = ("is gone" if not os.path.isfile(origin) else
                           "has another size now" if os.path.getsize(origin) != size else None)
            except OSError:
                changed = "cannot be read"
            command = "models" if kind == "model" else "data"
            db = db_option(self.url)
            aliased = [r[0] for r in self._read(
                "SELECT al.alias FROM registry_aliases al JOIN registry_versions v ON "
                "v.id = al.version_id JOIN registry_assets a ON a.id = v.asset_id JOIN "
                "projects p ON p.id = a.project_id WHERE p.name = :p AND a.name = :n AND "
                "a.kind = :k AND v.version = :v AND al.alias <> 'latest' ORDER BY al.alias",
                p=p, n=name, k=kind, v=number)]
            retire = (f"'ato {command} delete {shlex.quote(name)} {number} {db}'"
                      + (f" (after moving its alias {', '.join(aliased)}: 'ato {command} alias "
                         f"{shlex.quote(name)} {aliased[0]} --delete {db}')" if aliased else ""))
            if changed:
                steps.append(f"the file it was registered from, {origin}, {changed}: with a "
                             f"copy of the original, register it again ({call}); without one, "
                             f"{retire} and 'ato store gc --delete {db}' retire it; used by "
                             f"{holders}")
            else:
                where_from = f"{source} (holding {rel})" if is_dir else source
                steps.append(f"register the original again ({call} of {where_from}, if it "
                             f"still has the bytes of v{number}) to store it anew, or retire "
                             f"it with {retire}; used by {holders}")
        else:
            steps.append(f"no version of this database holds it; 'ato store gc "
                         f"{db_option(self.url)}' forgets it")
        return "fix: " + "; then ".join(steps)

    def _require_store(self) -> None:
        """:class:`RegistryError` ("no artifact store for …") when this database has no
        store configured and has recorded none: verify, du and gc have nothing to look at,
        which must not read as "0 problems".  Also when the configured store is a local
        directory that does not exist (a mistyped ``--store``/``$ATO_STORE``, or a default
        store nothing was ever stored in): verify, du and gc never create one, and an empty
        report would hide the typo."""
        if self.store_url is None and not self._store_urls():
            self.store()
        if self.store_url is None:
            return
        configured = open_store(self.store_url)
        root = getattr(configured, "root", None)
        if root is None:
            return
        if os.path.isdir(root):
            if configured.is_store():
                return
            listing = sorted(os.listdir(root))
            held = (f"it holds {', '.join(listing[:5])}" + (" …" if len(listing) > 5 else "")
                    if listing else "it is empty")
            raise RegistryError(
                f"{root} is not an artifact store (no blobs, no tmp/checkouts/databases "
                f"folder; {held}): check the path (--store, $ATO_STORE or "
                f"experiment.sql.store); verify, du and gc never write into a directory "
                f"that is not a store")
        recorded = ({r[0] for r in self._read("SELECT DISTINCT store_url FROM registry_blobs")}
                    if self._tables_exist() else set())
        if any(self._gone(url) for url in recorded):
            return  # versions were stored where nothing is now: verify, du and gc name that
            # store (MISSING store …) rather than the configured one
        if os.path.exists(root):
            why = "not a directory"
        else:
            why = "no such directory" if os.path.isdir(os.path.dirname(root)) else \
                "neither it nor its parent directory exists"
        explicit = self.store_url != default_store_url(self.url) or os.environ.get("ATO_STORE")
        hint = ("check the path (--store, $ATO_STORE or experiment.sql.store)" if explicit else
                f"it is the default store beside {self.url}, and nothing was ever stored "
                f"there; name another with --store, $ATO_STORE or experiment.sql.store")
        raise RegistryError(f"no artifact store at {root} ({why}): {hint}; verify, du and gc "
                            f"never create one")

    def temporary(self) -> dict:
        """The temporary files of each local store this database uses (``<store>/tmp/``:
        copies being written, and those killed registrations left, which can be large):
        ``{store url: [TempFile(name, size, mtime), …]}``.  A store that cannot list them
        (a plugin without ``temp_files``) is left out."""
        self._require_store()
        out = {}
        for names in self._store_groups().values():
            listing = getattr(self.store(names[0]), "temp_files", None)
            if callable(listing):
                out[names[0]] = list(listing())
        return out

    def du(self) -> dict:
        """Bytes per store: ``recorded`` (blobs the database knows), ``on_disk`` (blobs
        present), ``live`` (held by live versions of this database), ``other`` (present
        blobs held by other databases sharing the store and not by this one),
        ``collectable`` (what gc would free), ``temporary`` (every file in ``<store>/tmp/``
        however young, ``None`` for a store plugin that cannot list them).  When another
        database sharing a store cannot be opened, ``other`` and ``collectable`` are
        ``None`` (they depend on it) and ``unreadable`` says why; the rest is counted."""
        self._require_store()
        for url in self._store_urls():
            why = self._missing_store(url)
            if why is not None:
                raise RegistryError(f"MISSING {why}; du counts nothing while it is missing")
        out = {}
        try:
            plan, unreadable = self.gc(dry_run=True), None
        except RegistryError as e:  # a sharing database is gone: count what can be
            plan, unreadable = None, str(e)
        temporary = self.temporary()
        for where, names in self._store_groups().items():
            url = names[0]
            store = self.store(url)

            def total(sql, names=names):
                counts = [self._read(sql, s=n)[0] for n in names]
                return sum(c[0] for c in counts), sum(int(c[1]) for c in counts)

            recorded = total("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM registry_blobs "
                             "WHERE store_url = :s")
            present = list(store.blobs())
            live = total(
                "SELECT COUNT(*), COALESCE(SUM(b.size), 0) FROM registry_blobs b WHERE "
                "b.store_url = :s AND EXISTS (SELECT 1 FROM registry_files f JOIN "
                "registry_versions v ON v.id = f.version_id WHERE f.digest = b.digest AND "
                "v.store_url = b.store_url AND v.state = 'live')")
            free = None if plan is None else list({
                (b["digest"], b["reason"]): b for b in plan if b["store"] in names}.values())
            mine = {r[0] for n in names for r in self._read(
                "SELECT DISTINCT f.digest FROM registry_files f JOIN registry_versions v ON "
                "v.id = f.version_id WHERE v.store_url = :s AND v.state = 'live'", s=n)}
            try:
                theirs = set().union(*(self._others(store, n).recorded for n in names)) - mine
                other = [b for b in present if b.digest in theirs]
            except RegistryError as e:
                other, unreadable = None, unreadable or str(e)
            tmp = next((temporary[n] for n in names if n in temporary), None)
            out[where] = {"location": where,  # where it is now
                          "names": names,  # the store names versions recorded for it
                          "other_blobs": None if other is None else len(other),
                          "other_bytes": None if other is None else sum(b.size for b in other),
                          "unreadable": unreadable,
                          "databases": known_databases(store),
                          "recorded_blobs": recorded[0], "recorded_bytes": recorded[1],
                          "blobs_on_disk": len(present),
                          "bytes_on_disk": sum(b.size for b in present),
                          "live_blobs": live[0], "live_bytes": live[1],
                          "collectable_blobs": None if free is None else len(free),
                          "collectable_bytes": None if free is None
                          else sum(b["size"] for b in free),
                          "temporary_files": None if tmp is None else len(tmp),
                          "temporary_bytes": None if tmp is None else sum(t.size for t in tmp)}
        return out

    def gc(self, dry_run: bool = True, grace: float = 3600.0, forget=()) -> list[dict]:
        """What garbage collection frees (``dry_run``, the default) or freed: blobs held only
        by versions let go by ``keep=`` (never an aliased one), blobs no version records,
        files in the store unknown to the database and temporary files, both older than
        ``grace`` seconds (a registration may be under way).  Each item is
        ``{'store', 'digest', 'size', 'reason'}``; versions whose blobs are freed become
        ``collected``.

        A store shared by several databases lists them (a database registering into it,
        or running gc with ``dry_run=False`` on it, is recorded, see
        :func:`record_database`; reporting never is): gc spares every
        blob and checkout any of them references, opening each read-only.  Raises
        :class:`RegistryError` when one of them cannot be opened (deleting nothing), and
        for a negative ``grace``.

        ``forget`` names databases gone for good: each must be listed by this database's
        store (else :class:`RegistryError`, nothing done); gc then stops sparing what they
        referenced.  They are dropped from the list (:func:`forget_database`) only when
        not ``dry_run``: a dry run changes nothing, it shows what gc would free once they
        are forgotten."""
        if grace < 0:
            raise RegistryError(f"grace={grace!r}: a number of seconds >= 0")
        self._require_store()
        forgotten = self._forget(forget, dry_run)
        out = []
        for url in self._store_urls():
            why = self._missing_store(url)
            if why is not None:  # its versions must not become 'collected' for nothing
                raise RegistryError(f"MISSING {why}; gc deletes nothing while it is missing")
        firsts = {names[0] for names in self._store_groups().values()}
        for url in self._store_urls():
            store = self.store(url)
            # a store recorded under several names (a copied project) is one store: its
            # unrecorded files and temporary files are looked at once, under its first name
            first = url in firsts
            if not dry_run:  # deleting writes to the store: it must know who does
                record_database(store, self.url)
            others = self._others(store, url, forgotten)
            # a digest a live (or aliased) version holds is never collected, whichever
            # store that version recorded: blobs are content-addressed, and a project copied
            # or moved reads its versions' blobs from the store it now sits beside
            held = ("SELECT 1 FROM registry_files f JOIN registry_versions v ON "
                    "v.id = f.version_id WHERE f.digest = b.digest "
                    "AND (v.state = 'live' OR EXISTS (SELECT 1 FROM registry_aliases al "
                    "WHERE al.version_id = v.id))")
            candidates = self._read(f"SELECT b.digest, b.size FROM registry_blobs b WHERE "
                                    f"b.store_url = :s AND NOT EXISTS ({held}) ORDER BY b.digest",
                                    s=url)
            recorded = {r[0] for r in self._read("SELECT DISTINCT digest FROM registry_blobs"
                                                 )} | others.recorded  # under any store name
            limit = time.time() - grace
            strays = []
            for blob in (store.blobs() if first else ()):
                if blob.digest in recorded:
                    continue
                try:
                    if os.path.getmtime(store.path(blob.digest)) < limit:
                        strays.append(blob)
                except OSError:
                    continue
            # checkouts first: measured while their blobs still hold a second link
            if first:
                out += self._stale_checkouts(store, url, dry_run, others.checkouts)
            for digest, size in candidates:
                if digest in others.recorded:  # another database still references it
                    continue
                if dry_run:
                    out.append({"store": url, "digest": digest, "size": int(size),
                                "reason": "only unkept versions"})
                elif self._collect(store, url, digest, held):
                    out.append({"store": url, "digest": digest, "size": int(size),
                                "reason": "only unkept versions"})
            if strays and not dry_run:  # what the others recorded while we looked
                fresh = self._others(store, url, forgotten).recorded
                strays = [b for b in strays if b.digest not in fresh]
            for blob in strays:
                if not dry_run:
                    if not self._still_stray(store, url, blob.digest, limit):
                        continue
                    store.delete(blob.digest)
                out.append({"store": url, "digest": blob.digest, "size": blob.size,
                            "reason": "not recorded"})
            for tmp in (store.clean_temp(grace, dry_run=dry_run) if first else ()):
                out.append({"store": url, "digest": tmp.digest, "size": tmp.size,
                            "reason": "temporary file"})
        return out

    def _forget(self, forget, dry_run: bool) -> frozenset:
        """The :func:`public_url` s of the databases ``forget`` names, each checked to be
        listed by this database's store (all of them before any is dropped), and dropped
        from its list unless ``dry_run``."""
        from ato.db_routers.sql.engine import display_url

        if not forget:
            return frozenset()
        store = self.store()
        listed = known_databases(store)
        urls = []
        for db in forget:
            url = public_url(db)
            if url not in listed:
                raise RegistryError(
                    f"cannot forget the database {display_url(db)}: the store "
                    f"{location(store)} "
                    f"lists no such database (it lists "
                    f"{', '.join(display_url(u) for u in listed) or 'none'})")
            urls.append(url)
        if not dry_run:
            for url in urls:
                forget_database(store, url)
        return frozenset(urls)

    def _stale_checkouts(self, store, url, dry_run, spare=frozenset()) -> list[dict]:
        """Checkouts (hard links) of directory versions that are no longer live: they would
        keep collected blobs' bytes on disk.  Sizes count bytes no other link holds."""
        root = os.path.join(getattr(store, "root", ""), "checkouts")
        if not getattr(store, "root", None) or not os.path.isdir(root):
            return []
        live = {r[0] for name in self._names_of(store) + [url] for r in self._read(
            "SELECT v.digest FROM registry_versions v WHERE v.store_url = :s AND v.is_dir = :t "
            "AND (v.state = 'live' OR EXISTS (SELECT 1 FROM registry_aliases al "
            "WHERE al.version_id = v.id))", s=name, t=True)}
        out = []
        for name in sorted(os.listdir(root)):
            if name in live or name in spare or name.endswith(".tmp"):
                continue
            path = os.path.join(root, name)
            size = 0
            for base, _dirs, files in os.walk(path):
                for f in files:
                    st = os.stat(os.path.join(base, f))
                    size += st.st_size if st.st_nlink == 1 else 0  # else a blob holds it
            out.append({"store": url, "digest": name, "size": size, "reason": "stale checkout"})
            if not dry_run:
                _remove_tree(path)
        return out

    def _still_stray(self, store, url, digest, limit) -> bool:
        try:
            if os.path.getmtime(store.path(digest)) >= limit:
                return False  # a registration just reused it
        except OSError:
            return False
        return not self._read("SELECT 1 FROM registry_blobs WHERE digest = :d", d=digest)

    def _collect(self, store, url, digest, held) -> bool:
        """Delete one blob in a transaction that holds its row, if still unheld."""

        def work(conn):
            lock = "" if self._sqlite else " FOR UPDATE"
            row = conn.execute(text(f"SELECT digest FROM registry_blobs WHERE store_url = :s "
                                    f"AND digest = :d{lock}"), {"s": url, "d": digest}).fetchone()
            if row is None:
                return False
            # a separate statement, so it sees what a registration committed while we waited
            if conn.execute(text(f"SELECT 1 FROM registry_blobs b WHERE b.store_url = :s AND "
                                 f"b.digest = :d AND EXISTS ({held})"),
                            {"s": url, "d": digest}).fetchone() is not None:
                return False
            conn.execute(text("DELETE FROM registry_blobs WHERE store_url = :s AND digest = :d"),
                         {"s": url, "d": digest})
            conn.execute(text("UPDATE registry_versions SET state = 'collected' WHERE "
                              "store_url = :s AND state = 'pruned' AND id IN (SELECT version_id "
                              "FROM registry_files WHERE digest = :d)"), {"s": url, "d": digest})
            store.delete(digest)  # inside the transaction: a registration waits for it
            return True

        return self._write(work)


def _shared_name(conn, asset_id, project, kind, name) -> str | None:
    """The text of the :class:`RegistryWarning` (else ``None``) when the new asset
    ``asset_id`` takes a name the other kind already has in ``project``: from now on an
    ``ato://`` URI naming it without ``?kind=`` is ambiguous, and refused."""
    other = "dataset" if kind == "model" else "model"
    if conn.execute(text("SELECT 1 FROM registry_assets o JOIN registry_assets a ON "
                         "a.project_id = o.project_id AND a.name = o.name WHERE a.id = :a "
                         "AND o.kind = :k"), {"a": asset_id, "k": other}).fetchone() is None:
        return None
    base = f"ato://{quote_uri_part(project)}/{quote_uri_part(name)}"
    return (f"{kind} {name!r} (project {project!r}) shares its name with the {other} "
            f"{name!r}: URIs naming it without ?kind= ({base}@REF) are now ambiguous and "
            f"refused; write {base}@REF?kind={other} for the {other} (the URIs Ato prints "
            f"always carry ?kind=), or use another name")


def _unapplied(kind, name, number, score, old_score, step, old_step, meta_json,
               old_meta) -> str | None:
    """The text of the :class:`RegistryWarning` (else ``None``) when registering content
    ``v{number}`` already holds asked for a score, step or meta it does not record: a
    version's record is not edited."""
    ignored = []
    if score is not None and (old_score is None or float(old_score) != score):
        ignored.append(f"score={score!r} (v{number} has {old_score!r})")
    if step is not None and step != old_step:
        ignored.append(f"step={step!r} (v{number} has {old_step!r})")
    # compared in their encoded form, where a NaN is a marker equal to any other NaN's;
    # old_meta is the JSON text (SQLite) or the parsed value (PostgreSQL), and may hold
    # the NaN/Infinity tokens of a SQLite row written before meta used values.dumps
    if meta_json is not None and old_meta is not None:
        old_meta = json.loads(values.dumps(values.loads(old_meta)))
    if meta_json is not None and json.loads(meta_json) != old_meta:
        ignored.append("meta")
    if ignored:
        return (f"{kind} {name!r}: this content is already v{number}; not applied: "
                f"{', '.join(ignored)} (a version's record is never edited; change the "
                f"content to make a new version)")
    return None


def _repaired_note(kind, name, number, store_url, source, repaired: dict) -> str:
    """The text of the one :class:`RegistryWarning` for a registration that repaired its
    store."""
    parts = []
    for how in ("missing", "damaged"):
        digests = sorted(d for d, h in repaired.items() if h == how)
        if digests:
            shown = ", ".join(d[:12] for d in digests[:3]) + (
                f" and {len(digests) - 3} more" if len(digests) > 3 else "")
            blobs = "blob" if len(digests) == 1 else "blobs"
            parts.append(f"{len(digests)} {how} {blobs} ({shown})")
    return (f"{kind} {name!r} v{number}: repaired the store {store_url}: "
            f"{' and '.join(parts)} stored again from {source}")


def _explain_os_error(kind: str, name: str, source: str, store, error: BaseException):
    """A :class:`RegistryError` naming the asset for an ``OSError`` met while registering
    ``source`` into ``store`` — a file of the source that cannot be read, or an artifact
    store that cannot be written (with how to choose another) — or ``None`` for an error
    that is not about either (raised as it is)."""
    if not isinstance(error, OSError) or isinstance(error, ArtifactStoreError):
        return None
    where = error.filename
    if where is None:
        return None
    where = os.path.abspath(os.fsdecode(where))
    why = error.strerror or type(error).__name__
    root = getattr(store, "root", None)
    if root is not None and (where == root or where.startswith(os.path.join(root, ""))):
        return RegistryError(
            f"{kind} {name!r}: the artifact store {store.url} cannot be written ({why}: "
            f"{where}); make it writable, or choose another store with experiment.sql.store "
            f"(or $ATO_STORE)")
    if where == source or where.startswith(os.path.join(source, "")):
        part = "" if where == source else f" (in {source})"
        return RegistryError(f"{kind} {name!r}: cannot read {where}{part}: {why}")
    return None


def _explaining(job, explained):
    """``job`` raising :func:`_explain_os_error`'s :class:`RegistryError` for the
    ``OSError`` s it explains (errors of the background step name the asset too)."""

    def run():
        try:
            return job()
        except OSError as e:
            better = explained(e)
            if better is None:
                raise
            raise better from e

    return run


def _cache_unavailable(message: str) -> None:
    """The stat cache cannot be used: registering goes on without it, saying so once."""
    import warnings

    warnings.warn(message, RegistryWarning, stacklevel=user_stacklevel())


def _emit_notes(version) -> None:
    """Issue the :class:`RegistryWarning` s a registration collected (once), pointing at
    the user's call.  They are collected rather than issued where they arise: that may be
    the registry's background thread, whose stack holds no line of the user's."""
    notes = getattr(version, "_notes", None)
    if not notes:
        return
    import warnings

    version._notes = []
    for note in notes:
        warnings.warn(note, RegistryWarning, stacklevel=user_stacklevel())


def _place_report(method, placed) -> dict:
    """``{'on_place': placed}`` when the store's ``put``/``commit`` (``method``) reports
    what it writes into place (optional for store plugins), else ``{}``."""
    if placed is None:
        return {}
    import inspect

    try:
        takes = "on_place" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        takes = False
    return {"on_place": placed} if takes else {}


def _takes(method, parameter: str) -> bool:
    """Whether ``method`` takes the keyword ``parameter``."""
    import inspect

    try:
        return parameter in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _accepts_quick(store) -> bool:
    """Whether the store's ``verify`` takes ``quick=`` (optional for store plugins)."""
    import inspect

    try:
        return "quick" in inspect.signature(store.verify).parameters
    except (TypeError, ValueError):
        return False


def _read_only_dirs(root: str) -> None:
    """Make every directory under ``root`` (and ``root``) read-only: files in a checkout
    are already read-only blobs."""
    for base, dirs, _files in os.walk(root, topdown=False):
        for d in dirs:
            os.chmod(os.path.join(base, d), 0o555)
    os.chmod(root, 0o555)


def _remove_tree(root: str) -> None:
    """Remove a (read-only) checkout: its directories are made writable first."""
    import shutil

    if not os.path.isdir(root):
        return
    for base, dirs, _files in os.walk(root):
        os.chmod(base, 0o755)
        for d in dirs:
            try:
                os.chmod(os.path.join(base, d), 0o755)
            except OSError:
                pass
    shutil.rmtree(root, ignore_errors=True)


def parse_uri(uri: str, with_kind: bool = False):
    """``(project, name, ref)`` of ``ato://project/name@ref[?kind=K]`` (``ref`` ``None``
    when absent), with ``kind`` (``None`` when absent) appended when ``with_kind``.

    Errors: :class:`RegistryError` for anything else, or a kind other than ``model`` or
    ``dataset``."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    if m is None:
        raise RegistryError(f"{uri!r} is not an ato:// URI ({_URI_FORM})")
    kind = m["kind"]
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"{uri}: kind={kind!r} must be 'model' or 'dataset'")
    try:  # printed URIs percent-encode what a project or name may hold (version_uri)
        project, name = unquote_uri_part(m["project"]), unquote_uri_part(m["name"])
        ref = None if m["ref"] is None else unquote_uri_part(m["ref"])
    except ProtocolRegistryError as e:
        raise RegistryError(f"{uri}: {e}") from None
    if with_kind:
        return project, name, ref, kind
    return project, name, ref
