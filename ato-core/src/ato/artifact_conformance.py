"""The conformance suite for artifact-store plugins.

A third party checks its store against what the registry relies on::

    from ato.artifact_conformance import check_store

    def test_my_store_conforms(tmp_path):
        check_store(MyStoreBackend.open("s3://test-bucket/prefix"), tmp_path)

:func:`check_store` raises :class:`StoreConformanceError` naming the first broken promise.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ato.artifacts import Blob


class StoreConformanceError(AssertionError):
    """A store broke one of the promises of :class:`ato.artifacts.ArtifactStore`."""


def _require(condition: bool, store, promise: str) -> None:
    if not condition:
        raise StoreConformanceError(f"{type(store).__qualname__} ({getattr(store, 'url', '?')}): "
                                    f"{promise}")


def check_store(store, workdir: str | os.PathLike) -> None:
    """Exercise ``store`` (an object returned by a plugin's ``open(url)``) with files
    written under ``workdir``; every blob it creates is deleted again."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    _require(isinstance(getattr(store, "url", None), str), store, "has a str `url`")
    data = os.urandom(3 * 1024 * 1024 + 7)
    src = work / "conformance-a.bin"
    src.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()

    blob = store.put(str(src))
    _require(blob == Blob(expected, len(data)), store,
             f"put returns Blob(sha256 of the bytes, size); got {blob!r}")
    _require(store.has(expected), store, "has(digest) is true after put")
    with open(store.path(expected), "rb") as f:
        _require(f.read() == data, store, "path(digest) is a local file holding the bytes")
    _require(store.verify(expected, len(data)) == "ok", store, "verify says 'ok' for a good blob")

    copy = work / "conformance-b.bin"
    copy.write_bytes(data)
    _require(store.put(str(copy)) == blob, store, "identical content gives the same blob")
    _require(sum(1 for b in store.blobs() if b.digest == expected) == 1, store,
             "blobs() lists identical content once")
    src.unlink()
    _require(store.put(str(src), expected=expected) == blob, store,
             "put(path, expected=digest) of a present blob reads nothing (the path may be gone)")

    other = work / "conformance-c.bin"
    other.write_bytes(b"other")
    other_blob = store.put(str(other))
    _require({expected, other_blob.digest} <= {b.digest for b in store.blobs()}, store,
             "blobs() lists every stored blob")
    _require(store.delete(other_blob.digest) == 5, store, "delete returns the bytes freed")
    _require(store.delete(other_blob.digest) == 0, store, "delete of an absent blob returns 0")
    _require(not store.has(other_blob.digest), store, "has(digest) is false after delete")
    _require(store.verify(other_blob.digest, 5) == "missing", store,
             "verify says 'missing' for an absent blob")
    _require(isinstance(store.clean_temp(3600.0, dry_run=True), list), store,
             "clean_temp(older_than, dry_run) returns a list")
    if hasattr(store, "stage"):  # optional: background registration (log_model(wait=False))
        staged = store.stage(str(copy))
        staged.copy()
        copy.write_bytes(b"written over after the copy")
        _require(staged.commit() == blob, store,
                 "stage(path): copy() then commit() stores the bytes the path held at copy() "
                 "time, deduplicated")
        _require(store.verify(expected, len(data)) == "ok", store,
                 "a staged blob verifies 'ok'")
    if _takes(store.put, "on_place"):  # optional: lets a registry report a repaired store
        calls: list = []
        third = work / "conformance-d.bin"
        third.write_bytes(b"a third blob")
        made = store.put(str(third), on_place=lambda *a: calls.append(a))
        _require(calls == [(made.digest, "absent")], store,
                 f"put(path, on_place=f) calls f(digest, 'absent') once after writing a new "
                 f"blob; got {calls!r}")
        calls.clear()
        store.put(str(third), on_place=lambda *a: calls.append(a))
        store.put(str(third), expected=made.digest, on_place=lambda *a: calls.append(a))
        _require(calls == [], store, f"on_place is not called when an intact blob is kept; "
                                     f"got {calls!r}")
        store.delete(made.digest)
        third.unlink()
    _require(store.delete(expected) == len(data), store, "delete frees the blob")
    for p in (copy, other):
        p.unlink()


def _takes(method, keyword: str) -> bool:
    import inspect

    try:
        return keyword in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


__all__ = ["StoreConformanceError", "check_store"]
