"""Non-finite floats in the registry's JSON, on SQLite and PostgreSQL alike: a model's or
dataset's ``meta`` (``registry_versions.meta``) is written as configs are
(:mod:`ato.db_routers.sql.values`: ``{"$numberDouble": "NaN"}``, never Python's
``NaN``/``Infinity`` tokens, which PostgreSQL's ``json`` type rejects) and reads back as the
exact Python floats through the Registry, the logger's return value and the protocol
finder; so does the producing run's config in lineage.  Study and worker meta and trial
payloads (text columns holding JSON) too."""

from __future__ import annotations

import json
import math
import sqlite3
import warnings

import pytest
from sqlalchemy import text

from ato.db_routers.sql.engine import get_engine
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.db_routers.sql.registry import Registry
from ato.db_routers.sql.registry.core import RegistryWarning
from ato.tracking import TrialSpec, open_coordinator
from tests.sql.conftest import make_config
from tests.sql.registry_support import registry_env, settle, write  # noqa: F401 (fixture)
from tests.sql.test_values import same

INF, NAN = math.inf, math.nan

#: nan, inf and -inf at the top, in nested dicts and in lists (of dicts) at any depth.
META = {
    "nan": NAN, "inf": INF, "ninf": -INF, "finite": 0.5, "text": "NaN",
    "nested": {"deep": {"bound": -INF, "list": [1.0, NAN, {"v": INF}]}},
    "schedule": [INF, [NAN, [-INF]]],
    "looks_like_marker": {"$numberDouble": "Infinity"},
}


def strict(stored) -> object:
    """A stored JSON value (text on SQLite, parsed on PostgreSQL) parsed without accepting
    the ``NaN``/``Infinity`` tokens."""
    if isinstance(stored, str):
        return json.loads(stored, parse_constant=lambda t: pytest.fail(f"non-JSON {t}"))
    return stored


def stored_meta(url) -> list:
    with get_engine(url).connect() as conn:
        return [strict(m) for (m,) in conn.execute(
            text("SELECT meta FROM registry_versions ORDER BY id"))]


@pytest.fixture
def logger(db_url):
    lg = SQLLogger(make_config(db_url, lr=INF, floor=-INF, score=NAN,
                               nested={"x": [NAN, {"y": -INF}]}), handle_signals=False)
    yield lg
    lg.finish()


@pytest.fixture
def weights(tmp_path):
    path = write(tmp_path / "w.pt", b"weights" * 10)
    settle()
    return path


def test_model_meta_with_non_finite_floats_is_recorded_and_read_back(logger, weights):
    """The reported case: log_model(meta={'nan': nan}) failed on PostgreSQL with
    'Token "NaN" is invalid' and the run ended failed."""
    logger.run()
    v = logger.log_model("m-1", weights, meta=META)
    assert same(v.meta, META)
    registry = Registry(logger.url)
    assert same(registry.get("m-1").meta, META)
    assert same(registry.get("m-1", "v1").to_dict()["meta"], META)
    assert same(registry.versions("m-1")[0].meta, META)
    # the stored form: strict JSON, the encoding configs use
    (raw,) = stored_meta(logger.url)
    assert raw["nan"] == {"$numberDouble": "NaN"} and raw["ninf"] == {"$numberDouble": "-Infinity"}
    assert raw["nested"]["deep"]["list"][2] == {"v": {"$numberDouble": "Infinity"}}
    assert raw["looks_like_marker"] == {"$dict": {"$numberDouble": "Infinity"}}
    # and the protocol finder (what the dashboard and `ato models` read) decodes it too
    finder = SQLFinder(make_config(logger.url))
    (version,) = finder.registry_versions("m-1")
    assert same(version.meta, META)


