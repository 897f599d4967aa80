"""Content addressing for artifacts: SHA-256 hashing, a racy-safe stat cache and the
artifact-store seam.

An *artifact store* keeps blobs by the SHA-256 of their bytes.  Stores are plugins chosen
by URL scheme (``ato_register_artifact_stores``); core ships :class:`LocalStore`, a
directory laid out as ``<root>/ab/cdef…`` (the first two hex digits, then the other 62),
which is what a plain path or a ``file://`` URL opens.

Guarantees of :meth:`LocalStore.put`:

- the bytes are copied into a temporary file inside the store while they are hashed —
  a large file by the kernel (``copy_file_range``) while a second thread hashes the source,
  checked against racy edits (:func:`copy_file_hashing`); a small or suspect one in one
  pass (:func:`copy_hashing`) — then ``fsync``-ed and renamed into place: a process killed
  at any moment leaves either no blob or a complete one (plus, at worst, a temporary file
  that ``ato store gc`` removes);
- identical content is stored once; memory stays bounded (one 1 MiB buffer, or two of
  4 MiB in one pass) whatever the file size.

The :class:`StatCache` remembers ``(size, mtime_ns, inode, ctime_ns) -> digest`` per path so
unchanged files are not read again.  Like git's index it distrusts an entry whose file was
modified within the file system's timestamp granularity of the moment hashing started (a
"racy" entry): such a file is hashed again next time, so an edit that keeps size and mtime
can never be mistaken for unchanged content.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Iterator
from operator import attrgetter
from typing import ClassVar, NamedTuple, Protocol

from ato.errors import AtoError

# hashlib, sqlite3, array and concurrent.futures are imported where used: this module is
# imported with the plugin manager (for the ArtifactStore interface), which must stay light.

#: Read size when only hashing (bytes); chosen by ``benchmarks/bench_registry.py``'s sweep.
HASH_BUFFER = 1 << 20
#: Files at least this large are read by a second thread while hashed (by default).
READER_THREAD_MIN = 32 << 20
#: Chunk size when copying and hashing at once (bytes); two such buffers are in flight.
COPY_BUFFER = 4 << 20
#: A cache entry is trusted only when the file's mtime is this much older than the moment
#: its hashing started (nanoseconds): the kernel stamps files with a coarse clock.
RACY_WINDOW_NS = 100_000_000
#: The same for file systems with whole-second timestamps (FAT keeps 2 s).
RACY_WINDOW_COARSE_NS = 2_000_000_000
#: Temporary files younger than this are never removed by garbage collection (seconds).
TEMP_GRACE_S = 3600.0
#: How long a stat-cache access waits for another process's lock before it does without
#: the cache (seconds; writes are one row, so a longer wait means a stuck lock).
CACHE_BUSY_S = 5.0


class ArtifactStoreError(AtoError, OSError):
    """A store could not be opened, or a blob is missing or does not match its digest."""


class SpecialFileError(ArtifactStoreError):
    """A path that is neither a regular file nor a directory (a FIFO, a socket, a device,
    a symbolic link loop or a dangling link): refused before it is opened, since reading
    a FIFO blocks forever and ``/dev/null`` would read as an empty file."""


def special_kind(path: str | os.PathLike) -> str | None:
    """``None`` for a regular file, a directory or a missing path; otherwise what ``path``
    is, in words (``'a FIFO'``, ``'a socket'``, ``'a character device'``, ``'a block
    device'``, ``'a symbolic link loop'``, ``'a dangling symbolic link'``)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return "a dangling symbolic link"
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        raise
    mode = st.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, words in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def check_regular(path: str | os.PathLike) -> None:
    """Raise :class:`SpecialFileError` naming ``path`` and its kind unless it is a regular
    file, a directory or missing."""
    kind = special_kind(path)
    if kind is not None:
        raise SpecialFileError(f"{os.fspath(path)}: {kind}, not a regular file or directory; "
                               f"only regular files and directories can be registered")


class MissingPathError(ArtifactStoreError, FileNotFoundError):
    """The file or directory to hash or store does not exist."""


class EmptyDirectoryError(ArtifactStoreError):
    """A directory to hash or store that holds no file (an empty version would be
    recorded)."""


class BadFileNameError(ArtifactStoreError):
    """A file name inside a directory that is not valid UTF-8 (the file system gave bytes
    that decode to no text): it cannot be recorded, nor hashed into a tree digest."""


class ChangedWhileHashingError(ArtifactStoreError):
    """A file kept changing while it was hashed (its size, mtime, ctime or inode differed
    after hashing, twice): its digest would be of content that never existed as a whole."""


def _changed_error(path: str) -> ChangedWhileHashingError:
    return ChangedWhileHashingError(
        f"{path}: changed while it was being hashed (twice; its size, modification time or "
        f"inode differed afterwards): the digest would be of content that never existed; "
        f"register it once it is completely written")


def _check_names(root: str, joined: str) -> None:
    """:class:`BadFileNameError` naming (escaped) every relative path in ``joined`` (NUL
    separated) that is not valid UTF-8."""
    try:
        joined.encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    bad = []
    for rel in joined.split("\0"):
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            bad.append(ascii(os.fsencode(os.path.join(root, rel)))[1:])
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    raise BadFileNameError(f"{len(bad)} file name{'s' if len(bad) != 1 else ''} not valid "
                           f"UTF-8: {shown}; only names that are text can be recorded "
                           f"(rename {'it' if len(bad) == 1 else 'them'})")


class Blob(NamedTuple):
    """One stored object: its SHA-256 (64 lower-case hex digits) and size in bytes."""

    digest: str
    size: int


class TempFile(NamedTuple):
    """A file in a local store's ``tmp/``: a copy being written, or one a killed writer
    left behind (see :meth:`LocalStore.temp_files`)."""

    name: str
    size: int
    mtime: float


# --------------------------------------------------------------------------- hashing
def hash_file(path: str | os.PathLike, buffer_size: int = HASH_BUFFER,
              reader: bool | None = None) -> Blob:
    """SHA-256 and size of a file: one sequential SHA-256 of its raw bytes, read in
    ``buffer_size`` chunks into reused buffers (memory stays bounded whatever the size).

    ``reader`` chooses who reads: ``False`` — the calling thread reads chunk *k + 1* after
    hashing chunk *k*; ``True`` — a second thread reads ahead into one of three buffers
    while the caller hashes (``hashlib`` releases the GIL), so the copy out of the page
    cache overlaps the hash on two cores; ``None`` (default) — the reader thread for a file
    of :data:`READER_THREAD_MIN` bytes or more (it won side by side in
    ``benchmarks/bench_registry.py``, which measures both), one thread for smaller ones.
    Several files hash in parallel threads (:func:`snapshot`); those pass ``reader=False``.

    Errors: ``OSError`` from opening or reading (``FileNotFoundError`` for a missing file).
    """
    import hashlib

    with open(path, "rb", buffering=0) as f:
        first = f.read(buffer_size)
        h = hashlib.sha256(first)
        size = len(first)
        if size < buffer_size:  # a small file: one read, no buffer to allocate
            return Blob(h.hexdigest(), size)
        if reader is None:
            reader = os.fstat(f.fileno()).st_size >= READER_THREAD_MIN
        if reader:
            return Blob(*_hash_read_ahead(f, h, size, buffer_size))
        buf = bytearray(buffer_size)
        mv = memoryview(buf)
        readinto, update = f.readinto, h.update
        while True:
            n = readinto(mv)
            if n == buffer_size:
                update(mv)
            elif not n:
                break
            else:
                update(mv[:n])
            size += n
    return Blob(h.hexdigest(), size)


def _hash_read_ahead(f, h, size: int, buffer_size: int) -> tuple[str, int]:
    """Finish hashing the open file ``f`` into ``h`` (``size`` bytes already hashed) with a
    reader thread filling three ``buffer_size`` buffers ahead of the hashing caller."""
    import queue

    free: queue.SimpleQueue = queue.SimpleQueue()
    full: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(3):
        free.put(bytearray(buffer_size))

    def read():
        try:
            while True:
                buf = free.get()
                if buf is None:  # the hashing side stopped early
                    return
                n = f.readinto(buf)
                full.put((buf, n))
                if not n:
                    return
        except BaseException as e:  # re-raised by the hashing side
            full.put((None, e))

    worker = threading.Thread(target=read, name="ato-read", daemon=True)
    worker.start()
    try:
        while True:
            buf, n = full.get()
            if buf is None:
                raise n
            if not n:
                break
            h.update(memoryview(buf)[:n] if n != buffer_size else buf)
            size += n
            free.put(buf)
    finally:
        free.put(None)
        worker.join()
    return h.hexdigest(), size


def copy_hashing(src, dst, buffer_size: int = COPY_BUFFER) -> Blob:
    """Copy the open binary file ``src`` to ``dst`` while hashing it; returns the SHA-256
    and byte count of what was copied.

    Hashing chunk *k* (in a worker thread) overlaps writing chunk *k* and reading chunk
    *k + 1*; two buffers of ``buffer_size`` bytes are the only memory used.
    """
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    h = hashlib.sha256()
    buffers = [bytearray(buffer_size), bytearray(buffer_size)]
    size = 0
    pending = None
    with ThreadPoolExecutor(1, thread_name_prefix="ato-hash") as pool:
        k = 0
        while True:
            mv = memoryview(buffers[k & 1])
            n = src.readinto(mv)
            if pending is not None:
                pending.result()
            if not n:
                break
            chunk = mv[:n]
            pending = pool.submit(h.update, chunk)
            dst.write(chunk)
            size += n
            k += 1
    return Blob(h.hexdigest(), size)


#: Files smaller than this are stored by :func:`copy_hashing` (one pass in user space).
KERNEL_COPY_MIN = 8 << 20


def _same_file_state(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns, a.st_ino, a.st_dev) == (
        b.st_size, b.st_mtime_ns, b.st_ctime_ns, b.st_ino, b.st_dev)


def copy_file_hashing(src, dst, buffer_size: int = HASH_BUFFER) -> Blob:
    """Copy the open regular file ``src`` to the open file ``dst`` and return the SHA-256
    and size of what was copied — as :func:`copy_hashing`, but faster for large files.

    The copy runs in the kernel (``os.copy_file_range``: no bytes pass through Python)
    while a second thread hashes the source with ``os.preadv`` into one preallocated
    buffer; both read the page cache, so the source is read from disk once and the two
    overlap on two cores.  Because the copied and the hashed bytes are read separately,
    they are the same bytes only if nobody wrote the source meanwhile; this is checked the
    way git's index checks for racy edits:

    - before starting, the source's last change (mtime and ctime) must be older than
      :data:`RACY_WINDOW_NS` (a write within the clock's granularity of an earlier one could
      leave both unchanged); a younger file waits out the rest of that window (at most
      0.1 s) — or, on a file system with whole-second timestamps, takes the one-pass path;
    - after both finish, ``fstat`` must show the same size, mtime, ctime, inode and device,
      and both sides must have seen exactly ``size`` bytes.

    Whenever a check fails, or the kernel cannot copy between these files (another file
    system on an old kernel, a platform without ``copy_file_range``), ``dst`` is truncated
    and :func:`copy_hashing` (one read: the hashed bytes are the written bytes) does the
    work.  Files below :data:`KERNEL_COPY_MIN` bytes always take that path.
    """
    fd, out = src.fileno(), dst.fileno()
    before = os.fstat(fd)
    if (before.st_size < KERNEL_COPY_MIN or not stat.S_ISREG(before.st_mode)
            or not hasattr(os, "copy_file_range") or not hasattr(os, "preadv")):
        return copy_hashing(src, dst)
    window = RACY_WINDOW_COARSE_NS if before.st_mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
    if window == RACY_WINDOW_NS:
        wait = max(before.st_mtime_ns, before.st_ctime_ns) + window - time.time_ns()
        if wait > 0:
            time.sleep(wait / 1e9)
    if _racy(before, time.time_ns()):
        return copy_hashing(src, dst)
    import hashlib

    size = before.st_size
    h = hashlib.sha256()
    hashed = [0]
    failed: list = []

    def hash_source():
        buf = bytearray(buffer_size)
        mv = memoryview(buf)
        offset = 0
        try:
            while offset < size:
                n = os.preadv(fd, [mv[:min(buffer_size, size - offset)]], offset)
                if not n:
                    break
                h.update(mv[:n])
                offset += n
        except BaseException as e:  # reported after the join
            failed.append(e)
        hashed[0] = offset

    worker = threading.Thread(target=hash_source, name="ato-hash", daemon=True)
    worker.start()
    copied = 0
    fallback = False
    try:
        while copied < size:
            n = os.copy_file_range(fd, out, size - copied, copied, copied)
            if not n:
                break
            copied += n
        if copied == size:
            # Write the copy back to disk while the other thread still hashes (the copy is
            # the faster of the two): the caller's fsync then finds nothing left to write.
            (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(out)
    except OSError:
        fallback = True  # e.g. EXDEV / ENOSYS / EINVAL: this kernel cannot copy these
    finally:
        worker.join()
    if failed:
        raise failed[0]
    after = os.fstat(fd)
    if fallback or copied != size or hashed[0] != size or not _same_file_state(before, after):
        os.ftruncate(out, 0)
        os.lseek(out, 0, os.SEEK_SET)
        src.seek(0)
        return copy_hashing(src, dst)
    return Blob(h.hexdigest(), size)


def map_in_threads(fn, items, workers: int, name: str, chunksize: int = 1) -> list:
    """``list(map(fn, items))`` on ``workers`` threads.  When it is interrupted (Ctrl-C in
    the caller, or an error of one item) the items not started are cancelled and the
    caller is not held until the running ones finish — unlike a ``with ThreadPoolExecutor``
    block, which runs every queued item before the interrupt gets through."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        out = list(pool.map(fn, items, chunksize=chunksize))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return out


def tree_digest(entries) -> str:
    """The digest of a directory: SHA-256 over its files sorted by relative path, one line
    ``<path>\\0<size>\\0<sha256>\\n`` each (paths use ``/`` on every operating system)."""
    import hashlib

    text = "".join([f"{path}\0{size}\0{digest}\n" for path, size, digest in sorted(entries)])
    return hashlib.sha256(text.encode()).hexdigest()


def walk_files(root: str, skipped: list | None = None
               ) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file under ``root`` as ``(relative posix path, absolute path, stat)``,
    sorted by relative path.  Symbolic links to files and to directories are followed; a
    link to a directory already walked (a cycle, or a directory included under another
    path) is skipped and listed in ``skipped`` (see :func:`snapshot`)."""
    out = [(rel + e.name, e.path, e.stat()) for rel, files in _directories(root, skipped)
           for e in files]
    out.sort(key=lambda e: e[0])
    return out


# --------------------------------------------------------------------------- stat cache
def default_cache_dir() -> str:
    """``$ATO_CACHE_DIR``, else ``$XDG_CACHE_HOME/ato``, else ``~/.cache/ato``."""
    explicit = os.environ.get("ATO_CACHE_DIR")
    if explicit:
        return explicit
    return _unset_cache_dir()


def _unset_cache_dir() -> str:
    """The cache directory used when ``$ATO_CACHE_DIR`` is not set."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ato")


def _cache_dir_advice() -> str:
    """How to give the stat cache a usable directory, for the case at hand: the
    ``$ATO_CACHE_DIR`` the user set, or the default used because it is not set."""
    explicit = os.environ.get("ATO_CACHE_DIR")
    if explicit:
        return (f"$ATO_CACHE_DIR is set to {explicit!r}: set it to a writable directory, or "
                f"unset it to use the default {_unset_cache_dir()}")
    return (f"$ATO_CACHE_DIR is not set, so the default {_unset_cache_dir()} is used: set "
            f"$ATO_CACHE_DIR to a writable directory")


def _racy(st: os.stat_result, hashed_ns: int) -> bool:
    return _racy_values(st.st_mtime_ns, st.st_ctime_ns, hashed_ns)


def _racy_values(mtime_ns: int, ctime_ns: int, hashed_ns: int) -> bool:
    window = RACY_WINDOW_COARSE_NS if mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
    return mtime_ns + window >= hashed_ns or ctime_ns + window >= hashed_ns


_CACHE_WARNED: set = set()  # cache paths already reported unusable (once per process)
_CACHE_WARNED_LOCK = threading.Lock()


class StatCache:
    """``path -> digest`` for files whose ``(size, mtime_ns, inode, ctime_ns)`` did not
    change since they were hashed; one SQLite file per user (``default_cache_dir()``),
    shared safely by concurrent processes.  Losing it only costs re-hashing.

    A cache that cannot be used — its directory cannot be created (a read-only ``$HOME``),
    its file is not a database, is read-only or stays locked — is left alone: every method
    answers as an empty cache, and ``on_unavailable(message)`` (default: a
    ``RuntimeWarning``) says so once per path and process, naming the file, the reason and
    ``$ATO_CACHE_DIR``; ``unavailable`` holds the reason."""

    def __init__(self, path: str | None = None, on_unavailable=None):
        if path is None:
            path = os.path.join(default_cache_dir(), "statcache.sqlite")
        self.path = path
        self._local = threading.local()
        #: why the cache is not used (``None`` while it works): set by the first failure
        self.unavailable: str | None = None
        self._on_unavailable = on_unavailable
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        except OSError as e:
            self._give_up(e)

    def _give_up(self, error: BaseException) -> None:
        """The cache cannot be used (its directory cannot be created, its file is not a
        database, is read-only or locked, the disk is full): work on without it, saying so
        once.  It is an optimisation: nothing else fails with it."""
        if self.unavailable is not None:
            return
        reason = f"{type(error).__name__}: {error}"
        self.unavailable = reason
        message = (f"the stat cache {self.path} cannot be used ({reason}); registering "
                   f"without it (every file is read again each time). "
                   f"{_cache_dir_advice()}")
        with _CACHE_WARNED_LOCK:
            if self.path in _CACHE_WARNED:
                return
            _CACHE_WARNED.add(self.path)
        if self._on_unavailable is not None:
            self._on_unavailable(message)
        else:
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _guarded(self, work, default):
        """``work()``, or ``default`` once the cache failed (it is then left alone)."""
        if self.unavailable is not None:
            return default
        import sqlite3

        try:
            return work()
        except (OSError, sqlite3.Error) as e:
            self._give_up(e)
            return default

    def _conn(self):
        import sqlite3

        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=CACHE_BUSY_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(CACHE_BUSY_S * 1000)}")
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # another process is switching it; WAL is persistent
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, size INTEGER, "
                         "mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER, digest TEXT, "
                         "hashed_ns INTEGER) WITHOUT ROWID")
            # one row per directory, read in one go (like git's index) for large trees:
            # relative paths in walk order joined by NUL, digests concatenated, four signed
            # 64-bit integers per file (size, mtime_ns, inode, ctime_ns; size -1 marks an
            # entry that was racy when stored), hashed_ns per file, the tree's digest and size
            columns = [r[1] for r in conn.execute("PRAGMA table_info(tree)")]
            if columns and "stats" not in columns:
                conn.execute("DROP TABLE IF EXISTS tree")  # an earlier layout: only a cache
            conn.execute("CREATE TABLE IF NOT EXISTS tree (root TEXT PRIMARY KEY, paths TEXT, "
                         "digests TEXT, stats BLOB, hashed BLOB, digest TEXT, size INTEGER) "
                         "WITHOUT ROWID")
            self._local.conn = conn
        return conn

    def _tree_row(self, root: str):
        """The raw row remembered for directory ``root``: ``(paths, stats, digests, digest,
        size)`` as stored (see :meth:`store_tree`), or ``None``."""
        return self._conn().execute("SELECT paths, stats, digests, digest, size FROM tree "
                                    "WHERE root = ?", (root,)).fetchone()

    def _load_tree(self, root: str) -> dict:
        """``{relative path: (size, mtime_ns, inode, ctime_ns, digest, hashed_ns)}`` remembered
        for the directory ``root`` (``{}`` when none, or when the row is inconsistent); an
        entry that was racy when stored has size -1, so it matches no file."""
        row = self._conn().execute("SELECT paths, digests, stats, hashed FROM tree WHERE "
                                   "root = ?", (root,)).fetchone()
        if row is None or not row[0]:
            return {}
        import array

        paths = row[0].split("\0")
        digests = row[1] or ""
        stats, hashed = array.array("q"), array.array("q")
        stats.frombytes(row[2] or b"")
        hashed.frombytes(row[3] or b"")
        n = len(paths)
        if len(digests) != 64 * n or len(stats) != 4 * n or len(hashed) != n:
            return {}
        return {p: (stats[4 * i], stats[4 * i + 1], stats[4 * i + 2] % (1 << 64),
                    stats[4 * i + 3], digests[64 * i:64 * i + 64], hashed[i])
                for i, p in enumerate(paths)}

    def _store_tree(self, root: str, entries: dict, digest: str | None = None,
                   size: int | None = None) -> None:
        """Remember ``{relative path: (size, mtime_ns, inode, ctime_ns, digest, hashed_ns)}``
        (in the order the directory is walked) for the directory ``root``, replacing what
        was there; ``digest``/``size`` are the tree's (computed when not given).  An entry
        hashed within the racy window of its mtime or ctime is stored so that it never
        matches (the file is read again next time)."""
        import array

        paths = list(entries)
        stats, hashed = array.array("q"), array.array("q")
        total = 0
        for p in paths:
            fsize, mtime, ino, ctime, _digest, when = entries[p]
            racy = fsize >= 0 and _racy_values(mtime, ctime, when)
            stats.extend((-1 if racy else fsize, mtime,
                          ino - (1 << 64) if ino >= 1 << 63 else ino, ctime))
            hashed.append(when)
            total += max(fsize, 0)
        if digest is None:
            digest = tree_digest((p, e[0], e[4]) for p, e in entries.items())
        row = (root, "\0".join(paths), "".join(entries[p][4] for p in paths), stats.tobytes(),
               hashed.tobytes(), digest, total if size is None else size)
        self._write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO tree VALUES (?, ?, ?, ?, ?, ?, ?)", row))

    def _write(self, work) -> None:
        import sqlite3

        conn = self._conn()
        for attempt in range(3):  # each attempt waits up to CACHE_BUSY_S for the lock
            try:
                conn.execute("BEGIN IMMEDIATE")
                work(conn)
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # only a busy database is worth another try (read-only, full: not)
                if attempt == 2 or "locked" not in str(e) and "busy" not in str(e):
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _lookup(self, files: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        """The cached digest of every ``(absolute path, stat)`` whose entry still holds."""
        if not files:
            return {}
        conn = self._conn()
        rows: dict = {}
        if len(files) > 64:
            lo = min(p for p, _ in files)
            hi = max(p for p, _ in files)
            for row in conn.execute("SELECT path, size, mtime_ns, ino, ctime_ns, digest, "
                                    "hashed_ns FROM stat WHERE path >= ? AND path <= ?", (lo, hi)):
                rows[row[0]] = row
        else:
            for p, _ in files:
                row = conn.execute("SELECT path, size, mtime_ns, ino, ctime_ns, digest, hashed_ns "
                                   "FROM stat WHERE path = ?", (p,)).fetchone()
                if row is not None:
                    rows[p] = row
        out = {}
        for p, st in files:
            row = rows.get(p)
            if (row is not None and row[1] == st.st_size and row[2] == st.st_mtime_ns
                    and row[3] == st.st_ino and row[4] == st.st_ctime_ns
                    and not _racy(st, row[6])):
                out[p] = row[5]
        return out

    def _store(self, entries: list[tuple[str, os.stat_result, str, int]]) -> None:
        """Remember ``(absolute path, stat taken before hashing, digest, time_ns when
        hashing started)``."""
        if not entries:
            return
        rows = [(p, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, d, t)
                for p, st, d, t in entries]
        self._write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?, ?)", rows))


    # the cache is an optimisation: any failure of it (see _give_up) reads as a miss
    def tree_row(self, root: str):
        """:meth:`_tree_row`, ``None`` when the cache is unavailable."""
        return self._guarded(lambda: self._tree_row(root), None)

    def load_tree(self, root: str) -> dict:
        """:meth:`_load_tree`, ``{}`` when the cache is unavailable."""
        return self._guarded(lambda: self._load_tree(root), {})

    def store_tree(self, root: str, entries: dict, digest: str | None = None,
                   size: int | None = None) -> None:
        """:meth:`_store_tree`; nothing when the cache is unavailable."""
        self._guarded(lambda: self._store_tree(root, entries, digest, size), None)

    def lookup(self, files: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        """:meth:`_lookup`, ``{}`` when the cache is unavailable."""
        return self._guarded(lambda: self._lookup(files), {})

    def store(self, entries: list[tuple[str, os.stat_result, str, int]]) -> None:
        """:meth:`_store`; nothing when the cache is unavailable."""
        self._guarded(lambda: self._store(entries), None)


# --------------------------------------------------------------------------- digests of paths
_STAT_FIELDS = attrgetter("st_size", "st_mtime_ns", "st_ino", "st_ctime_ns")


class FileEntry(NamedTuple):
    """One file of a version: relative posix path, size in bytes, SHA-256, absolute path."""

    path: str
    size: int
    digest: str
    source: str


class Snapshot:
    """The content of a file or directory: ``digest`` is the file's SHA-256 for a file and
    :func:`tree_digest` for a directory; ``size`` the bytes of all files; ``file_count``
    their number; ``files`` the :class:`FileEntry` tuple sorted by path (built on first
    access: an unchanged tree answers without one object per file); ``hashed`` counts the
    files actually read (the others came from the stat cache); ``skipped`` the symbolic
    links to directories left out (see :func:`_directories`)."""

    __slots__ = ("digest", "size", "is_dir", "hashed", "file_count", "skipped", "_files",
                 "_build")

    def __init__(self, digest: str, size: int, is_dir: bool, files=None, hashed: int = 0,
                 *, file_count: int | None = None, build=None, skipped=()):
        self.digest, self.size, self.is_dir, self.hashed = digest, size, is_dir, hashed
        #: symbolic links to directories left out: ``(relative path, target, why)``
        self.skipped = tuple(skipped)
        self._files = None if files is None else tuple(files)
        self._build = build
        self.file_count = len(self._files) if file_count is None else file_count

    @property
    def files(self) -> tuple[FileEntry, ...]:
        if self._files is None:
            self._files = tuple(sorted(self._build(), key=lambda f: f.path))
            self._build = None
        return self._files

    def __repr__(self):
        return (f"Snapshot({self.digest[:12]}, size={self.size}, is_dir={self.is_dir}, "
                f"files={self.file_count}, hashed={self.hashed})")


def _directories(root: str, skipped: list | None = None):
    """Yield ``(relative posix prefix, [DirEntry of each regular file])`` for every
    directory under ``root`` (``os.scandir``, depth first), the real ones first, then those
    reached through symbolic links to directories (in the order of the links' paths).

    A link to a directory is followed like a link to a file (``train -> /mnt/disk2/train``
    records the data), except a link to a directory already walked — an ancestor of the
    link (a cycle) or a directory included under another path — which is skipped and
    appended to ``skipped`` as ``(the link's relative path, its target, why)`` (directories
    are told apart by ``(st_dev, st_ino)``).  Anything that is neither a file, a directory
    nor a link to one (a FIFO, a socket, a device, a dangling link or a link loop) raises
    :class:`SpecialFileError` naming it."""
    stack = [("", root)]
    links: list = []  # (relative path of the link with a trailing '/', its path)
    walked = [("", root)]  # real directories, stat-ed only once a link must be followed
    visited: dict | None = None  # (st_dev, st_ino) -> relative prefix
    while True:
        while stack:
            rel, directory = stack.pop()
            with os.scandir(directory) as it:
                entries = list(it)
            files = [e for e in entries if e.is_file(follow_symlinks=False)]
            if len(files) != len(entries):  # subdirectories, symbolic links or other files
                files = []
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        item = (f"{rel}{entry.name}/", entry.path)
                        stack.append(item)
                        if visited is None:
                            walked.append(item)
                        else:
                            st = entry.stat(follow_symlinks=False)
                            visited.setdefault((st.st_dev, st.st_ino), item[0])
                    elif entry.is_file():
                        files.append(entry)
                    elif entry.is_symlink() and entry.is_dir():
                        links.append((f"{rel}{entry.name}/", entry.path))
                    else:
                        check_regular(entry.path)
            if files:
                yield rel, files
        if not links:
            return
        if visited is None:
            visited = {}
            for prefix, path in walked:
                st = os.stat(path)
                visited.setdefault((st.st_dev, st.st_ino), prefix)
        links.sort()
        rel, path = links.pop(0)
        st = os.stat(path)
        seen = visited.get((st.st_dev, st.st_ino))
        if seen is None:
            visited[(st.st_dev, st.st_ino)] = rel
            stack.append((rel, path))
        elif skipped is not None:
            why = ("a link to its own ancestor (a cycle)" if rel.startswith(seen)
                   else "the same directory as " + (seen or "the registered directory itself"))
            skipped.append((rel[:-1], os.path.realpath(path), why))


def _scan(root: str, skipped: list | None = None) -> tuple[str, object, int]:
    """The regular files under ``root`` in walk order (:func:`_directories`: depth first,
    a directory's files, then its subdirectories; then what links to directories lead to)
    as ``(relative posix paths joined by NUL, packed array('q') of size, mtime_ns, inode,
    ctime_ns per file, number of files)``.

    One ``stat`` per file, taken from its directory entry; a directory's stats are read
    and packed by C-level ``map`` calls and its paths joined in one string operation, so no
    Python object outlives a directory.  Symbolic links are followed, to files and to
    directories; a link to a directory already walked is skipped and listed in
    ``skipped`` (see :func:`_directories`).  Anything else (a FIFO, a socket, a device, a
    dangling link or a link loop) raises :class:`SpecialFileError` naming it."""
    import array
    from itertools import chain

    parts: list[str] = []
    stats = array.array("q")
    count = 0
    entry_stat, fields = os.DirEntry.stat, _STAT_FIELDS
    for rel, files in _directories(root, skipped):
        mark = len(stats)
        try:
            stats.extend(chain.from_iterable(map(fields, map(entry_stat, files))))
        except OverflowError:  # an inode number of 2**63 or more: stored as its 64-bit pattern
            del stats[mark:]
            for entry in files:
                st = entry.stat()
                ino = st.st_ino - (1 << 64) if st.st_ino >= 1 << 63 else st.st_ino
                stats.extend((st.st_size, st.st_mtime_ns, ino, st.st_ctime_ns))
        parts.append(rel + f"\0{rel}".join([e.name for e in files]))
        count += len(files)
    return "\0".join(parts), stats, count


def snapshot(path: str | os.PathLike, cache: StatCache | None = None,
             workers: int | None = None, hasher=None) -> Snapshot:
    """Hash a file or a directory tree, reusing ``cache`` for unchanged files; the files of
    a directory are hashed by ``workers`` threads (default: one per CPU).

    An unchanged directory costs one walk (a ``stat`` per file from its directory entry),
    one read of its cache row and one comparison of the packed stat values with it.

    ``hasher(absolute path) -> digest`` replaces plain hashing of the files the cache does
    not know, e.g. ``lambda p: store.put(p).digest`` to store while hashing (one read).

    Symbolic links inside a directory are followed, to files and to directories; a link to
    a directory already walked (a cycle) is left out and listed in ``Snapshot.skipped``.

    Errors: :class:`MissingPathError` for a missing path, :class:`EmptyDirectoryError` for
    an empty directory."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        check_regular(path)
        raise MissingPathError(f"{path}: no such file or directory") from None
    except OSError:
        check_regular(path)
        raise
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        check_regular(path)
    if stat.S_ISDIR(st.st_mode):
        return _snapshot_tree(path, cache, workers, hasher)
    known = cache.lookup([(path, st)]) if cache is not None else {}
    if path in known:
        digest, hashed = known[path], 0
    else:
        for attempt in range(2):
            started = time.time_ns()  # before the file is read: the racy rule's reference
            digest = hasher(path) if hasher is not None else hash_file(path).digest
            # like git: a file whose stat changed while it was read was hashed torn
            after = os.stat(path)
            if _same_file_state(st, after):
                break
            if attempt:
                raise _changed_error(path)
            st = after
        hashed = 1
        if cache is not None:
            cache.store([(path, st, digest, started)])
    entry = FileEntry(os.path.basename(path), st.st_size, digest, path)
    return Snapshot(digest, st.st_size, False, (entry,), hashed)


def _array_q(values):
    """``array('q', values)``."""
    import array

    return array.array("q", values)


def _snapshot_tree(root: str, cache, workers, hasher) -> Snapshot:
    skipped: list = []
    joined, stats, n = _scan(root, skipped)
    if not n:
        raise EmptyDirectoryError(f"{root}: the directory holds no files")
    if not joined.isascii():
        _check_names(root, joined)  # before anything is read or stored
    prefix = os.path.join(root, "")

    if os.sep == "/":
        def source(rel: str) -> str:
            return prefix + rel
    else:
        def source(rel: str) -> str:
            return prefix + rel.replace("/", os.sep)

    row = cache.tree_row(root) if cache is not None else None
    if (row is not None and row[0] == joined and row[1] == stats.tobytes()
            and row[2] is not None and len(row[2]) == 64 * n and row[3]):
        digests = row[2]  # unchanged: every entry matched, none was racy

        def build():
            return [FileEntry(rel, stats[4 * i], digests[64 * i:64 * i + 64], source(rel))
                    for i, rel in enumerate(joined.split("\0"))]

        return Snapshot(row[3], int(row[4]), True, hashed=0, file_count=n, build=build,
                        skipped=skipped)
    rels = joined.split("\0")
    cached = cache.load_tree(root) if row is not None else {}
    digest_of: dict[str, str] = {}
    todo: list[str] = []
    hashed_at: dict[str, int] = {}
    for i, rel in enumerate(rels):
        e = cached.get(rel)
        if (e is not None and e[0] == stats[4 * i] and e[1] == stats[4 * i + 1]
                and e[2] == stats[4 * i + 2] % (1 << 64) and e[3] == stats[4 * i + 3]):
            digest_of[rel] = e[4]
            hashed_at[rel] = e[5]
        else:
            todo.append(rel)
    started = time.time_ns()  # before any file is read: the racy rule's reference
    if todo:
        # several files hash on all cores at once: no read-ahead thread per file
        reader = None if len(todo) == 1 else False
        one_digest = hasher or (lambda p: hash_file(p, reader=reader).digest)
        index = {rel: i for i, rel in enumerate(rels)} if todo else {}

        def one(rel):
            # like git: a file whose stat changed while it was read was hashed torn; it is
            # read once more, and its new stat is what the tree and the cache record
            i, p = index[rel], source(rel)
            before = stats[4 * i:4 * i + 4].tolist()
            for attempt in range(2):
                digest = one_digest(p)
                after = os.stat(p)
                now = [after.st_size, after.st_mtime_ns, after.st_ino, after.st_ctime_ns]
                if (now[0], now[1], now[2] % (1 << 64), now[3]) == (
                        before[0], before[1], before[2] % (1 << 64), before[3]):
                    return rel, digest
                if attempt:
                    raise _changed_error(p)
                before = now
                stats[4 * i:4 * i + 4] = _array_q([now[0], now[1], now[2] - (1 << 64)
                                                  if now[2] >= 1 << 63 else now[2], now[3]])

        if len(todo) == 1:
            digest_of.update([one(todo[0])])
        else:
            k = workers or os.cpu_count() or 1
            digest_of.update(map_in_threads(one, todo, k, "ato-hash",
                                            chunksize=max(1, len(todo) // (k * 16))))
    files = [FileEntry(rel, stats[4 * i], digest_of[rel], source(rel))
             for i, rel in enumerate(rels)]
    files.sort(key=lambda f: f.path)
    digest = tree_digest((f.path, f.size, f.digest) for f in files)
    total = sum(f.size for f in files)
    if cache is not None:
        cache.store_tree(root, {rel: (stats[4 * i], stats[4 * i + 1], stats[4 * i + 2] % (1 << 64),
                                      stats[4 * i + 3], digest_of[rel],
                                      hashed_at.get(rel, started))
                                for i, rel in enumerate(rels)}, digest, total)
    return Snapshot(digest, total, True, files, len(todo), skipped=skipped)


# --------------------------------------------------------------------------- staging
#: Bytes the kernel copies per call while staging; the hashing side follows chunk by chunk.
STAGE_CHUNK = 64 << 20
_NO_KERNEL_COPY = frozenset(getattr(errno, n) for n in (
    "EXDEV", "ENOSYS", "EINVAL", "EOPNOTSUPP", "ENOTSUP", "EBADF", "ETXTBSY")
    if hasattr(errno, n))


class StagingError(ArtifactStoreError):
    """Copying a file into the store's temporary area failed, so there is nothing to hash
    (raised by :meth:`StagedCopy.commit` after :meth:`StagedCopy.copy` raised)."""


class StagedCopy:
    """A file being stored in two steps (:meth:`LocalStore.stage`): :meth:`copy` puts
    its bytes into a locked temporary file of the store, :meth:`commit` hashes that copy
    and renames it to its digest's place.

    ``commit`` may run in another thread while ``copy`` still runs: it hashes each chunk
    as soon as the kernel has copied it (the two overlap on two cores), and it is the
    only reader of the temporary file, which nobody else writes — the stored bytes are
    the hashed bytes, whatever happens to the source afterwards.  ``commit`` is called
    exactly once per staged copy, also after a failed ``copy`` (it then raises
    :class:`StagingError` and removes the temporary file), unless :meth:`cancel` gave the
    copy up; the temporary file stays locked until then, so ``ato store gc`` never collects it, and a process killed meanwhile
    leaves an unlocked file that gc removes.

    After ``copy``: ``size`` (bytes copied), ``source_stat`` (the source's ``stat`` before
    copying), ``started_ns`` (``time.time_ns()`` before copying: the stat cache's racy
    reference) and ``source_unchanged`` (the source's size, mtime, ctime, inode and device
    were the same after the copy, and exactly that many bytes were copied: only then may
    the digest be remembered for the source's path)."""

    def __init__(self, store: LocalStore, src, fd: int, tmp: str):
        self.store, self.path = store, tmp
        self.source = os.path.abspath(src.name if isinstance(src.name, str) else os.fsdecode(src.name))
        self._src, self._fd = src, fd
        self._cond = threading.Condition()
        self._copied = 0
        self._state = "copying"  # -> 'copied' | 'failed'
        self._error: BaseException | None = None
        self._synced: list = []
        self._sync_thread: threading.Thread | None = None
        self.size: int | None = None
        self.source_stat: os.stat_result | None = None
        self.started_ns: int | None = None
        self.source_unchanged = False

    def __repr__(self):
        return f"StagedCopy({self.source!r} -> {self.path!r}, size={self.size})"

    def cancel(self) -> None:
        """Give up instead of copying and committing (neither may be called afterwards):
        the temporary file is removed and its lock released."""
        _unlink(self.path)
        self._src.close()
        with self._cond:
            self._state, self._error = "failed", ArtifactStoreError("cancelled")
        os.close(self._fd)

    def commit_after_failure(self) -> None:
        """After :meth:`copy` raised, when no other thread will call :meth:`commit`:
        release the temporary file (already removed) and its lock."""
        with self._cond:
            if self._state != "failed":
                raise ArtifactStoreError(f"{self.path}: commit_after_failure() needs a failed copy")
        os.close(self._fd)

    def _progress(self, copied: int) -> None:
        with self._cond:
            self._copied = copied
            self._cond.notify_all()

    def copy(self) -> int:
        """Copy the whole source (to its end of file) into the temporary file and start
        writing it back to disk in a helper thread; returns the bytes copied.  The copy
        runs in the kernel (``os.copy_file_range``) where it can, else through one 4 MiB
        buffer.  The caller may overwrite the source once this returns.

        Errors: ``OSError`` from reading or writing (the temporary file is then removed)."""
        src, out = self._src.fileno(), self._fd
        try:
            before = os.fstat(src)
            self.source_stat, self.started_ns = before, time.time_ns()
            copied = 0
            kernel = hasattr(os, "copy_file_range") and stat.S_ISREG(before.st_mode)
            while kernel:
                try:
                    n = os.copy_file_range(src, out, STAGE_CHUNK, copied, copied)
                except OSError as e:
                    if e.errno not in _NO_KERNEL_COPY:
                        raise
                    kernel = False  # this kernel cannot copy between these files
                    break
                if not n:
                    break
                copied += n
                self._progress(copied)
            if not kernel:
                copied = self._copy_through_buffer(copied)
            after = os.fstat(src)
            self.size = copied
            self.source_unchanged = (copied == before.st_size
                                     and _same_file_state(before, after))
            self._sync_thread = threading.Thread(target=self._write_back, name="ato-sync",
                                                 daemon=True)
            self._sync_thread.start()
            with self._cond:
                self._state = "copied"
                self._cond.notify_all()
            return copied
        except BaseException as e:
            _unlink(self.path)
            with self._cond:
                self._state, self._error = "failed", e
                self._cond.notify_all()
            raise
        finally:
            self._src.close()

    def _copy_through_buffer(self, offset: int) -> int:
        buf = bytearray(COPY_BUFFER)
        mv = memoryview(buf)
        self._src.seek(offset)
        while True:
            n = self._src.readinto(mv)
            if not n:
                return offset
            done = 0
            while done < n:
                done += os.pwrite(self._fd, mv[done:n], offset + done) if hasattr(os, "pwrite") \
                    else self._write_at(mv[done:n], offset + done)
            offset += n
            self._progress(offset)

    def _write_at(self, data, offset: int) -> int:
        os.lseek(self._fd, offset, os.SEEK_SET)
        return os.write(self._fd, data)

    def _write_back(self) -> None:
        try:
            (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(self._fd)
        except BaseException as e:  # reported by commit
            self._synced.append(e)

    def commit(self, buffer_size: int = HASH_BUFFER, on_place=None, cancel=None) -> Blob:
        """Hash the copy (following :meth:`copy` while it runs), wait for it to be on disk
        and rename it to its digest's place — or drop it when an intact blob with that
        digest is already stored.  Returns its digest and size; ``on_place`` as for
        :meth:`LocalStore.put`.

        ``cancel``: a ``threading.Event``; once set, hashing stops at its next chunk with
        :class:`StagingError` (nothing placed).

        Errors: :class:`StagingError` when the copy failed or was cancelled; ``OSError``
        from reading or syncing.  The temporary file is gone afterwards either way."""
        import hashlib

        h = hashlib.sha256()
        buf = bytearray(buffer_size)
        mv = memoryview(buf)
        preadv = getattr(os, "preadv", None)
        fd = self._fd
        offset = 0
        try:
            while True:
                with self._cond:
                    while self._state == "copying" and self._copied <= offset:
                        self._cond.wait()
                    if self._state == "failed":
                        raise StagingError(f"{self.source}: copying it into {self.store.url} "
                                           f"failed: {self._error}") from self._error
                    limit, finished = self._copied, self._state == "copied"
                while offset < limit:
                    if cancel is not None and cancel.is_set():
                        raise StagingError(f"{self.source}: storing it into {self.store.url} "
                                           f"was cancelled")
                    want = min(buffer_size, limit - offset)
                    if preadv is not None:
                        n = preadv(fd, [mv[:want]], offset)
                    else:
                        data = os.pread(fd, want, offset)
                        n = len(data)
                        mv[:n] = data
                    if not n:
                        raise ArtifactStoreError(f"{self.path}: the temporary copy of "
                                                 f"{self.source} shrank while it was hashed")
                    h.update(mv[:n] if n != buffer_size else buf)
                    offset += n
                if finished and offset >= self.size:
                    break
            self._sync_thread.join()
            if self._synced:
                raise self._synced[0]
            if cancel is not None and cancel.is_set():
                raise StagingError(f"{self.source}: storing it into {self.store.url} was "
                                   f"cancelled")
            return self.store._place(self.path, Blob(h.hexdigest(), self.size), on_place)
        except BaseException:
            _unlink(self.path)
            raise
        finally:
            if self._sync_thread is not None:
                self._sync_thread.join()
            os.close(fd)  # releases the lock


# --------------------------------------------------------------------------- the seam
class ArtifactStore(Protocol):
    """An artifact-store backend, returned by ``ato_register_artifact_stores``.

    ``PLUGIN_NAME`` names it, ``schemes`` are the URL schemes it serves, and
    ``open(url)`` returns an object with the methods of :class:`LocalStore`
    (``url``, ``put``, ``has``, ``path``, ``verify``, ``delete``, ``blobs``, ``clean_temp``;
    optionally ``temp_files``, which ``ato store du`` and ``gc`` use to report the bytes in
    temporary files).
    """

    PLUGIN_NAME: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def open(cls, url: str):
        """The store at ``url``; raise :class:`ArtifactStoreError` if it cannot be used."""


def _hex(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ArtifactStoreError(f"{digest!r} is not a SHA-256 digest (64 lower-case hex digits)")
    return digest


class LocalStore:
    """A content-addressed directory: blob ``abcd…`` lives at ``<root>/ab/cd…``, read-only;
    temporary files live in ``<root>/tmp``.  Several processes (and machines sharing the
    directory) may write to it at once."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.abspath(os.fspath(root))
        self.url = "file://" + self.root
        self._tmp = os.path.join(self.root, "tmp")

    def __repr__(self):
        return f"LocalStore({self.root!r})"

    def is_store(self) -> bool:
        """Whether :attr:`root` is a store's directory: it holds something only a store
        holds (a ``tmp``, ``checkouts`` or ``databases`` folder, or a two-hex-digit blob
        folder).  An empty directory, or one holding other files, is not."""
        try:
            with os.scandir(self.root) as it:
                return any(e.is_dir(follow_symlinks=False) and (
                    e.name in ("tmp", "checkouts", "databases")
                    or (len(e.name) == 2 and all(c in "0123456789abcdef" for c in e.name)))
                    for e in it)
        except OSError:
            return False

    def path(self, digest: str) -> str:
        """Where blob ``digest`` lives (whether or not it exists)."""
        digest = _hex(digest)
        return os.path.join(self.root, digest[:2], digest[2:])

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def put(self, source: str | os.PathLike, expected: str | None = None,
            on_place=None) -> Blob:
        """Store the file ``source``; returns its digest and size.

        With ``expected`` (a digest from the stat cache) and that blob already present and
        intact, nothing is read.  A present blob whose stat says it was tampered with (its
        size differs from the source's, or it is writable although blobs are stored
        read-only) is re-hashed, and replaced when it no longer matches its digest.  Otherwise the file is copied while hashed into a temporary file,
        synced and renamed to its digest's place (atomic).

        ``on_place(digest, found)``, when given, is called once bytes were renamed into a
        blob's place: ``found`` is ``'absent'`` (no blob was there) or ``'damaged'`` (one
        was, of another size or no longer hashing to its digest) — what a registry needs to
        tell a repair from a first store.  It is not called when an intact blob was kept.
        """
        if expected is not None and self.has(expected):
            target = self.path(expected)
            try:
                size = os.path.getsize(source)
            except OSError:  # the source may be gone: the digest is all that is needed
                size = None
            if _intact(target, expected, size):
                _touch(target)
                return Blob(expected, os.path.getsize(target))
            # a damaged blob: stored again below from the source, which still hashes to it
        os.makedirs(self._tmp, exist_ok=True)
        with open(source, "rb", buffering=0) as src:
            fd, tmp = self._temp_file()
            try:
                with open(fd, "wb", buffering=0) as dst:  # closing it releases the lock
                    blob = copy_file_hashing(src, dst)
                    os.fsync(dst.fileno())
                    return self._place(tmp, blob, on_place)
            except BaseException:
                _unlink(tmp)
                raise

    def _temp_file(self) -> tuple[int, str]:
        """A new temporary file in ``<root>/tmp``, open for reading and writing and
        locked (``flock``) until its descriptor is closed: :meth:`clean_temp` never removes
        a locked one, whatever its age.  A file that garbage collection removed between
        its creation and the lock (no link left) is replaced by a new one."""
        os.makedirs(self._tmp, exist_ok=True)
        while True:
            tmp = os.path.join(self._tmp,
                               f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o644)
            if _lock(fd, blocking=True) and os.fstat(fd).st_nlink == 0:
                os.close(fd)  # collected before we held it: take another name
                continue
            return fd, tmp

    def _place(self, tmp: str, blob: Blob, on_place=None) -> Blob:
        """Rename the synced temporary file ``tmp`` holding ``blob`` to its digest's place
        (read-only), or drop it when an intact copy is already there (deduplication);
        ``on_place`` as for :meth:`put`."""
        target = self.path(blob.digest)
        present = os.path.isfile(target)
        if present and _intact(target, blob.digest, blob.size):
            os.unlink(tmp)
            _touch(target)
            return blob
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.utime(tmp)  # fresh: gc spares unrecorded blobs younger than its grace period
        os.replace(tmp, target)
        _fsync_dir(directory)
        if on_place is not None:
            on_place(blob.digest, "damaged" if present else "absent")
        return blob

    def stage(self, source: str | os.PathLike) -> StagedCopy:
        """Begin storing the file ``source`` in two steps: copy it now, hash it later.

        Returns a :class:`StagedCopy` whose temporary file in ``<root>/tmp`` is already
        created and locked; its :meth:`~StagedCopy.copy` (the caller, who must not write the
        source meanwhile) copies the bytes in the kernel, and its :meth:`~StagedCopy.commit`
        (any thread, even while the copy runs) hashes the *copy*, syncs it and renames it to
        its digest's place, so what is stored is exactly what was hashed.

        Errors: :class:`MissingPathError` when ``source`` does not exist; ``OSError`` from
        opening it."""
        try:
            src = open(source, "rb", buffering=0)
        except FileNotFoundError:
            raise MissingPathError(f"{os.fspath(source)}: no such file") from None
        try:
            fd, tmp = self._temp_file()
        except BaseException:
            src.close()
            raise
        return StagedCopy(self, src, fd, tmp)

    def verify(self, digest: str, size: int | None = None, quick: bool = False) -> str:
        """``'ok'``, ``'missing'`` or ``'modified'``.

        The blob is re-hashed: bytes changed in place are found even when its size,
        permissions and times are unchanged.  ``quick=True`` only compares its size with
        ``size`` (no read): it finds a removed, truncated or grown blob, not an edit that
        keeps the size."""
        target = self.path(digest)
        try:
            if size is not None and os.path.getsize(target) != size:
                return "modified"
            if quick:
                return "ok"
            return "ok" if hash_file(target, reader=False).digest == digest else "modified"
        except FileNotFoundError:
            return "missing"

    def delete(self, digest: str) -> int:
        """Remove a blob; returns the bytes freed (0 when it was absent)."""
        target = self.path(digest)
        try:
            size = os.path.getsize(target)
            os.unlink(target)
        except FileNotFoundError:
            return 0
        return size

    def blobs(self) -> Iterator[Blob]:
        """Every blob present, as ``(digest, size)``."""
        if not os.path.isdir(self.root):
            return
        for prefix in sorted(os.listdir(self.root)):
            if len(prefix) != 2 or any(c not in "0123456789abcdef" for c in prefix):
                continue
            with os.scandir(os.path.join(self.root, prefix)) as it:
                for entry in it:
                    if len(entry.name) == 62 and entry.is_file():
                        yield Blob(prefix + entry.name, entry.stat().st_size)

    def temp_files(self) -> list[TempFile]:
        """Every file in ``<root>/tmp`` — copies being written and those killed writers
        left — whatever its age or lock, sorted by name (``[]`` when there is none).  It
        only looks (no lock is taken): what :meth:`clean_temp` would spare is the part
        younger than its ``older_than`` plus the part a live writer holds."""
        if not os.path.isdir(self._tmp):
            return []
        out = []
        with os.scandir(self._tmp) as it:
            for entry in it:
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # renamed into place or removed meanwhile
                out.append(TempFile(entry.name, st.st_size, st.st_mtime))
        return sorted(out)

    def clean_temp(self, older_than: float = TEMP_GRACE_S, dry_run: bool = True) -> list[Blob]:
        """Temporary files left by killed writers, as ``Blob(file name, size)``; removed
        unless ``dry_run``.  A file is left alone while it is younger than ``older_than``
        seconds or while a live process holds its lock (every writer locks its temporary
        file with ``flock`` until it is renamed or removed, and the kernel releases the
        lock when the process dies, even by ``kill -9``); so a copy that a background
        registration is still hashing is never collected, however old."""
        if not os.path.isdir(self._tmp):
            return []
        limit = time.time() - older_than
        out = []
        with os.scandir(self._tmp) as it:
            entries = list(it)
        for entry in entries:
            try:
                st = entry.stat()
                if st.st_mtime >= limit:
                    continue
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
            try:
                if not _lock(fd, blocking=False):
                    continue  # a live writer holds it: a copy still being hashed
                out.append(Blob(entry.name, st.st_size))
                if not dry_run:
                    _unlink(entry.path)  # under the lock: no writer can take it now
            finally:
                os.close(fd)
        return out


def _intact(target: str, digest: str, size: int | None) -> bool:
    """Whether the stored blob ``target`` still holds ``digest``: trusted from its stat (the
    expected ``size`` unless ``None``, read-only as stored), else re-hashed (and made read-only again when
    it still matches)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False
    if size in (None, st.st_size) and not st.st_mode & 0o222:
        return True
    if size not in (None, st.st_size) or hash_file(target).digest != digest:
        return False
    try:
        os.chmod(target, 0o444)
    except OSError:
        pass
    return True


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # read-only shared store: the blob is there, that is what matters


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _lock(fd: int, blocking: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd``; ``False`` when another open file holds it
    (``blocking=False``).  Without ``fcntl`` (Windows) nothing is locked: ``True``."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without locks: the age rule alone applies
    return True


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStoreBackend:
    """The built-in store: ``file:///abs/dir`` or a plain path."""

    PLUGIN_NAME = "local"
    schemes = ("file",)

    @classmethod
    def open(cls, url: str) -> LocalStore:
        root = url[len("file://"):] if url.startswith("file://") else url
        if not root:
            raise ArtifactStoreError(f"store URL {url!r} names no directory")
        return LocalStore(root)


def url_scheme(url: str) -> str:
    """``'file'`` for a plain path (including ``C:\\…``), else the part before ``://``."""
    head, sep, _ = str(url).partition("://")
    return head.lower() if sep and len(head) > 1 else "file"


def open_store(url: str):
    """The store for ``url``, from the plugin serving its scheme."""
    if url_scheme(url) == "file":
        return LocalStoreBackend.open(str(url))
    from ato.plugins.manager import store_for_url

    return store_for_url(url).open(str(url))


__all__ = ["ArtifactStore", "ArtifactStoreError", "BadFileNameError", "Blob",
           "ChangedWhileHashingError", "EmptyDirectoryError", "FileEntry", "LocalStore",
           "LocalStoreBackend", "Snapshot", "StagedCopy", "StagingError", "StatCache", "TempFile",
           "copy_hashing", "hash_file", "open_store", "snapshot", "tree_digest", "url_scheme",
           "walk_files"]
