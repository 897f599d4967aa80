"""A module-level objective for test_executors.py's spawn test: a spawned worker imports
this module to unpickle it, so it must not be defined inside the test."""

import os
import uuid
from pathlib import Path


def distance(config):
    """``(x - 3)**2``; leaves a file named after this process's pid in
    ``$ATO_TEST_SPAWN_DIR`` to show where it ran."""
    (Path(os.environ["ATO_TEST_SPAWN_DIR"]) / f"{os.getpid()}-{config.x}-{uuid.uuid4().hex}").touch()
    return (config.x - 3) ** 2