def test_model_meta_in_the_background_and_on_a_dataset(logger, weights, tmp_path):
    """wait=False, use_dataset and Registry.register_dataset take the same path."""
    logger.run()
    pending = logger.log_model("bg", weights, meta={"loss": [NAN, {"best": INF}]}, wait=False)
    assert same(pending.result().meta, {"loss": [NAN, {"best": INF}]})
    data = write(tmp_path / "data" / "a.bin", b"data" * 10)
    settle()
    used = logger.use_dataset("d-1", data.parent, meta={"mean": [-INF, NAN], "std": {"x": INF}})
    assert same(used.meta, {"mean": [-INF, NAN], "std": {"x": INF}})
    registry = Registry(logger.url)
    assert same(registry.get("bg").meta, {"loss": [NAN, {"best": INF}]})
    assert same(registry.get("d-1", kind="dataset").meta, {"mean": [-INF, NAN], "std": {"x": INF}})
    for raw in stored_meta(logger.url):
        assert raw is not None


def test_same_content_with_the_same_non_finite_meta_does_not_warn(logger, weights):
    """Registering v1's content again with an equal meta (NaN included) is quiet; another
    meta is reported as not applied."""
    logger.run()
    logger.log_model("m", weights, meta=META)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegistryWarning)
        again = logger.log_model("m", weights, meta=json.loads(json.dumps(META)))
    assert again.created is False and same(again.meta, META)
    with pytest.warns(RegistryWarning, match="not applied: meta"):
        logger.log_model("m", weights, meta={**META, "nan": INF})


def test_lineage_config_reads_non_finite_floats_back(logger, weights):
    """produced_by (Registry and protocol finder) gives the run's config as run.config does:
    the exact floats, not the stored markers."""
    logger.run()
    logger.log_model("m", weights)
    lineage = Registry(logger.url).produced_by("m")
    config = lineage["config"]
    assert config["lr"] == INF and config["floor"] == -INF and math.isnan(config["score"])
    assert same(config["nested"], {"x": [NAN, {"y": -INF}]})
    provenance = SQLFinder(make_config(logger.url)).produced_by("m")
    assert same(provenance.config["nested"], {"x": [NAN, {"y": -INF}]})
    assert provenance.config["lr"] == INF


def test_meta_written_with_python_tokens_before_the_fix_still_reads(tmp_path, weights):
    """A SQLite row holding Python's NaN/Infinity tokens (what meta was written as before)
    reads back as the floats, and registering that content again with the same meta does not
    warn."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    logger = SQLLogger(make_config(url), handle_signals=False)
    logger.run()
    logger.log_model("m", weights, meta={"x": 1})
    logger.finish()
    conn = sqlite3.connect(tmp_path / "e.db")
    with conn:
        conn.execute("UPDATE registry_versions SET meta = ?",
                     (json.dumps({"nan": NAN, "l": [INF, {"n": -INF}]}),))
    conn.close()
    old = {"nan": NAN, "l": [INF, {"n": -INF}]}
    assert same(Registry(url).get("m").meta, old)
    logger = SQLLogger(make_config(url), handle_signals=False)
    logger.run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegistryWarning)
        assert logger.log_model("m", weights, meta=old).created is False
    logger.finish()


def test_study_and_worker_meta_and_payloads(db_url):
    """Study meta, worker meta and trial payloads hold nan/inf/-inf at any depth."""
    coordinator = open_coordinator(db_url)
    meta = {"space": {"lr": [-INF, INF]}, "best": NAN, "list": [{"x": [NAN]}]}
    assert same(coordinator.create_study("s", meta=meta)["meta"], meta)
    coordinator.join("s", "w", "host", 1, meta={"limits": [INF, {"low": -INF}], "nan": NAN})
    (worker,) = coordinator.workers("s")
    assert same(worker["meta"], {"limits": [INF, {"low": -INF}], "nan": NAN})
    payload = {"x": INF, "y": [NAN, {"z": -INF}], "deep": {"a": {"b": [[NAN]]}}}
    coordinator.enqueue("s", [TrialSpec("a", payload)])
    claim = coordinator.claim("s", "w")
    assert same(claim.payload, payload)
    (state,) = coordinator.trials("s")
    assert same(state.payload, payload)
    assert same(coordinator.get_study("s")["meta"], meta)
