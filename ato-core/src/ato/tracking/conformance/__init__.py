"""The conformance suite for tracker backends, shipped as a pytest plugin.

A backend author runs it against their own URL with one command::

    pytest -p ato.tracking.conformance --pyargs ato.tracking.conformance \
        --tracker-url='mytracker://{tmp}/store'

``{tmp}`` is replaced by a fresh directory per test (omit it for a server URL; every test
works in a project of its own, so a shared store is fine).  Or, inside a test module of
their own, as SQLAlchemy's dialect suite is used::

    import pytest
    from ato.tracking.conformance import TrackerConformance

    class TestMyTracker(TrackerConformance):
        @pytest.fixture
        def tracker_url(self):
            return "mytracker://{tmp}/store"

Every protocol member is exercised with real values; members behind an optional capability
the backend does not declare are skipped with the reason.
"""

from __future__ import annotations

from ato.tracking.conformance.suite import TrackerConformance, fixture, pytest

__all__ = ["TrackerConformance"]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("ato", "Ato tracker conformance")
    group.addoption("--tracker-url", action="store", default=None, metavar="URL",
                    help="tracker URL to test; '{tmp}' becomes a fresh directory per test")


def pytest_configure(config) -> None:
    """A ``--tracker-url`` that no installed backend serves is one usage error, before any
    test runs (not the same error in every test)."""
    url = config.getoption("--tracker-url", default=None)
    if url:
        from ato.errors import AtoError
        from ato.plugins.manager import tracker_for_url

        try:
            tracker_for_url(url)
        except (AtoError, LookupError, ValueError) as e:
            raise pytest.UsageError(f"--tracker-url={url}: {e}") from None


@fixture
def tracker_url(request) -> str:
    """The ``--tracker-url`` given on the command line."""
    url = request.config.getoption("--tracker-url", default=None)
    if not url:
        raise pytest.UsageError("the tracker conformance suite needs --tracker-url=URL, e.g. "
                                "--tracker-url='sqlite:///{tmp}/t.db'")
    return url
