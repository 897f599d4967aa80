"""The tests every tracker backend must pass; see :mod:`ato.tracking.conformance`.

Each test works in a project of its own (a fresh unicode name), so the suite also runs
against a store that other tests, or other people, use at the same time.
"""

from __future__ import annotations

import math
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone

from ato.adict import ADict
from ato.tracking import (
    CAPABILITIES,
    REGISTRY_FINDER_MEMBERS,
    REGISTRY_LOGGER_MEMBERS,
    AliasEvent,
    Artifact,
    Finder,
    Fingerprint,
    Lineage,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    Provenance,
    RegistryError,
    RegistryVersion,
    Run,
    RunUse,
    SeriesColumns,
    TrackerFinder,
    TrackerLogger,
    WhereError,
    open_finder,
    open_logger,
    reduce_points,
)
from ato.tracking.conformance.studies import StudyConformance

try:
    import pytest

    fixture = pytest.fixture
except ImportError:  # importable without pytest (tools that import every module); runs under it
    pytest = None

    def fixture(function):
        return function


CONFIG = {
    "lr": 0.001, "batch_size": 32, "model": {"name": "resnet", "depth": 50},
    "flags": {"amp": True, "note": None}, "layers": [64, 128],
    "données": {"clé": "valeur ünïcödé 🚀"}, "weird key-with.dots_ok": "x",
}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class TrackerConformance(StudyConformance):
    """Subclass this in a test module and provide a ``tracker_url`` fixture returning the
    URL of the store to test (``{tmp}`` in it is replaced by a fresh directory per test)."""

    # ------------------------------------------------------------------ helpers
    @fixture
    def url(self, tracker_url, tmp_path):
        return tracker_url.replace("{tmp}", str(tmp_path))

    @fixture
    def project(self):
        return f"conformance-{uuid.uuid4().hex[:10]}-ünï"

    @fixture
    def finder(self, url, project) -> Finder:
        """A finder on the store, which a logger has created first (finders never do)."""
        self.logger(url, project)
        return open_finder(url)

    def logger(self, url, project, **options):
        return open_logger(url, project=project, **options)

    def log(self, url, project, *, config=None, tags=None, metrics=(), status="completed",
            artifacts=()):
        """One finished run: ``metrics`` are ``(key, value, step)``; returns its id."""
        logger = self.logger(url, project)
        run_id = logger.run(tags=tags, config=ADict(config if config is not None else CONFIG))
        for key, value, step in metrics:
            logger.log_metric(key, value, step)
        for path, kind, meta in artifacts:
            logger.log_artifact(run_id, path, data_type=kind, metadata=meta)
        logger.finish(status)
        return run_id

    # ------------------------------------------------------------------ the backend
    def test_backend_is_registered_and_complete(self, url, project):
        """The URL's scheme finds a backend whose logger and finder satisfy the protocol
        and whose capabilities are known names."""
        from ato.plugins.manager import tracker_for_url

        backend = tracker_for_url(url)
        assert isinstance(backend.PLUGIN_NAME, str) and backend.PLUGIN_NAME
        assert url.split(":", 1)[0].split("+", 1)[0].lower() in backend.schemes
        logger = self.logger(url, project)
        finder = open_finder(url)
        assert isinstance(finder.backend, TrackerFinder)
        assert set(finder.backend.capabilities) <= CAPABILITIES, finder.backend.capabilities
        assert finder.stale_after > 0
        assert isinstance(logger, TrackerLogger)
        assert logger.project_name == project
        assert logger.get_current_run_id() is None

    # ------------------------------------------------------------------ runs
    def test_config_tags_and_times_round_trip(self, url, project, finder):
        """Nested and unicode keys, every JSON type, tags in order, naive-UTC times."""
        before = _utc_now() - timedelta(seconds=5)
        run_id = self.log(url, project, tags=["baseline", "étiquette", "study:x"])
        after = _utc_now() + timedelta(seconds=5)
        run = finder.find_run(run_id)
        assert isinstance(run, Run)
        assert run.id == run_id and run.project_name == project
        assert run.config.to_dict() == CONFIG
        assert run.config.model.depth == 50
        assert run.tags == ["baseline", "étiquette", "study:x"]
        assert run.status == run.recorded_status == "completed" and not run.stale
        for moment in (run.start_time, run.end_time):
            assert isinstance(moment, datetime) and moment.tzinfo is None
            assert before <= moment <= after
        assert run.start_time <= run.end_time and run.duration >= 0

    def test_structural_hash_follows_structure(self, url, project, finder):
        """Runs whose configs share keys and types share a hash; a new key changes it."""
        a = self.log(url, project, config={"lr": 0.1, "m": {"d": 1}})
        b = self.log(url, project, config={"lr": 0.5, "m": {"d": 7}})
        c = self.log(url, project, config={"lr": 0.1, "m": {"d": 1}, "extra": 1})
        ha, hb, hc = (finder.find_run(i).structural_hash for i in (a, b, c))
        if ha is not None:
            assert ha == hb != hc

    def test_run_records_the_given_config(self, url, project, finder):
        """run(tags, config=other) records ``other``; run() records the logger's config."""
        logger = open_logger(ADict(experiment={"project_name": project,
                                               "sql": {"db_path": url}}, own=1))
        own = logger.run()
        logger.finish()
        other = logger.run(tags=["trial"], config={"x": 2})
        logger.finish()
        assert finder.find_run(own).config.own == 1
        assert finder.find_run(other).config.to_dict() == {"x": 2}

    def test_run_records_no_password_of_a_url(self, url, project, finder):
        """A password inside a URL of the config (its own tracker URL, a data server's)
        is recorded as ``***`` (:func:`ato.tracking.secrets.without_passwords`); the rest
        of the value, and every other value, as given."""
        secret = {"data": {"url": "postgresql://alice:s3cr3t@db.example/x", "n": 3},
                  "mirrors": ["redis://:hunter2@cache:6379/0", "https://example.org/a"],
                  "note": "no url here: a:b@c"}
        run_id = self.log(url, project, config=secret)
        recorded = finder.find_run(run_id).config.to_dict()
        assert recorded == {"data": {"url": "postgresql://alice:***@db.example/x", "n": 3},
                            "mirrors": ["redis://:***@cache:6379/0", "https://example.org/a"],
                            "note": "no url here: a:b@c"}
        assert "s3cr3t" not in repr(recorded) and "hunter2" not in repr(recorded)

    def test_ids_are_unique_and_current_run_tracked(self, url, project, finder):
        logger = self.logger(url, project)
        first = logger.run()
        assert logger.get_current_run_id() == first
        second = logger.run()
        assert second != first and logger.get_current_run_id() == second
        logger.finish()
        assert logger.get_current_run_id() is None
        logger.finish()  # no current run: nothing happens
        assert finder.find_run(first).status == "completed"  # one run at a time
        assert finder.find_run(second).status == "completed"
        assert finder.find_run(10 ** 9) is None

    def test_concurrent_loggers_get_distinct_runs(self, url, project, finder):
        """Loggers in several threads (one each) create runs at the same time: every run
        is kept, with its own id and its own points."""
        import threading

        ids, errors = [], []

        def work(worker):
            try:
                logger = self.logger(url, project)
                for i in range(4):
                    run_id = logger.run(config={"worker": worker, "i": i})
                    logger.log_metric("w", worker, i)
                    logger.finish()
                    ids.append(run_id)
            except Exception as e:  # reported below, with the worker
                errors.append((worker, e))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(ids) == 16 and len(set(ids)) == 16
        runs = finder.find_runs(project)
        assert sorted(r.id for r in runs) == sorted(ids)
        for run in runs:
            points = finder.get_metric_history(run.id, "w")
            assert [(p.step, p.value) for p in points] == [(run.config.i, run.config.worker)]

    def test_statuses_and_update_status(self, url, project, finder):
        ids = {s: self.log(url, project, status=s) for s in ("completed", "failed", "killed")}
        logger = self.logger(url, project)
        running = logger.run()
        logger.update_status("failed")
        assert finder.find_run(running).recorded_status == "failed"
        logger.update_status("running")
        for status, run_id in ids.items():
            assert finder.find_run(run_id).status == status
            assert [r.id for r in finder.find_runs(project, status=status)] == [run_id]
        both = finder.find_runs(project, status=["failed", "killed"])
        assert [r.id for r in both] == sorted([ids["failed"], ids["killed"]])
        assert [r.id for r in finder.find_runs(project, status="running")] == [running]
        logger.finish()

    def test_context_manager(self, url, project, finder):
        """A with block runs one run: completed, failed (exception propagates), killed."""
        with self.logger(url, project) as logger:
            ok = logger.get_current_run_id()
            assert ok is not None
            logger.log_metric("loss", 1.0, 0)
        assert logger.get_current_run_id() is None
        with pytest.raises(ZeroDivisionError):
            with self.logger(url, project) as logger:
                bad = logger.get_current_run_id()
                raise ZeroDivisionError("inside the block")
        with pytest.raises(KeyboardInterrupt):
            with self.logger(url, project) as logger:
                killed = logger.get_current_run_id()
                raise KeyboardInterrupt
        logger = self.logger(url, project)
        started = logger.run()
        with logger as same:  # an open run is kept, not replaced
            assert same is logger and logger.get_current_run_id() == started
        statuses = {r.id: r.status for r in finder.find_runs(project)}
        assert statuses == {ok: "completed", bad: "failed", killed: "killed",
                            started: "completed"}
        errors = {r.id: r.error for r in finder.find_runs(project)}
        assert errors[ok] is None and errors[started] is None
        if errors[bad] is not None:  # a backend that records why a run failed
            assert "ZeroDivisionError" in errors[bad] and "inside the block" in errors[bad]
        assert finder.get_metric_history(ok, "loss")[0].value == 1.0

    def test_log_metric_before_run_is_an_error(self, url, project):
        with pytest.raises(RuntimeError):
            self.logger(url, project).log_metric("loss", 1.0, 0)

    # ------------------------------------------------------------------ projects
    def test_projects(self, url, project, finder):
        self.log(url, project)
        self.log(url, project)
        found = finder.find_project(project)
        assert isinstance(found, Project) and found.name == project
        assert [p.id for p in finder.list_projects() if p.name == project] == [found.id]
        ids = [p.id for p in finder.list_projects()]
        assert ids == sorted(ids)
        assert finder.find_project(project + "-absent") is None
        assert finder.find_runs(project + "-absent") == []

    # ------------------------------------------------------------------ queries
    def test_tags_filter_needs_every_tag(self, url, project, finder):
        a = self.log(url, project, tags=["x", "y"])
        b = self.log(url, project, tags=["x"])
        self.log(url, project, tags=[])
        assert [r.id for r in finder.find_runs(project, tags=["x"])] == [a, b]
        assert [r.id for r in finder.find_runs(project, tags=["x", "y"])] == [a]
        assert finder.find_runs(project, tags=["nope"]) == []
        assert a in [r.id for r in finder.find_runs(None, tags=["x", "y"])]

    def test_order_limit_and_last(self, url, project, finder):
        ids = []
        for i in range(4):
            ids.append(self.log(url, project, config={"i": i}))
            time.sleep(0.002)
        assert [r.id for r in finder.find_runs(project)] == ids
        assert [r.id for r in finder.find_runs(project, limit=2)] == ids[:2]
        assert [r.id for r in finder.find_runs(project, last=2)] == ids[2:]
        assert finder.find_runs(project, limit=0) == []
        newest = finder.find_runs(project, order_by="start_time", descending=True)
        assert [r.id for r in newest] == ids[::-1]
        assert [r.id for r in finder.find_runs(project, order_by="id", descending=True,
                                               limit=1)] == [ids[-1]]
        logger = self.logger(url, project)
        open_run = logger.run()
        by_end = finder.find_runs(project, order_by="end_time")
        assert [r.id for r in by_end] == ids + [open_run]  # no end time sorts last
        by_status = finder.find_runs(project, order_by="status", descending=True)
        assert [r.id for r in by_status] == [open_run] + ids  # running > completed, ties by id
        logger.finish()
        other = self.log(url, project + "-a")  # sorts after the project by name
        both = [r.id for r in finder.find_runs(None, order_by="project_name")
                if r.project_name in (project, project + "-a")]
        assert both == ids + [open_run, other]
        for bad in ({"order_by": "config"}, {"status": "done"}, {"limit": -1}):
            with pytest.raises(ValueError):
                finder.find_runs(project, **bad)

    def test_where_is_typed(self, url, project, finder):
        if not finder.supports("where"):
            pytest.skip("backend does not declare the 'where' capability")
        a = self.log(url, project, config={"lr": 0.001, "model": {"name": "resnet", "depth": 50},
                                           "amp": True, "note": None})
        b = self.log(url, project, config={"lr": 0.1, "model": {"name": "vit", "depth": 12},
                                           "amp": False, "note": "ok"})
        c = self.log(url, project, config={"lr": "0.001", "model": {"name": "resnet"}})

        def ids(expr):
            return [r.id for r in finder.find_runs(project, where=expr)]

        assert ids("lr < 0.01") == [a]  # the string '0.001' is not a number
        assert ids("lr == '0.001'") == [c]
        assert ids("model.depth >= 12 and model.name == 'vit'") == [b]
        assert ids("model.name == 'resnet' or lr > 0.05") == [a, b, c]
        assert ids("not model.name == 'resnet'") == [b]
        assert ids("(lr <= 0.1) and not (model.depth < 20)") == [a]
        assert ids("amp == True") == [a] and ids("amp != True") == [b]
        assert ids("note == None") == [a] and ids("note != None") == [b]
        assert ids("model.depth == 50.0") == [a]
        assert ids("missing == 1") == []
        with pytest.raises(WhereError, match="position"):
            finder.find_runs(project, where="lr <")

    # ------------------------------------------------------------------ metrics
    def test_history_is_ordered_by_step(self, url, project, finder):
        before = _utc_now() - timedelta(seconds=5)
        run_id = self.log(url, project, metrics=[("loss", 3, 2), ("loss", 1, 0), ("acc", 5, 0),
                                                 ("loss", 2, 1)])
        history = finder.get_metric_history(run_id, "loss")
        assert all(isinstance(p, MetricPoint) for p in history)
        assert [(p.run_id, p.key, p.step, p.value) for p in history] == [
            (run_id, "loss", 0, 1.0), (run_id, "loss", 1, 2.0), (run_id, "loss", 2, 3.0)]
        assert all(isinstance(p.value, float) for p in history)
        for p in history:
            assert p.timestamp.tzinfo is None and before <= p.timestamp <= _utc_now() + timedelta(seconds=5)
        assert finder.get_metric_history(run_id, "absent") == []

    def test_keys_and_summaries(self, url, project, finder):
        a = self.log(url, project, metrics=[("loss", 0.9, 0), ("loss", 0.1, 1), ("loss", 0.7, 3),
                                            ("loss", 0.5, 3), ("acc", float("inf"), 2),
                                            ("acc", -1.5, 1), ("unicode λ", 1, 0)])
        empty = self.log(url, project)
        assert finder.metric_keys([a]) == ["acc", "loss", "unicode λ"]
        assert finder.metric_keys([empty]) == []
        summaries = finder.get_metric_summaries([a, empty])
        assert set(summaries) == {a, empty} and summaries[empty] == {}
        loss = summaries[a]["loss"]
        assert isinstance(loss, MetricSummary)
        # the last point is the one at the highest step, the later logged on a tie
        assert (loss.last, loss.last_step, loss.min, loss.max, loss.count) == (0.5, 3, 0.1, 0.9, 4)
        acc = summaries[a]["acc"]
        assert math.isinf(acc.max) and acc.min == -1.5 and acc.last_step == 2
        only = finder.get_metric_summaries([a], ["loss", "nope"])
        assert list(only[a]) == ["loss"]

    def test_best_run(self, url, project, finder):
        a = self.log(url, project, metrics=[("acc", 0.5, 0), ("acc", 0.9, 1)])
        b = self.log(url, project, metrics=[("acc", 0.9, 0), ("acc", 0.2, 1)])
        c = self.log(url, project, metrics=[("acc", 0.1, 0)])
        assert finder.find_best_run(project, "acc", mode="max").id == a  # tie: lowest id
        assert finder.find_best_run(project, "acc", mode="min").id == c
        assert b not in (a, c)
        assert finder.find_best_run(project + "-absent", "acc") == {"error": "Project not found"}
        assert finder.find_best_run(project, "absent") == {"error": "Run not found"}
        with pytest.raises(ValueError):
            finder.find_best_run(project, "acc", mode="best")

    def test_many_points_reduce_deterministically_keeping_spikes(self, url, project, finder):
        n = 10_000
        logger = self.logger(url, project)
        run_id = logger.run()
        values = [math.sin(i / 50.0) for i in range(n)]
        values[4321], values[7777] = 1e6, -1e6  # spikes that random sampling would miss
        logger.log_metrics({"loss": values[0], "other": 0.0}, 0)
        for step in range(1, n):
            logger.log_metric("loss", values[step], step)
        logger.finish()
        history = finder.get_metric_history(run_id, "loss")
        assert [p.value for p in history] == values
        for max_points in (9, 17, 200, 1000):
            series = finder.get_metric_series(run_id, "loss", max_points=max_points)
            assert isinstance(series, MetricSeries)
            assert series.total == n and series.reduced
            steps = [p.step for p in series.points]
            assert len(steps) <= max_points and steps == sorted(set(steps))
            assert steps[0] == 0 and steps[-1] == n - 1
            kept = {p.step: p.value for p in series.points}
            assert kept.get(4321) == 1e6 and kept.get(7777) == -1e6
            assert [(p.step, p.value) for p in series.points] == [
                (p.step, p.value) for p in reduce_points(history, max_points)]
            again = finder.get_metric_series(run_id, "loss", max_points=max_points)
            assert [p.step for p in again.points] == steps
        window = finder.get_metric_series(run_id, "loss", min_step=4300, max_step=4399,
                                          max_points=500)
        assert window.total == 100 and not window.reduced
        assert [p.step for p in window.points] == list(range(4300, 4400))
        full = finder.get_metric_series(run_id, "loss")
        assert full.total == n and len(full.points) == n and not full.reduced
        with pytest.raises(ValueError):
            finder.get_metric_series(run_id, "loss", max_points=8)

    def test_series_columns_of_many_runs(self, url, project, finder):
        """``get_metric_series_columns``: each asked run's ``get_metric_series`` as
        columns, in the order asked (the backend's own under the ``columns`` capability,
        otherwise built by :class:`ato.tracking.Finder` from ``get_metric_series``)."""
        if finder.supports("columns"):
            assert callable(getattr(finder.backend, "get_metric_series_columns", None))
        values = [math.cos(s / 9.0) for s in range(1200)]
        values[777] = 50.0  # a spike
        long = self.log(url, project, metrics=[("loss", v, s) for s, v in enumerate(values)])
        short = self.log(url, project, metrics=[("loss", 0.5, 0), ("loss", 0.25, 3)])
        other = self.log(url, project, metrics=[("acc", 1.0, 0)])
        asked = [short, long, other, long]
        for times in (True, False):
            for lo, hi in ((None, None), (100, 900)):
                got = finder.get_metric_series_columns(asked, "loss", min_step=lo, max_step=hi,
                                                       max_points=100, times=times)
                assert [c.run_id for c in got] == asked
                for c in got:
                    assert isinstance(c, SeriesColumns)
                    series = finder.get_metric_series(c.run_id, "loss", min_step=lo,
                                                      max_step=hi, max_points=100)
                    assert c.steps == [p.step for p in series.points]
                    assert c.values == [p.value for p in series.points]
                    assert c.times == ([p.timestamp for p in series.points] if times
                                       else None)
                    assert (c.key, c.total, c.reduced) == ("loss", series.total,
                                                           series.reduced)
                    assert (c.min_step, c.max_step) == (lo, hi)
                assert got[2].steps == [] and got[2].total == 0
                assert (50.0 in got[1].values) == (hi is None or hi >= 777)
        assert got[1].reduced and len(got[1].steps) <= 100
        with pytest.raises(ValueError):
            finder.get_metric_series_columns(asked, "loss", max_points=8)

    def test_finish_records_why_a_run_failed(self, url, project, finder):
        logger = self.logger(url, project)
        failed = logger.run(tags=["t"])
        logger.finish("failed", "ValueError: x too big")
        run = finder.find_run(failed)
        assert run.status == "failed"
        if getattr(run, "error", None) is not None:  # a backend that records errors
            assert run.error == "ValueError: x too big"

    def test_one_with_block_is_one_run(self, url, project, finder):
        """The first ``run(tags, config)`` inside a ``with`` block names the block's run;
        a nested ``with`` neither starts nor ends one; a second ``run()`` ends the first."""
        with self.logger(url, project) as logger:
            named = logger.run(tags=["seed"], config={"lr": 0.5})
            with logger:  # nested: same run
                assert logger.get_current_run_id() == named
            logger.log_metric("loss", 1.0, 0)
        runs = finder.find_runs(project)
        assert [r.id for r in runs] == [named]
        assert runs[0].tags == ["seed"] and runs[0].config.to_dict() == {"lr": 0.5}
        assert runs[0].status == "completed"
        with self.logger(url, project) as logger:
            first = logger.run(tags=["a"])
            second = logger.run(tags=["b"])
        statuses = {r.id: r.status for r in finder.find_runs(project)}
        assert statuses[first] == "completed" and statuses[second] == "completed"

    def test_system_exit_in_a_block_ends_by_exit_status(self, url, project, finder):
        """``SystemExit`` ends the block's run by the exit status, as the process would."""
        cases = [(0, "completed", None), (None, "completed", None),
                 (3, "failed", "exit status 3"),
                 ("bad config", "failed", "exit status 1: bad config")]
        for code, status, error in cases:
            try:
                with self.logger(url, project) as logger:
                    run_id = logger.get_current_run_id()
                    raise SystemExit(code)
            except SystemExit:
                pass
            else:
                raise AssertionError("__exit__ swallowed SystemExit")
            run = finder.find_run(run_id)
            assert run.status == status, (code, run.status)
            if getattr(run, "error", None) is not None or error is None:
                assert getattr(run, "error", None) == error, (code, run.error)

    def test_reduction_with_repeated_steps(self, url, project, finder):
        points = [("m", float(v), s) for s, v in
                  [(0, 1), (1, 5), (1, 5), (1, -2), (2, 0), (3, 9), (3, 9), (4, 3), (5, 3),
                   (6, 3), (7, 0), (8, 1)]]
        run_id = self.log(url, project, metrics=points)
        history = finder.get_metric_history(run_id, "m")
        series = finder.get_metric_series(run_id, "m", max_points=9)
        assert [(p.step, p.value) for p in series.points] == [
            (p.step, p.value) for p in reduce_points(history, 9)]
        assert series.total == 12 and len(series.points) <= 9

    def test_nan_is_never_a_min_or_max(self, url, project, finder):
        nan = float("nan")
        values = [nan, 2.0, nan, -1.0, nan, nan, 5.0, nan, 0.5, nan, 3.0, 1.0]
        with warnings.catch_warnings():  # a backend may warn that it drops NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            run_id = self.log(url, project, metrics=[("m", v, i) for i, v in enumerate(values)]
                              + [("only_nan", nan, 0), ("only_nan", nan, 1)])
        history = finder.get_metric_history(run_id, "m")
        if not any(math.isnan(p.value) for p in history):
            pytest.skip("backend does not record NaN")
        assert [p.step for p in history] == list(range(len(values)))
        summaries = finder.get_metric_summaries([run_id])[run_id]
        m = summaries["m"]
        assert (m.min, m.max, m.last, m.last_step, m.count) == (-1.0, 5.0, 1.0, 11, 12)
        only = summaries["only_nan"]
        assert only.min is None and only.max is None and math.isnan(only.last)
        assert only.count == 2
        series = finder.get_metric_series(run_id, "m", max_points=9)
        assert [p.step for p in series.points] == [
            p.step for p in reduce_points(history, 9)]
        assert finder.find_best_run(project, "m", mode="max").id == run_id

    def test_reduction_shows_non_finite_values_and_spikes_beside_them(self, url, project,
                                                                        finder):
        """An infinity never hides a finite spike in its bucket, and a bucket holding NaN
        or an infinity returns one of them (a diverging run never looks healthy)."""
        inf, nan = float("inf"), float("nan")
        values = [math.sin(s / 40.0) for s in range(2000)]
        values[600], values[601] = inf, 100.0
        values[1200] = nan
        values[1500], values[1501] = -inf, -100.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run_id = self.log(url, project, metrics=[("m", v, i) for i, v in enumerate(values)])
        history = finder.get_metric_history(run_id, "m")
        if not any(math.isnan(p.value) for p in history):
            pytest.skip("backend does not record NaN")
        series = finder.get_metric_series(run_id, "m", max_points=41)
        assert [(p.step, repr(p.value)) for p in series.points] == [
            (p.step, repr(p.value)) for p in reduce_points(history, 41)]
        kept = {p.step: p.value for p in series.points}
        assert kept.get(601) == 100.0 and kept.get(1501) == -100.0
        assert kept.get(600) == inf and kept.get(1500) == -inf and math.isnan(kept[1200])

    def test_points_since_step_and_time(self, url, project, finder):
        logger = self.logger(url, project)
        run_id = logger.run()
        for step in range(5):
            logger.log_metrics({"a": step, "b": -step}, step)
        logger.flush()
        time.sleep(0.05)
        mark = _utc_now()
        time.sleep(0.05)
        logger.log_metrics({"a": 5, "b": -5}, 5)
        logger.finish()
        newer = finder.get_metric_points_since(run_id, after_step=2)
        assert [(p.key, p.step) for p in newer] == [("a", 3), ("a", 4), ("a", 5), ("b", 3),
                                                    ("b", 4), ("b", 5)]
        assert [(p.key, p.step) for p in finder.get_metric_points_since(
            run_id, after_time=mark)] == [("a", 5), ("b", 5)]
        only_b = finder.get_metric_points_since(run_id, keys=["b"], after_step=4)
        assert [(p.key, p.step, p.value) for p in only_b] == [("b", 5, -5.0)]
        assert len(finder.get_metric_points_since(run_id)) == 12

    # ------------------------------------------------------------------ artifacts, code
    def test_artifacts(self, url, project, finder):
        if not finder.supports("artifacts"):
            pytest.skip("backend does not declare the 'artifacts' capability")
        run_id = self.log(url, project, artifacts=[
            ("ckpt/best.pt", "model", {"epoch": 3, "métrique": [0.9]}),
            ("données/é.csv", None, None)])
        artifacts = finder.get_artifacts(run_id)
        assert all(isinstance(a, Artifact) for a in artifacts)
        assert [(a.run_id, a.path, a.data_type, a.metadata) for a in artifacts] == [
            (run_id, "ckpt/best.pt", "model", {"epoch": 3, "métrique": [0.9]}),
            (run_id, "données/é.csv", None, None)]
        assert finder.get_artifacts(self.log(url, project)) == []

    def test_fingerprints(self, url, project, finder):
        if not finder.supports("fingerprints"):
            pytest.skip("backend does not declare the 'fingerprints' capability")
        from ato.scope import Scope

        Scope.initialize_registry()
        try:
            scope = Scope()

            def model_forward(cfg):
                return cfg

            scope.trace(trace_id="model_forward")(model_forward)
            run_id = self.log(url, project)
        finally:
            Scope.initialize_registry()
        prints = finder.get_fingerprints(run_id)
        assert all(isinstance(f, Fingerprint) for f in prints)
        static = [f for f in prints if (f.trace_id, f.trace_type) == ("model_forward", "static")]
        assert len(static) == 1 and static[0].run_id == run_id
        assert isinstance(static[0].fingerprint, str) and static[0].fingerprint

    def test_stale_running_run_is_crashed(self, url, project, finder):
        if not finder.supports("heartbeat"):
            pytest.skip("backend does not declare the 'heartbeat' capability")
        logger = self.logger(url, project)
        run_id = logger.run()
        try:
            time.sleep(0.3)
            fresh = finder.find_run(run_id)
            assert fresh.status == "running" and not fresh.stale
            stale_finder = open_finder(url, stale_after=0.1)
            assert stale_finder.stale_after == 0.1
            stale = stale_finder.find_run(run_id)
            assert stale.status == "crashed" and stale.recorded_status == "running" and stale.stale
            assert isinstance(stale.heartbeat_at, datetime)
            assert [r.id for r in stale_finder.find_runs(project, status="crashed")] == [run_id]
            assert stale_finder.find_runs(project, status="running") == []
        finally:
            logger.finish()
        assert open_finder(url, stale_after=0.1).find_run(run_id).status == "completed"

    # ------------------------------------------------------------------ registry
    @fixture
    def registry(self, finder, tmp_path, monkeypatch):
        """Skips unless the backend declares ``registry``; points ``$ATO_STORE`` and
        ``$ATO_CACHE_DIR`` (Ato's artifact store and stat cache) at fresh directories."""
        if not finder.supports("registry"):
            pytest.skip("backend does not declare the 'registry' capability")
        monkeypatch.setenv("ATO_STORE", str(tmp_path / "registry-store"))
        monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "registry-cache"))
        return finder

    @staticmethod
    def _files(root, files: dict):
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    def test_registry_members(self, url, project, registry):
        logger = self.logger(url, project)
        missing = [m for m in REGISTRY_LOGGER_MEMBERS if not callable(getattr(logger, m, None))]
        assert not missing, f"the logger declares 'registry' but lacks {missing}"
        backend = registry.backend
        missing = [m for m in REGISTRY_FINDER_MEMBERS if not callable(getattr(backend, m, None))]
        assert not missing, f"the finder declares 'registry' but lacks {missing}"

    def test_dataset_versions_follow_content(self, url, project, registry, tmp_path):
        """Same bytes, same version (``created`` False); changed bytes, version N+1."""
        tree = self._files(tmp_path / "données", {"train/0.bin": b"a" * 100,
                                                   "train/1.bin": b"b" * 10, "labels.txt": b"x"})
        logger = self.logger(url, project)
        first_run = logger.run()
        v1 = logger.use_dataset("cifar", tree)
        again = logger.use_dataset("cifar", str(tree))
        logger.finish()
        assert isinstance(v1, RegistryVersion) and v1.created and not again.created
        assert (v1.project, v1.kind, v1.name, v1.version) == (project, "dataset", "cifar", 1)
        assert again.version == 1 and again.digest == v1.digest
        assert len(v1.digest) == 64 and int(v1.digest, 16) >= 0
        assert (v1.size, v1.file_count, v1.is_dir, v1.reference) == (111, 3, True, None)
        assert "latest" in v1.aliases and v1.uri == f"ato://{project}/cifar@v1?kind=dataset"
        (tree / "train/1.bin").write_bytes(b"c" * 12)
        second_run = logger.run()
        v2 = logger.use_dataset("cifar", tree, aliases=["gold"])
        logger.finish()
        assert (v2.version, v2.created, v2.size) == (2, True, 113) and v2.digest != v1.digest
        versions = registry.registry_versions("cifar", project=project)
        assert [(v.version, v.aliases) for v in versions] == [(1, ()), (2, ("gold", "latest"))]
        assert all(isinstance(v, RegistryVersion) for v in versions)
        assets = registry.registry_assets(project=project)
        assert [(a.kind, a.name, a.versions, a.latest, dict(a.aliases)) for a in assets] == [
            ("dataset", "cifar", 2, 2, {"gold": 2, "latest": 2})]
        assert registry.registry_assets(kind="model", project=project) == []
        with pytest.raises(ValueError, match="kind"):
            registry.registry_assets(kind="checkpoint")
        assert [r.run_id for r in registry.runs_using("cifar", 1, project)] == [first_run]
        users = registry.runs_using("cifar", "gold", project)
        assert [(u.run_id, u.project, u.status) for u in users] == [
            (second_run, project, "completed")]
        assert isinstance(users[0], RunUse) and isinstance(users[0].start_time, datetime)
        lineage = registry.run_lineage(second_run)
        assert isinstance(lineage, Lineage) and lineage.outputs == ()
        assert [(v.name, v.version) for v in lineage.inputs] == [("cifar", 2)]

    def test_models_aliases_and_lineage(self, url, project, registry, tmp_path):
        """A model version links to its run, config, inputs; alias moves are recorded."""
        data = self._files(tmp_path / "data", {"rows.csv": b"1,2\n3,4\n"})
        weights = self._files(tmp_path / "ckpt", {"a.pt": b"\x00weights-1", "b.pt": b"w2"})
        logger = self.logger(url, project)
        run_id = logger.run(config={"lr": 0.1, "model": {"depth": 18}})
        used = logger.use_dataset("rows", data / "rows.csv")
        m1 = logger.log_model("net", weights / "a.pt", step=10, aliases=["champion"])
        m2 = logger.log_model("net", weights / "b.pt", step=20)
        logger.finish()
        assert (m1.kind, m1.version, m1.run_id, m1.step, m1.is_dir) == ("model", 1, run_id,
                                                                        10, False)
        assert m1.store_url is not None and m1.size == len(b"\x00weights-1")
        assert (m2.version, m2.aliases) == (2, ("latest",))
        assert used.file_count == 1 and not used.is_dir
        plain = self.logger(url, project)
        plain.log_model("net", weights / "b.pt", aliases=["champion"])  # moves it, no run
        events = registry.alias_history("net", "champion", project)
        assert [(e.from_version, e.to_version, e.run_id) for e in events] == [
            (None, 1, run_id), (1, 2, None)]
        assert all(isinstance(e, AliasEvent) and isinstance(e.at, datetime) and e.actor
                   for e in events)
        assert {e.alias for e in registry.alias_history("net", project=project)} == {
            "champion", "latest"}
        made = registry.produced_by("net", "champion", project)
        assert isinstance(made, Provenance) and made.version.version == 2
        assert made.run.run_id == run_id and made.config["model"]["depth"] == 18
        assert [(v.name, v.version) for v in made.inputs] == [("rows", 1)]
        assert [(v.name, v.version) for v in registry.downstream("rows", None, project)] == [
            ("net", 1), ("net", 2)]
        lineage = registry.run_lineage(run_id)
        assert [(v.kind, v.name, v.version) for v in lineage.inputs] == [("dataset", "rows", 1)]
        assert [(v.name, v.version) for v in lineage.outputs] == [("net", 1), ("net", 2)]
        # fine-tuning: a run starts from a registered model (use_model) — an input
        tuner = self.logger(url, project)
        tuned_run = tuner.run(config={"lr": 0.01})
        base = tuner.use_model("net", "champion")
        assert (base.kind, base.name, base.version) == ("model", "net", 2)
        tuned = tuner.log_model("net-ft", weights / "a.pt")
        tuner.finish()
        made = registry.produced_by("net-ft", tuned.version, project)
        assert [(v.kind, v.name, v.version) for v in made.inputs] == [("model", "net", 2)]
        assert [u.run_id for u in registry.runs_using("net", 2, project, kind="model")] == [
            tuned_run]
        assert [(v.name, v.version) for v in registry.downstream(
            "net", "champion", project, kind="model")] == [("net-ft", tuned.version)]
        with pytest.raises(RegistryError):
            tuner.use_model("net", "no-such-alias")
        assert registry.run_lineage(self.log(url, project)) == Lineage(
            registry.find_runs(project, last=1)[0].id)

    def test_references_and_keep(self, url, project, registry, tmp_path):
        logger = self.logger(url, project)
        logger.run()
        ref = logger.use_reference("imagenet", "s3://bucket/imagenet/", etag="abc", size=10**12)
        same = logger.use_reference("imagenet", "s3://bucket/imagenet/", etag="abc",
                                    size=10**12)
        other = logger.use_reference("imagenet", "s3://bucket/imagenet/", etag="def",
                                     size=10**12)
        assert (ref.reference, ref.store_url, ref.version, same.version, other.version) == (
            "s3://bucket/imagenet/", None, 1, 1, 2)
        ckpt = tmp_path / "step.pt"
        for step in range(4):
            ckpt.write_bytes(f"step {step}".encode())
            logger.log_model("ckpt", ckpt, step=step, keep=2)
        logger.finish()
        states = [(v.version, v.state) for v in registry.registry_versions("ckpt", project)]
        assert states == [(1, "pruned"), (2, "pruned"), (3, "live"), (4, "live")]

    def test_registry_errors_name_what_is_missing(self, url, project, registry, tmp_path):
        with pytest.raises(RegistryError, match="nothing-here"):
            registry.registry_versions("nothing-here", project)
        logger = self.logger(url, project)
        model = self._files(tmp_path / "m", {"w.pt": b"w"}) / "w.pt"
        logger.log_model("net", model)
        with pytest.raises(RegistryError, match="'prod'"):
            registry.produced_by("net", "prod", project)
        with pytest.raises(RegistryError, match="version 7"):
            registry.produced_by("net", 7, project)
        with pytest.raises(RegistryError):
            registry.runs_using("net", None, project)  # a model, not a dataset
        with pytest.raises(LookupError):
            registry.alias_history("net", project=project + "-other")
        with pytest.raises(FileNotFoundError):
            logger.use_dataset("gone", tmp_path / "does-not-exist")
