"""The artifact-store seam: hashing, the racy-safe stat cache, the local content-addressed
store and store plugins chosen by URL scheme."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

import ato.artifacts as artifacts
from ato.artifacts import (
    KERNEL_COPY_MIN,
    RACY_WINDOW_COARSE_NS,
    RACY_WINDOW_NS,
    ArtifactStoreError,
    LocalStore,
    StatCache,
    copy_file_hashing,
    copy_hashing,
    hash_file,
    open_store,
    snapshot,
    tree_digest,
    url_scheme,
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "cache"))


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _age(path, seconds=10):
    """Make a file look modified ``seconds`` ago (garbage-collection grace periods)."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def _settle():
    """Wait out the racy window, so that files written so far can be trusted from the
    cache (their mtime and ctime are then older than the next hashing's start)."""
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.05)


class TestHashing:
    def test_hash_file_matches_hashlib_across_buffer_boundaries(self, tmp_path):
        """Sizes around the buffer size hash exactly like hashlib over the whole bytes."""
        for size in (0, 1, 4095, 4096, 4097, 3 * 4096 + 5):
            data = os.urandom(size)
            blob = hash_file(_write(tmp_path / f"f{size}", data), buffer_size=4096)
            assert blob.digest == hashlib.sha256(data).hexdigest()
            assert blob.size == size

    @pytest.mark.parametrize("reader", [False, True, None])
    def test_both_readers_hash_every_byte_once(self, tmp_path, reader):
        """One thread, the read-ahead thread and the automatic choice give hashlib's digest
        at sizes around the buffer size, where the last read is full, short or empty."""
        for size in (4096, 4097, 2 * 4096, 7 * 4096 + 1, 64 * 4096):
            data = os.urandom(size)
            blob = hash_file(_write(tmp_path / f"f{size}", data), buffer_size=4096,
                             reader=reader)
            assert blob == (hashlib.sha256(data).hexdigest(), size)

    def test_a_read_error_in_the_reader_thread_reaches_the_caller(self, tmp_path, monkeypatch):
        """An OSError raised while the second thread reads is raised by hash_file, and the
        thread is gone afterwards."""
        import threading

        path = _write(tmp_path / "f", os.urandom(10 * 4096))
        real_open = open
        calls = []

        class Failing(io.FileIO):
            def readinto(self, b):
                calls.append(threading.current_thread().name)
                if len(calls) == 3:
                    raise OSError(5, "Input/output error")
                return super().readinto(b)

        def fake_open(file, mode="r", *args, **kwargs):
            return Failing(file, "rb") if file == path and mode == "rb" else real_open(
                file, mode, *args, **kwargs)

        monkeypatch.setattr("builtins.open", fake_open)
        with pytest.raises(OSError, match="Input/output error"):
            hash_file(path, buffer_size=4096, reader=True)
        assert "ato-read" in calls
        assert not any(t.name == "ato-read" for t in threading.enumerate())

    def test_walk_order_and_links(self, tmp_path):
        """The walk lists regular files (and links to files) of every subdirectory, never
        a directory reached through a link; its path list is what the stat cache keys."""
        from ato.artifacts import _scan

        root = tmp_path / "d"
        for rel in ("b.txt", "a/x.bin", "a/deeper/y.bin", "c/z.bin"):
            _write(root / rel, rel.encode())
        os.symlink(root / "b.txt", root / "link-to-file")
        os.symlink(root / "a", root / "link-to-dir")
        joined, stats, n = _scan(str(root))
        paths = joined.split("\0")
        assert n == len(paths) == 5 and len(stats) == 4 * n
        assert sorted(paths) == ["a/deeper/y.bin", "a/x.bin", "b.txt", "c/z.bin", "link-to-file"]
        assert stats[4 * paths.index("a/x.bin")] == len(b"a/x.bin")
        snap = snapshot(root)
        assert [f.path for f in snap.files] == sorted(paths)

    def test_copy_hashing_copies_and_hashes_in_one_pass(self):
        """The copy is byte-identical and the digest is that of the bytes copied."""
        data = os.urandom(10 * 1024 + 17)
        out = io.BytesIO()
        blob = copy_hashing(io.BytesIO(data), out, buffer_size=1024)
        assert out.getvalue() == data
        assert blob.digest == hashlib.sha256(data).hexdigest() and blob.size == len(data)

    def test_tree_digest_ignores_listing_order(self):
        """The digest depends on the sorted (path, size, digest) list only."""
        entries = [("b/x", 1, "1" * 64), ("a", 2, "2" * 64)]
        assert tree_digest(entries) == tree_digest(list(reversed(entries)))
        assert tree_digest(entries) != tree_digest([("b/x", 1, "1" * 64)])

    def test_directory_snapshot_uses_posix_relative_paths(self, tmp_path):
        """Nested files are listed as 'sub/dir/file', sorted, with their own digests."""
        _write(tmp_path / "d" / "z.txt", b"z")
        _write(tmp_path / "d" / "sub" / "dir" / "a.bin", b"aa")
        snap = snapshot(tmp_path / "d")
        assert [f.path for f in snap.files] == ["sub/dir/a.bin", "z.txt"]
        assert snap.is_dir and snap.size == 3
        assert snap.digest == tree_digest([("sub/dir/a.bin", 2, hashlib.sha256(b"aa").hexdigest()),
                                           ("z.txt", 1, hashlib.sha256(b"z").hexdigest())])

    def test_missing_path_and_empty_directory_are_clear_errors(self, tmp_path):
        """A path that does not exist, or holds no file, is named in the error."""
        with pytest.raises(ArtifactStoreError, match="nope: no such file or directory"):
            snapshot(tmp_path / "nope")
        (tmp_path / "empty").mkdir()
        with pytest.raises(ArtifactStoreError, match="empty: the directory holds no files"):
            snapshot(tmp_path / "empty")


