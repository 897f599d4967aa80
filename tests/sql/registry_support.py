"""Set-up shared by the registry tests (``tests/sql/test_registry_*.py``).

A test module takes the autouse fixture by importing it::

    from tests.sql.registry_support import registry_env, write  # noqa: F401 (fixture)
"""

from __future__ import annotations

import os
import time

import pytest

from ato.artifacts import RACY_WINDOW_NS

#: ``$ATO_USER`` during registry tests: the actor recorded for alias moves.
ACTOR = "tester"


@pytest.fixture(autouse=True)
def registry_env(tmp_path, monkeypatch):
    """Each test gets its own stat cache (``tmp/cache``) and default store
    (``tmp/store``), and alias moves are recorded as made by :data:`ACTOR`."""
    monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATO_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ATO_USER", ACTOR)


def write(path, data: bytes):
    """Write ``data`` to ``path`` (parents created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def settle() -> None:
    """Wait out the stat cache's racy window, so files just written are trusted."""
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.05)


def edit_in_place(path, data: bytes) -> None:
    """Overwrite the start of ``path`` with ``data`` keeping its size, permissions and
    times: only the bytes tell the difference (what ``ato store verify`` must catch)."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(data)
    os.chmod(path, st.st_mode & 0o7777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
