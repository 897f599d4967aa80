"""open_coordinator: the seam a backend plugs a coordinator into, and its errors."""

from __future__ import annotations

import re

import pytest

from ato.adict import ADict
from ato.tracking import (
    CapabilityError,
    StudyCoordinator,
    TrackerProtocolError,
    TrialSpec,
    open_coordinator,
)


class _HalfCoordinator:
    url = "half://x"

    def claim(self, *args, **kwargs):
        return None


class _FakeBackend:
    PLUGIN_NAME = "fake-studies"
    schemes = ("fakestudies",)

    @classmethod
    def logger(cls, config, **options):
        raise AssertionError("not used")

    @classmethod
    def finder(cls, config, **options):
        raise AssertionError("not used")


@pytest.fixture
def fake_backend(monkeypatch):
    from ato.plugins import manager

    def pick(url):
        return backend if url.startswith("fakestudies:") else original(url)

    original = manager.tracker_for_url
    backend = type("Backend", (_FakeBackend,), {})
    monkeypatch.setattr(manager, "tracker_for_url", pick)
    return backend


def test_a_backend_without_coordinator_is_a_capability_error(fake_backend):
    with pytest.raises(CapabilityError, match="'fake-studies'.*'studies' capability"):
        open_coordinator("fakestudies://x")


def test_an_incomplete_coordinator_names_the_missing_members(fake_backend):
    fake_backend.coordinator = classmethod(lambda cls, config, **o: _HalfCoordinator())
    with pytest.raises(TrackerProtocolError) as info:
        open_coordinator("fakestudies://x")
    message = str(info.value)
    assert "'fake-studies'" in message and "StudyCoordinator" in message
    assert "report" in message and "enqueue" in message and "report_and_claim" in message
    assert re.search(r"\bclaim,", message) is None  # it has claim


def test_options_and_readonly_reach_the_backend(fake_backend):
    seen = {}

    def coordinator(cls, config, **options):
        seen.update(options, url=config.experiment.sql.db_path)
        return _HalfCoordinator()

    fake_backend.coordinator = classmethod(coordinator)
    with pytest.raises(TrackerProtocolError):
        open_coordinator("fakestudies://x", readonly=True, custom=1)
    assert seen == {"readonly": True, "custom": 1, "url": "fakestudies://x"}


def test_a_config_works_like_a_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    coordinator = open_coordinator(ADict(experiment={"sql": {"db_path": url}}))
    assert isinstance(coordinator, StudyCoordinator) and coordinator.url == url
    coordinator.enqueue("s", [TrialSpec("a", {})])
    assert open_coordinator(url).trials("s")[0].key == "a"


def test_a_closed_coordinator_refuses_work(tmp_path):
    coordinator = open_coordinator(f"sqlite:///{tmp_path / 'c.db'}")
    coordinator.close()
    with pytest.raises(RuntimeError, match="closed"):
        coordinator.enqueue("s", [TrialSpec("a", {})])


def test_wrong_argument_types_are_named(tmp_path):
    coordinator = open_coordinator(f"sqlite:///{tmp_path / 'c.db'}")
    with pytest.raises(TypeError, match="TrialSpec"):
        coordinator.enqueue("s", [{"key": "a"}])
    with pytest.raises(TypeError, match="payload must be a dict"):
        coordinator.enqueue("s", [TrialSpec("a", ["not", "a", "dict"])])
    with pytest.raises(TypeError, match="propose must be callable"):
        coordinator.claim_or_propose("s", "w", None)
    with pytest.raises(TypeError, match="propose must return TrialSpec"):
        coordinator.claim_or_propose("s", "w", lambda states: ["a"])
    with pytest.raises(TypeError, match="the Claim"):
        coordinator.report(("s", "a"), "completed")
    with pytest.raises(ValueError, match="255"):
        coordinator.enqueue("s", [TrialSpec("k" * 256, {})])
