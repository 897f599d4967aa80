"""SQLLogger (SPEC 5.2): runs, batched metrics, artifacts, status, fingerprints."""

import math
import time
import warnings

import pytest

from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from tests.sql.conftest import make_config


class TestRun:
    def test_seed_logging_and_querying(self, config):
        """The SEED.md logging example records everything the finder then shows."""
        logger = SQLLogger(config)
        run_id = logger.run(tags=["baseline", "resnet50", "cifar10"])
        for epoch in range(5):
            logger.log_metric("train_loss", 1.0 / (epoch + 1), step=epoch)
            logger.log_metric("val_accuracy", epoch / 10, step=epoch)
        logger.log_artifact(run_id, "checkpoints/model_best.pt", data_type="model",
                            metadata={"epoch": 4})
        logger.finish(status="completed")

        finder = SQLFinder(config)
        (run,) = finder.get_runs_in_project("proj")
        assert (run.id, run.config.model, run.status) == (run_id, "resnet50", "completed")
        assert run.tags == ["baseline", "resnet50", "cifar10"]
        assert run.structural_hash == config.get_structural_hash()
        accuracy = [m for m in run.metrics if m.key == "val_accuracy"]
        assert [m.value for m in accuracy] == [0.0, 0.1, 0.2, 0.3, 0.4]
        assert all(m.timestamp >= run.start_time for m in run.metrics)
        assert [(a.path, a.data_type, a.data_info) for a in run.artifacts] == [
            ("checkpoints/model_best.pt", "model", {"epoch": 4})]
        assert run.end_time >= run.start_time

    def test_metric_before_run_is_an_error(self, config):
        """log_metric() needs a run."""
        with pytest.raises(RuntimeError, match="before run"):
            SQLLogger(config).log_metric("x", 1, 0)

    def test_two_runs_and_two_projects(self, db_url):
        """run() again starts another run; projects are created by name once."""
        a = SQLLogger(make_config(db_url, "p1"))
        ids = [a.run(), a.run()]
        a.finish()
        b = SQLLogger(make_config(db_url, "p2"))
        b.run()
        b.finish()
        finder = SQLFinder(make_config(db_url))
        assert [r.id for r in finder.get_runs_in_project("p1")] == ids
        assert [p.name for p in finder.list_projects()] == ["p1", "p2"]
        assert finder.get_runs_in_project("nope") == []

    def test_context_manager_statuses(self, config):
        """with SQLLogger(...) ends completed, or failed and re-raises."""
        with SQLLogger(config) as ok:
            ok.log_metric("x", 1, 0)
        with pytest.raises(ZeroDivisionError):
            with SQLLogger(config) as bad:
                1 / 0
        finder = SQLFinder(config)
        assert [r.status for r in finder.get_runs_in_project("proj")] == ["completed", "failed"]
        assert bad.get_current_run_id() is None and ok.get_current_run_id() is None

    def test_log_metrics_and_nan(self, config):
        """log_metrics logs a mapping; NaN is recorded like any value, without a warning."""
        logger = SQLLogger(config)
        run_id = logger.run()
        logger.log_metrics({"a": 1, "b": 2.5}, step=3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            logger.log_metric("a", float("nan"), 4)
        logger.finish()
        history = SQLFinder(config).get_metric_history(run_id, "a")
        assert [m.step for m in history] == [3, 4]
        assert history[0].value == 1.0 and math.isnan(history[1].value)


class TestBatching:
    def test_buffered_until_flush(self, config):
        """Metrics reach the database at flush(), not at log_metric()."""
        logger = SQLLogger(config, flush_interval=60)
        run_id = logger.run()
        logger.log_metric("loss", 1.0, 0)
        finder = SQLFinder(config)
        assert finder.get_metric_history(run_id, "loss") == []
        assert logger.flush() == 1
        assert len(finder.get_metric_history(run_id, "loss")) == 1
        logger.finish()

    def test_flushed_by_time(self, config):
        """The background thread writes within the flush interval."""
        logger = SQLLogger(config, flush_interval=0.05)
        run_id = logger.run()
        logger.log_metric("loss", 1.0, 0)
        finder = SQLFinder(config)
        deadline = time.time() + 5
        while not finder.get_metric_history(run_id, "loss") and time.time() < deadline:
            time.sleep(0.02)
        assert len(finder.get_metric_history(run_id, "loss")) == 1
        logger.finish()

    def test_flushed_by_count(self, config):
        """A full buffer is written at once."""
        logger = SQLLogger(config, flush_interval=60, flush_count=10)
        run_id = logger.run()
        for i in range(25):
            logger.log_metric("loss", i, i)
        assert len(SQLFinder(config).get_metric_history(run_id, "loss")) == 20
        logger.finish()
        assert len(SQLFinder(config).get_metric_history(run_id, "loss")) == 25

    def test_summaries_track_latest_and_extremes(self, config):
        """Per-run summaries hold the latest (by step), min, max and count across flushes."""
        logger = SQLLogger(config, flush_interval=60)
        run_id = logger.run()
        for step, value in [(0, 0.5), (2, 0.9), (1, 0.1)]:
            logger.log_metric("acc", value, step)
        logger.flush()
        logger.log_metric("acc", 0.3, 1)
        logger.log_metric("acc", 0.7, 3)
        logger.finish()
        s = SQLFinder(config).metric_summaries([run_id], ["acc"])[run_id]["acc"]
        assert s == {"latest": 0.7, "latest_step": 3, "min": 0.1, "max": 0.9, "steps": 5}


class TestFingerprints:
    def test_trace_statistics_count_code_versions(self, db_url):
        """scope.trace fingerprints are stored with each run and counted per project."""
        from ato.scope import Scope

        versions = []
        for variant in range(2):
            Scope.initialize_registry()
            scope = Scope()
            namespace = {}
            exec(f"def model_forward(cfg):\n    return {variant}\n", namespace)
            scope.trace(trace_id="model_forward")(namespace["model_forward"])

            @scope.runtime_trace(trace_id="output")
            def step(cfg):
                return [1, 2]

            logger = SQLLogger(make_config(db_url))
            versions.append(logger.run())
            step()
            logger.finish()
        finder = SQLFinder(make_config(db_url))
        stats = finder.get_trace_statistics("proj", trace_id="model_forward")
        assert stats == {"project_name": "proj", "trace_id": "model_forward",
                         "static_trace_versions": 2, "runtime_trace_versions": 0}
        assert finder.get_trace_statistics("proj", "output")["runtime_trace_versions"] == 1
        same = finder.find_similar_runs_by_trace(versions[0], "output", "runtime")
        assert [r.id for r in same] == [versions[1]]
        assert finder.get_trace_statistics("nope", "x") == {"error": "Project not found"}


class TestMetricInputs:
    """A step or value the database cannot hold is refused at log_metric, naming the metric
    and the step; it never reaches a flush, so no good point and no run end is lost."""

    @pytest.mark.parametrize("step", [2**64, 2**70, -(2**63) - 1, 2.7, -0.5, float("inf"),
                                      float("nan"), "3", True, None, [1]])
    def test_bad_step_refused_at_the_call(self, config, step):
        from ato.tracking import MetricError

        with SQLLogger(config, flush_interval=60) as logger:
            for i in range(50):
                logger.log_metric("loss", 1.0 / (i + 1), i)
            with pytest.raises(MetricError, match="'loss'.*step"):
                logger.log_metric("loss", 1.0, step)
            logger.log_metric("loss", 9.0, 50)  # still works
        (run,) = SQLFinder(config).find_runs()
        assert run.status == "completed"
        assert [m.step for m in run.metrics] == list(range(51))

    @pytest.mark.parametrize("value", [10**400, "x", "1.0", b"1", None, True])
    def test_bad_value_refused(self, config, value):
        from ato.tracking import MetricError

        with SQLLogger(config) as logger:
            with pytest.raises(MetricError, match="'acc'.*value"):
                logger.log_metric("acc", value, 1)

    def test_integral_float_and_numpy_steps_accepted(self, config):
        np = pytest.importorskip("numpy")
        with SQLLogger(config) as logger:
            logger.log_metric("m", 1, 3.0)
            logger.log_metric("m", np.float32(2.5), np.int64(4))
            logger.log_metric("m", 1.0, np.float64(5.0))
        (run,) = SQLFinder(config).find_runs()
        assert [(m.step, type(m.step)) for m in run.metrics] == [(3, int), (4, int), (5, int)]

    def test_the_range_the_backend_holds(self, config):
        """A signed 64-bit step on both databases (PostgreSQL's column is BIGINT since
        schema 9): a step counting tokens passes 2^31 in a long run."""
        from ato.tracking import MetricError

        with SQLLogger(config) as logger:
            lo, hi = -(2**63), 2**63 - 1
            logger.log_metric("m", 3.0, 2**40)
            logger.log_metric("m", 1.0, lo)
            logger.log_metric("m", 2.0, hi)
            with pytest.raises(MetricError, match="out of range"):
                logger.log_metric("m", 1.0, hi + 1)
        (run,) = SQLFinder(config).find_runs()
        assert sorted(m.step for m in run.metrics) == [lo, 2**40, hi]
        summary = SQLFinder(config).get_metric_summaries([run.id], ["m"])[run.id]["m"]
        assert (summary.last_step, summary.last) == (hi, 2.0)

    def test_a_nul_in_a_name_is_refused_at_the_call(self, config):
        """PostgreSQL text cannot hold NUL: such a name reached the flush and cost the
        good points written with it; it is refused at the call on every database."""
        from ato.tracking import MetricError

        with SQLLogger(config) as logger:
            logger.log_metric("good", 1.0, 0)
            with pytest.raises(MetricError, match="NUL character"):
                logger.log_metric("bad\x00key", 1.0, 1)
            logger.log_metric("good", 2.0, 2)
        (run,) = SQLFinder(config).find_runs()
        assert [(m.key, m.step) for m in run.metrics] == [("good", 0), ("good", 2)]

    def test_log_metrics_keeps_the_good_ones_after_a_bad_one(self, config):
        from ato.tracking import MetricError

        with SQLLogger(config) as logger:
            with pytest.raises(MetricError, match="metric 'b'.*; metric 'd'"):
                logger.log_metrics({"a": 1.0, "b": "x", "c": 2.0, "d": None, "e": 3}, step=1)
        (run,) = SQLFinder(config).find_runs()
        assert sorted((m.key, m.value) for m in run.metrics) == [("a", 1.0), ("c", 2.0),
                                                                 ("e", 3.0)]

    def test_a_poisoned_buffer_drops_only_the_bad_row(self, config, capfd):
        """Defence in depth: a row no check let in costs that row only; the good points
        and the run's end are recorded, and later calls work."""
        logger = SQLLogger(config, flush_interval=60)
        logger.run()
        for i in range(100):
            logger.log_metric("loss", float(i), i)
        logger._buffer.append((logger._run_id, "loss", 1.0, 2**70, 0.0))
        logger.log_metric("loss", 5.0, 100)
        assert logger.flush() == 101
        logger.log_metric("loss", 6.0, 101)
        logger._buffer.append((logger._run_id, "loss", 1.0, 2**70, 0.0))
        logger.finish()
        assert "dropped 1 metric point" in capfd.readouterr().err
        (run,) = SQLFinder(config).find_runs()
        assert run.status == "completed"
        assert [m.step for m in run.metrics] == list(range(102))
