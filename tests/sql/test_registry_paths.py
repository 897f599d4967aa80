"""What can be registered: a regular file or a directory.  Anything else — a FIFO (whose
open would block for ever), a socket, a device such as /dev/null, a symbolic-link loop —
is one RegistryError naming the path and what it is, before anything is opened, and no
version is recorded."""

from __future__ import annotations

import os
import socket

import pytest

from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry import RegistryError
from tests.sql.registry_support import registry_env, write  # noqa: F401 (fixture)


@pytest.fixture
def logger(config):
    log = SQLLogger(config, handle_signals=False)
    log.run()
    yield log
    log.finish()


def _paths(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    return sock, [(fifo, "is a FIFO (named pipe)"), ("/dev/null", "is a character device"),
                  (sock_path, "is a socket"), (loop, "cannot read")]


@pytest.mark.parametrize("wait", [True, False])
def test_only_files_and_directories_can_be_registered(logger, tmp_path, wait):
    sock, cases = _paths(tmp_path)
    try:
        for path, phrase in cases:
            with pytest.raises(RegistryError) as caught:
                logger.log_model("odd", path, wait=wait)
            assert str(caught.value).startswith("model 'odd': ") and phrase in str(caught.value)
            assert os.path.abspath(path) in str(caught.value)
    finally:
        sock.close()
    good = write(tmp_path / "ok.pt", b"weights")
    assert logger.log_model("odd", good).version == 1  # nothing else was recorded


def test_an_alias_that_cannot_be_set_is_refused_at_registration_too(logger, tmp_path):
    """log_model(aliases=…) follows the rules of `ato models alias`: 'latest' moves by
    itself and 'vN' is a version number."""
    path = write(tmp_path / "m.pt", b"m")
    for alias, phrase in (("latest", "moves by itself"), ("v3", "'vN' is reserved")):
        with pytest.raises(RegistryError, match=phrase):
            logger.log_model("aliased", path, aliases=[alias])
    assert logger.log_model("aliased", path, aliases=["champion"]).version == 1
