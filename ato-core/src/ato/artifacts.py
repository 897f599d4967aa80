"""Content addressing for artifacts: SHA-256 hashing, a racy-safe stat cache and the
artifact-store seam.

An *artifact store* keeps blobs by the SHA-256 of their bytes.  Stores are plugins chosen
by URL scheme (``ato_register_artifact_stores``); core ships :class:`LocalStore`, a
directory laid out as ``<root>/ab/cdef…`` (the first two hex digits, then the other 62),
which is what a plain path or a ``file://`` URL opens.

Guarantees of :meth:`LocalStore.put`:

- the bytes are hashed while they are copied (one read of the source), into a temporary
  file inside the store, which is ``fsync``-ed and renamed into place: a process killed at
  any moment leaves either no blob or a complete one (plus, at worst, a temporary file that
  ``ato store gc`` removes);
- identical content is stored once; memory stays bounded (two 4 MiB buffers) whatever the
  file size.

The :class:`StatCache` remembers ``(size, mtime_ns, inode, ctime_ns) -> digest`` per path so
unchanged files are not read again.  Like git's index it distrusts an entry whose file was
modified within the file system's timestamp granularity of the moment hashing started (a
"racy" entry): such a file is hashed again next time, so an edit that keeps size and mtime
can never be mistaken for unchanged content.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import ClassVar, NamedTuple, Protocol

from ato.errors import AtoError

# hashlib, sqlite3, array and concurrent.futures are imported where used: this module is
# imported with the plugin manager (for the ArtifactStore interface), which must stay light.

#: Read size when only hashing (bytes).
HASH_BUFFER = 1 << 20
#: Chunk size when copying and hashing at once (bytes); two such buffers are in flight.
COPY_BUFFER = 4 << 20
#: A cache entry is trusted only when the file's mtime is this much older than the moment
#: its hashing started (nanoseconds): the kernel stamps files with a coarse clock.
RACY_WINDOW_NS = 100_000_000
#: The same for file systems with whole-second timestamps (FAT keeps 2 s).
RACY_WINDOW_COARSE_NS = 2_000_000_000
#: Temporary files younger than this are never removed by garbage collection (seconds).
TEMP_GRACE_S = 3600.0


class ArtifactStoreError(AtoError, OSError):
    """A store could not be opened, or a blob is missing or does not match its digest."""


class MissingPathError(ArtifactStoreError, FileNotFoundError):
    """The file or directory to hash or store does not exist."""


class Blob(NamedTuple):
    """One stored object: its SHA-256 (64 lower-case hex digits) and size in bytes."""

    digest: str
    size: int


# --------------------------------------------------------------------------- hashing
def hash_file(path: str | os.PathLike, buffer_size: int = HASH_BUFFER) -> Blob:
    """SHA-256 and size of a file, read in ``buffer_size`` chunks (memory stays bounded;
    ``hashlib`` releases the GIL, so several files hash in parallel threads)."""
    import hashlib

    with open(path, "rb", buffering=0) as f:
        first = f.read(buffer_size)
        h = hashlib.sha256(first)
        size = len(first)
        if size < buffer_size:  # a small file: one read, no buffer to allocate
            return Blob(h.hexdigest(), size)
        buf = bytearray(buffer_size)
        mv = memoryview(buf)
        while True:
            n = f.readinto(mv)
            if not n:
                break
            h.update(mv[:n])
            size += n
    return Blob(h.hexdigest(), size)


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


def tree_digest(entries) -> str:
    """The digest of a directory: SHA-256 over its files sorted by relative path, one line
    ``<path>\\0<size>\\0<sha256>\\n`` each (paths use ``/`` on every operating system)."""
    import hashlib

    text = "".join([f"{path}\0{size}\0{digest}\n" for path, size, digest in sorted(entries)])
    return hashlib.sha256(text.encode()).hexdigest()


def walk_files(root: str) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file under ``root`` as ``(relative posix path, absolute path, stat)``,
    sorted by relative path.  Symbolic links to files are followed; links to directories
    are not (no cycles)."""
    out = []
    stack = [("", root)]
    while stack:
        rel, directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((name, entry.path))
                elif entry.is_file():
                    out.append((name, entry.path, entry.stat()))
    out.sort(key=lambda e: e[0])
    return out


# --------------------------------------------------------------------------- stat cache
def default_cache_dir() -> str:
    """``$ATO_CACHE_DIR``, else ``$XDG_CACHE_HOME/ato``, else ``~/.cache/ato``."""
    explicit = os.environ.get("ATO_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ato")


def _racy(st: os.stat_result, hashed_ns: int) -> bool:
    window = RACY_WINDOW_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
    return st.st_mtime_ns + window >= hashed_ns or st.st_ctime_ns + window >= hashed_ns


