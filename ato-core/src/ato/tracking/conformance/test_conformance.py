"""Collected by ``pytest -p ato.tracking.conformance --pyargs ato.tracking.conformance``."""

from ato.tracking.conformance.suite import TrackerConformance


class TestTracker(TrackerConformance):
    """The whole suite against ``--tracker-url``."""