class TestKernelCopy:
    """``copy_file_hashing``: the kernel copies while a thread hashes the source; any sign
    that the source changed meanwhile falls back to the one-pass copy."""

    @pytest.fixture
    def big(self, tmp_path):
        data = os.urandom(KERNEL_COPY_MIN + 12_345)
        path = _write(tmp_path / "big.bin", data)
        _age(path)
        return path, data

    def _copy(self, src, dst):
        with open(src, "rb", buffering=0) as s, open(dst, "wb", buffering=0) as d:
            return copy_file_hashing(s, d)

    def test_large_file_takes_the_kernel_path(self, big, tmp_path, monkeypatch):
        path, data = big
        monkeypatch.setattr(artifacts, "copy_hashing", None)  # would fail if called
        blob = self._copy(path, tmp_path / "out")
        assert blob == (hashlib.sha256(data).hexdigest(), len(data))
        assert (tmp_path / "out").read_bytes() == data

    def test_source_written_during_the_copy_falls_back(self, big, tmp_path, monkeypatch):
        """The hashed bytes are always the stored bytes, even when someone writes the
        source while the kernel copies it."""
        path, data = big
        real = os.copy_file_range
        edited = []

        def copy_and_edit(*args):
            if not edited:
                with open(path, "r+b") as f:
                    f.seek(100)
                    f.write(b"EDITED")
                edited.append(True)
            return real(*args)

        monkeypatch.setattr(os, "copy_file_range", copy_and_edit)
        blob = self._copy(path, tmp_path / "out")
        stored = (tmp_path / "out").read_bytes()
        assert blob.digest == hashlib.sha256(stored).hexdigest() and stored == path.read_bytes()
        assert stored[100:106] == b"EDITED" and blob.size == len(data)

    def test_a_kernel_that_cannot_copy_falls_back(self, big, tmp_path, monkeypatch):
        import errno

        def refuse(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse)
        path, data = big
        blob = self._copy(path, tmp_path / "out")
        assert blob.digest == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "out").read_bytes() == data

    def test_a_just_written_file_waits_out_the_racy_window(self, tmp_path, monkeypatch):
        data = os.urandom(KERNEL_COPY_MIN)
        path = _write(tmp_path / "fresh.bin", data)
        monkeypatch.setattr(artifacts, "copy_hashing", None)
        start = time.time_ns()
        blob = self._copy(path, tmp_path / "out")
        assert blob.digest == hashlib.sha256(data).hexdigest()
        assert time.time_ns() - os.stat(path).st_mtime_ns >= RACY_WINDOW_NS
        assert time.time_ns() - start < 5 * 10**9

    def test_store_put_uses_it(self, big, tmp_path):
        path, data = big
        blob = LocalStore(tmp_path / "store").put(path)
        assert blob.digest == hashlib.sha256(data).hexdigest()
        assert hash_file(LocalStore(tmp_path / "store").path(blob.digest)) == blob