class StatCache:
    """``path -> digest`` for files whose ``(size, mtime_ns, inode, ctime_ns)`` did not
    change since they were hashed; one SQLite file per user (``default_cache_dir()``),
    shared safely by concurrent processes.  Losing it only costs re-hashing."""

    def __init__(self, path: str | None = None):
        if path is None:
            path = os.path.join(default_cache_dir(), "statcache.sqlite")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._local = threading.local()

    def _conn(self):
        import sqlite3

        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # another process is switching it; WAL is persistent
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, size INTEGER, "
                         "mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER, digest TEXT, "
                         "hashed_ns INTEGER) WITHOUT ROWID")
            # one row per directory, read in one go (like git's index) for large trees:
            # relative paths joined by NUL, digests concatenated, and five signed 64-bit
            # integers per file (size, mtime_ns, inode, ctime_ns, hashed_ns)
            conn.execute("CREATE TABLE IF NOT EXISTS tree (root TEXT PRIMARY KEY, paths TEXT, "
                         "digests TEXT, nums BLOB) WITHOUT ROWID")
            self._local.conn = conn
        return conn

    def load_tree(self, root: str) -> dict:
        """``{relative path: (size, mtime_ns, inode, ctime_ns, digest, hashed_ns)}`` remembered
        for the directory ``root`` (``{}`` when none, or when the row is inconsistent)."""
        row = self._conn().execute("SELECT paths, digests, nums FROM tree WHERE root = ?",
                                   (root,)).fetchone()
        if row is None or not row[0]:
            return {}
        import array

        paths = row[0].split("\0")
        digests = row[1] or ""
        nums = array.array("q")
        nums.frombytes(row[2] or b"")
        n = len(paths)
        if len(digests) != 64 * n or len(nums) != 5 * n:
            return {}
        return {p: (nums[5 * i], nums[5 * i + 1], nums[5 * i + 2] % (1 << 64), nums[5 * i + 3],
                    digests[64 * i:64 * i + 64], nums[5 * i + 4]) for i, p in enumerate(paths)}

    def store_tree(self, root: str, entries: dict) -> None:
        """Remember ``{relative path: (size, mtime_ns, inode, ctime_ns, digest, hashed_ns)}``
        for the directory ``root``, replacing what was there."""
        import array

        paths = list(entries)
        nums = array.array("q")
        for p in paths:
            size, mtime, ino, ctime, _digest, hashed = entries[p]
            nums.extend((size, mtime, ino - (1 << 64) if ino >= 1 << 63 else ino, ctime, hashed))
        row = (root, "\0".join(paths), "".join(entries[p][4] for p in paths), nums.tobytes())
        self._write(lambda conn: conn.execute("INSERT OR REPLACE INTO tree VALUES (?, ?, ?, ?)",
                                              row))

    def _write(self, work) -> None:
        import sqlite3

        conn = self._conn()
        for attempt in range(50):
            try:
                conn.execute("BEGIN IMMEDIATE")
                work(conn)
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if attempt == 49:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def lookup(self, files: list[tuple[str, os.stat_result]]) -> dict[str, str]:
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

    def store(self, entries: list[tuple[str, os.stat_result, str, int]]) -> None:
        """Remember ``(absolute path, stat taken before hashing, digest, time_ns when
        hashing started)``."""
        if not entries:
            return
        rows = [(p, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, d, t)
                for p, st, d, t in entries]
        self._write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?, ?)", rows))


# --------------------------------------------------------------------------- digests of paths
class FileEntry(NamedTuple):
    """One file of a version: relative posix path, size in bytes, SHA-256, absolute path."""

    path: str
    size: int
    digest: str
    source: str


class Snapshot(NamedTuple):
    """The content of a file or directory: ``digest`` is the file's SHA-256 for a file and
    :func:`tree_digest` for a directory; ``files`` are sorted by path; ``hashed`` counts the
    files actually read (the others came from the stat cache)."""

    digest: str
    size: int
    is_dir: bool
    files: tuple[FileEntry, ...]
    hashed: int