class TestStatCache:
    def test_unchanged_files_are_not_read_again(self, tmp_path):
        """The second snapshot of an old, unchanged tree hashes nothing."""
        for i in range(5):
            _write(tmp_path / "t" / f"{i}.bin", os.urandom(100))
        _settle()
        cache = StatCache()
        first = snapshot(tmp_path / "t", cache)
        second = snapshot(tmp_path / "t", cache)
        assert (first.hashed, second.hashed) == (5, 0)
        assert first.digest == second.digest

    def test_edited_file_is_hashed_again(self, tmp_path):
        """Only the file whose size or times changed is re-read, and the digest moves."""
        for i in range(3):
            _write(tmp_path / "t" / f"{i}.bin", b"x" * 10)
        _settle()
        cache = StatCache()
        before = snapshot(tmp_path / "t", cache)
        _write(tmp_path / "t" / "1.bin", b"y" * 11)
        _settle()
        after = snapshot(tmp_path / "t", cache)
        assert after.hashed == 1 and after.digest != before.digest

    def test_same_size_same_mtime_edit_is_caught(self, tmp_path):
        """An edit that restores size and mtime still changes ctime: re-hashed."""
        f = _write(tmp_path / "f.bin", b"a" * 100)
        _settle()
        cache = StatCache()
        snapshot(f, cache)
        old = os.stat(f)
        f.write_bytes(b"b" * 100)
        os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
        _settle()
        again = snapshot(f, cache)
        assert again.hashed == 1 and again.digest == hashlib.sha256(b"b" * 100).hexdigest()

    def test_racy_entry_is_not_trusted(self, tmp_path):
        """An entry written when the file was modified just before hashing started (within
        the timestamp granularity) is ignored, like git's racy-clean rule."""
        f = _write(tmp_path / "f.bin", b"data")
        st = os.stat(f)
        cache = StatCache()
        cache.store([(str(f), st, "0" * 64, st.st_mtime_ns + 1_000)])  # hashed 1 µs later
        assert cache.lookup([(str(f), st)]) == {}
        cache.store([(str(f), st, "0" * 64, st.st_mtime_ns + 5 * 10**9)])  # 5 s later
        assert cache.lookup([(str(f), st)]) == {str(f): "0" * 64}

    def test_whole_second_timestamps_get_a_two_second_window(self, tmp_path):
        """On file systems with whole-second mtimes, an entry hashed 1.5 s after the
        mtime is still racy; 2.5 s after it is trusted."""
        f = _write(tmp_path / "f.bin", b"data")
        whole = (os.stat(f).st_mtime_ns // 10**9 - 100) * 10**9
        os.utime(f, ns=(whole, whole))
        st = os.stat(f)
        cache = StatCache()
        cache.store([(str(f), st, "1" * 64, whole + 1_500_000_000)])
        if st.st_ctime_ns + RACY_WINDOW_COARSE_NS < whole + 1_500_000_000:
            pytest.skip("ctime is newer than the constructed mtime")
        assert cache.lookup([(str(f), st)]) == {}

    def test_fresh_file_is_rehashed_until_it_ages(self, tmp_path):
        """A file snapshotted right after it was written is read again the next time."""
        f = _write(tmp_path / "f.bin", b"new")
        cache = StatCache()
        snapshot(f, cache)
        assert snapshot(f, cache).hashed == 1

    def test_racy_tree_entry_is_hashed_again(self, tmp_path):
        """In a directory's cached entries too, a file hashed within the racy window of its
        mtime is read again while the others come from the cache."""
        for name in ("a", "b", "c"):
            _write(tmp_path / "t" / name, name.encode())
        _settle()
        cache = StatCache()
        snapshot(tmp_path / "t", cache)
        root = str(tmp_path / "t")
        entries = cache.load_tree(root)
        size, mtime, ino, ctime, digest, _ = entries["b"]
        entries["b"] = (size, mtime, ino, ctime, digest, max(mtime, ctime) + 1_000)
        cache.store_tree(root, entries)
        assert snapshot(tmp_path / "t", cache).hashed == 1

    def test_inconsistent_tree_row_is_ignored(self, tmp_path):
        """A damaged cache row means re-hashing, never a wrong digest."""
        _write(tmp_path / "t" / "a", b"a")
        _settle()
        cache = StatCache()
        snapshot(tmp_path / "t", cache)
        cache._conn().execute("UPDATE tree SET digests = 'xyz'")
        assert cache.load_tree(str(tmp_path / "t")) == {}
        assert snapshot(tmp_path / "t", cache).hashed == 1

    def test_unchanged_tree_answers_from_one_row(self, tmp_path):
        """The fast path (same walk, same packed stats) gives the same digest, size and —
        built on demand — the same sorted files as hashing everything."""
        names = ["b/x", "a.txt", "a/b", "a-b", "z", "a/c/d", "é/ü.bin"]
        for i, name in enumerate(names):
            _write(tmp_path / "t" / name, bytes([i]) * (i + 1))
        _settle()
        cache = StatCache()
        first = snapshot(tmp_path / "t", cache)
        fast = snapshot(tmp_path / "t", cache)
        plain = snapshot(tmp_path / "t")
        assert (fast.hashed, fast.file_count, fast._files) == (0, len(names), None)
        assert (fast.digest, fast.size) == (first.digest, first.size) == (plain.digest,
                                                                          plain.size)
        assert fast.files == plain.files and [f.path for f in fast.files] == sorted(names)

    def test_renamed_and_added_files_are_seen(self, tmp_path):
        for name in ("a", "b", "c"):
            _write(tmp_path / "t" / name, name.encode() * 10)
        _settle()
        cache = StatCache()
        before = snapshot(tmp_path / "t", cache)
        os.rename(tmp_path / "t" / "b", tmp_path / "t" / "bb")
        _settle()
        moved = snapshot(tmp_path / "t", cache)
        assert moved.digest != before.digest and moved.hashed == 1
        assert [f.path for f in moved.files] == ["a", "bb", "c"]
        _write(tmp_path / "t" / "d" / "e", b"new")
        _settle()
        added = snapshot(tmp_path / "t", cache)
        assert added.hashed == 1 and added.file_count == 4

    def test_lost_cache_costs_only_rehashing(self, tmp_path):
        """Deleting the cache file gives the same digest, read again."""
        f = _write(tmp_path / "f.bin", b"abc")
        _settle()
        cache = StatCache(str(tmp_path / "c1.sqlite"))
        first = snapshot(f, cache)
        other = snapshot(f, StatCache(str(tmp_path / "c2.sqlite")))
        assert first.digest == other.digest and other.hashed == 1


class TestLocalStore:
    def test_layout_is_by_digest(self, tmp_path):
        """Blob abcd... lives at <root>/ab/cd..., read-only."""
        store = LocalStore(tmp_path / "store")
        blob = store.put(_write(tmp_path / "m.pt", b"weights"))
        path = store.path(blob.digest)
        assert path == os.path.join(str(tmp_path / "store"), blob.digest[:2], blob.digest[2:])
        assert open(path, "rb").read() == b"weights"
        assert not os.access(path, os.W_OK) or os.geteuid() == 0
        assert os.stat(path).st_mode & 0o222 == 0

    def test_identical_content_is_stored_once(self, tmp_path):
        """Two files with the same bytes make one blob; no temporary file is left."""
        store = LocalStore(tmp_path / "store")
        a = store.put(_write(tmp_path / "a", b"same"))
        b = store.put(_write(tmp_path / "b", b"same"))
        assert a == b
        assert [x.digest for x in store.blobs()] == [a.digest]
        assert os.listdir(tmp_path / "store" / "tmp") == []

    def test_expected_digest_skips_reading(self, tmp_path):
        """With the digest known from the cache and the blob present, the source is not
        opened at all (it may even be gone)."""
        store = LocalStore(tmp_path / "store")
        src = _write(tmp_path / "a", b"content")
        blob = store.put(src)
        src.unlink()
        assert store.put(src, expected=blob.digest) == blob

    def test_verify_rehashes_an_edit_that_keeps_size_mode_and_times(self, tmp_path):
        """Bytes changed in place behind an unchanged stat are 'modified'; the quick
        check, which compares sizes only, does not see them but sees a truncation."""
        store = LocalStore(tmp_path / "store")
        blob = store.put(_write(tmp_path / "f", b"x" * 5000))
        target = store.path(blob.digest)
        st = os.stat(target)
        os.chmod(target, 0o644)
        with open(target, "r+b") as f:
            f.seek(4000)
            f.write(b"y")
        os.chmod(target, st.st_mode & 0o7777)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(target)[:7] == st[:7]  # mode, inode, device, links, uid, gid, size
        assert store.verify(blob.digest, blob.size) == "modified"
        assert store.verify(blob.digest, blob.size, quick=True) == "ok"
        os.chmod(target, 0o644)
        os.truncate(target, 10)
        assert store.verify(blob.digest, blob.size, quick=True) == "modified"

    def test_verify_detects_modified_and_missing_blobs(self, tmp_path):
        """verify says ok, then modified after an edit, then missing after removal."""
        store = LocalStore(tmp_path / "store")
        blob = store.put(_write(tmp_path / "a", b"content"))
        assert store.verify(blob.digest, blob.size) == "ok"
        path = store.path(blob.digest)
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.write(b"C")  # same size, different bytes
        assert store.verify(blob.digest, blob.size) == "modified"
        os.unlink(path)
        assert store.verify(blob.digest, blob.size) == "missing"

    def test_delete_reports_bytes_freed(self, tmp_path):
        """delete returns the blob's size, and 0 when it is already gone."""
        store = LocalStore(tmp_path / "store")
        blob = store.put(_write(tmp_path / "a", b"12345"))
        assert store.delete(blob.digest) == 5
        assert store.delete(blob.digest) == 0

    def test_failed_copy_leaves_no_temporary_file(self, tmp_path):
        """A source that cannot be read leaves the store as it was."""
        store = LocalStore(tmp_path / "store")
        with pytest.raises(OSError):
            store.put(tmp_path / "missing")
        assert list(store.blobs()) == []
        assert os.listdir(tmp_path / "store" / "tmp") == []

    def test_clean_temp_spares_young_files(self, tmp_path):
        """Temporary files older than the grace period are listed (and removed unless a
        dry run); younger ones, possibly being written, are not."""
        store = LocalStore(tmp_path / "store")
        tmp = tmp_path / "store" / "tmp"
        tmp.mkdir(parents=True)
        old = _write(tmp / "old", b"x" * 7)
        _age(old, 7200)
        _write(tmp / "young", b"y")
        assert [b.digest for b in store.clean_temp(3600)] == ["old"]
        assert old.exists()
        assert [b.size for b in store.clean_temp(3600, dry_run=False)] == [7]
        assert sorted(os.listdir(tmp)) == ["young"]

    def test_bad_digest_is_refused(self, tmp_path):
        """Anything but 64 lower-case hex digits is not a digest (no path tricks)."""
        store = LocalStore(tmp_path / "store")
        with pytest.raises(ArtifactStoreError, match="'../etc' is not a SHA-256 digest"):
            store.path("../etc")


class FakeRemoteStore:
    """A store plugin for the ``mem://`` scheme, registered in place by a test."""

    PLUGIN_NAME = "mem"
    schemes = ("mem",)
    opened: list = []

    @classmethod
    def open(cls, url):
        cls.opened.append(url)
        return LocalStore(url[len("mem://"):])


class TestStoreSeam:
    def test_plain_paths_and_file_urls_open_the_local_store(self, tmp_path):
        """A directory path and a file:// URL open the same local store."""
        assert url_scheme(str(tmp_path)) == "file"
        assert url_scheme("C:\\data\\store") == "file"
        assert open_store(str(tmp_path)).root == open_store(f"file://{tmp_path}").root

    def test_plugin_store_is_chosen_by_scheme(self, tmp_path):
        """A registered plugin serves its scheme through open_store."""
        from ato.plugins import hookimpl
        from ato.plugins.manager import plugin_manager, reset

        class Plugin:
            @hookimpl
            def ato_register_artifact_stores(self):
                return FakeRemoteStore

        reset()
        pm = plugin_manager()
        pm.register(Plugin(), name="undo-mem")
        try:
            store = open_store(f"mem://{tmp_path}/s")
            assert FakeRemoteStore.opened[-1] == f"mem://{tmp_path}/s"
            assert store.put(_write(tmp_path / "a", b"x")).size == 1
        finally:
            pm.unregister(name="undo-mem")
            reset()

    def test_unknown_scheme_names_the_scheme_and_installed_stores(self):
        """No plugin for s3:// is one clear error listing what is installed."""
        from ato.errors import UnknownPluginError
        from ato.plugins.manager import reset

        reset()
        with pytest.raises(UnknownPluginError,
                           match=r"artifact stores at 's3' URLs: no installed plugin provides "
                                 r"'s3' \(installed: file\)"):
            open_store("s3://bucket/prefix")

    def test_plugin_missing_a_member_fails_at_collection(self):
        """A store class without open() is refused when collected, naming what it lacks."""
        from ato.plugins import hookimpl
        from ato.plugins.manager import check_plugin

        class Broken:
            PLUGIN_NAME = "broken"
            schemes = ("x",)

        class Plugin:
            @hookimpl
            def ato_register_artifact_stores(self):
                return [Broken]

        problems = check_plugin(Plugin())
        assert len(problems) == 1 and "lacks open" in problems[0], problems


class TestConformance:
    def test_the_local_store_conforms(self, tmp_path):
        """The built-in store passes the suite shipped for third-party stores."""
        from ato.artifact_conformance import check_store

        store = LocalStore(tmp_path / "store")
        check_store(store, tmp_path / "work")
        assert list(store.blobs()) == []

    def test_a_store_that_does_not_deduplicate_fails_with_the_promise(self, tmp_path):
        """A broken store is reported by the promise it breaks."""
        from ato.artifact_conformance import StoreConformanceError, check_store

        class Forgetful(LocalStore):
            def has(self, digest):
                return False

        with pytest.raises(StoreConformanceError,
                           match=r"Forgetful \(file://.*\): has\(digest\) is true after put"):
            check_store(Forgetful(tmp_path / "store"), tmp_path / "work")

    def test_a_store_that_reports_kept_blobs_as_placed_fails_with_the_promise(self, tmp_path):
        """``on_place`` is optional, but a store taking it must call it only for a blob it
        wrote into place: the registry would otherwise report every re-registration as a
        repair."""
        from ato.artifact_conformance import StoreConformanceError, check_store

        class Noisy(LocalStore):
            def put(self, source, expected=None, on_place=None):
                blob = super().put(source, expected)
                if on_place is not None:
                    on_place(blob.digest, "absent")
                return blob

        with pytest.raises(StoreConformanceError,
                           match=r"Noisy \(file://.*\): on_place is not called when an intact "
                                 r"blob is kept; got \[\('[0-9a-f]{64}', 'absent'\)"):
            check_store(Noisy(tmp_path / "store"), tmp_path / "work")