def snapshot(path: str | os.PathLike, cache: StatCache | None = None,
             workers: int | None = None, hasher=None) -> Snapshot:
    """Hash a file or a directory tree, reusing ``cache`` for unchanged files; the files of
    a directory are hashed by ``workers`` threads (default: one per CPU).

    ``hasher(absolute path) -> digest`` replaces plain hashing of the files the cache does
    not know, e.g. ``lambda p: store.put(p).digest`` to store while hashing (one read)."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MissingPathError(f"{path}: no such file or directory") from None
    if stat.S_ISDIR(st.st_mode):
        listing = walk_files(path)
        if not listing:
            raise ArtifactStoreError(f"{path}: the directory holds no files")
        is_dir = True
    else:
        listing = [(os.path.basename(path), path, st)]
        is_dir = False
    tree: dict = {}
    if cache is None:
        known = {}
    elif is_dir:
        tree = cache.load_tree(path)
        known = {}
        for rel, a, s in listing:
            e = tree.get(rel)
            if (e is not None and e[0] == s.st_size and e[1] == s.st_mtime_ns
                    and e[2] == s.st_ino and e[3] == s.st_ctime_ns and not _racy(s, e[5])):
                known[a] = e[4]
    else:
        known = cache.lookup([(a, s) for _, a, s in listing])
    todo = [(a, s) for _, a, s in listing if a not in known]
    fresh: dict[str, str] = {}
    started = time.time_ns()  # before any file is read: the racy rule's reference
    if todo:

        digest_of = hasher or (lambda p: hash_file(p).digest)

        def one(item):
            return item[0], digest_of(item[0])

        if len(todo) == 1:
            fresh = dict([one(todo[0])])
        else:
            from concurrent.futures import ThreadPoolExecutor

            n = workers or os.cpu_count() or 1
            with ThreadPoolExecutor(n, thread_name_prefix="ato-hash") as pool:
                fresh = dict(pool.map(one, todo, chunksize=max(1, len(todo) // (n * 16))))
        if cache is not None and not is_dir:
            cache.store([(a, s, fresh[a], started) for a, s in todo])
    files = tuple([FileEntry(rel, s.st_size, known.get(a) or fresh[a], a)
                   for rel, a, s in listing])
    if cache is not None and is_dir and (todo or len(tree) != len(listing)):
        cache.store_tree(path, {rel: (s.st_size, s.st_mtime_ns, s.st_ino, s.st_ctime_ns,
                                      f.digest, tree[rel][5] if f.source in known else started)
                                for (rel, _a, s), f in zip(listing, files)})
    if is_dir:
        digest = tree_digest((f.path, f.size, f.digest) for f in files)
    else:
        digest = files[0].digest
    return Snapshot(digest, sum(f.size for f in files), is_dir, files, len(todo))


# --------------------------------------------------------------------------- the seam
class ArtifactStore(Protocol):
    """An artifact-store backend, returned by ``ato_register_artifact_stores``.

    ``PLUGIN_NAME`` names it, ``schemes`` are the URL schemes it serves, and
    ``open(url)`` returns an object with the methods of :class:`LocalStore`
    (``url``, ``put``, ``has``, ``path``, ``verify``, ``delete``, ``blobs``, ``clean_temp``).
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

    def path(self, digest: str) -> str:
        """Where blob ``digest`` lives (whether or not it exists)."""
        digest = _hex(digest)
        return os.path.join(self.root, digest[:2], digest[2:])

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def put(self, source: str | os.PathLike, expected: str | None = None) -> Blob:
        """Store the file ``source``; returns its digest and size.

        With ``expected`` (a digest from the stat cache) and that blob already present,
        nothing is read.  Otherwise the file is copied while hashed into a temporary file,
        synced and renamed to its digest's place (atomic).
        """
        if expected is not None and self.has(expected):
            target = self.path(expected)
            _touch(target)
            return Blob(expected, os.path.getsize(target))
        os.makedirs(self._tmp, exist_ok=True)
        tmp = os.path.join(self._tmp, f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
        try:
            with open(source, "rb", buffering=0) as src, open(tmp, "wb", buffering=0) as dst:
                blob = copy_hashing(src, dst)
                os.fsync(dst.fileno())
            target = self.path(blob.digest)
            if os.path.isfile(target):
                os.unlink(tmp)
                _touch(target)
                return blob
            directory = os.path.dirname(target)
            os.makedirs(directory, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
            _fsync_dir(directory)
            return blob
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def verify(self, digest: str, size: int | None = None) -> str:
        """``'ok'``, ``'missing'`` or ``'modified'`` (content no longer hashes to ``digest``)."""
        target = self.path(digest)
        try:
            if size is not None and os.path.getsize(target) != size:
                return "modified"
            return "ok" if hash_file(target).digest == digest else "modified"
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

    def clean_temp(self, older_than: float = TEMP_GRACE_S, dry_run: bool = True) -> list[Blob]:
        """Temporary files left by killed writers and older than ``older_than`` seconds,
        as ``Blob(file name, size)``; removed unless ``dry_run``."""
        if not os.path.isdir(self._tmp):
            return []
        limit = time.time() - older_than
        out = []
        with os.scandir(self._tmp) as it:
            for entry in it:
                st = entry.stat()
                if st.st_mtime < limit:
                    out.append(Blob(entry.name, st.st_size))
                    if not dry_run:
                        os.unlink(entry.path)
        return out


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # read-only shared store: the blob is there, that is what matters


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


__all__ = ["ArtifactStore", "ArtifactStoreError", "Blob", "FileEntry", "LocalStore",
           "LocalStoreBackend", "Snapshot", "StatCache", "copy_hashing", "hash_file",
           "open_store", "snapshot", "tree_digest", "url_scheme", "walk_files"]
