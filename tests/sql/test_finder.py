"""SQLFinder (SPEC 5.3) and typed config queries, on SQLite and PostgreSQL."""

import pytest

from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.db_routers.sql.where import WhereError
from tests.sql.conftest import make_config


def log_run(url, project="proj", metrics=(), tags=None, status="completed", **config):
    logger = SQLLogger(make_config(url, project, **config))
    run_id = logger.run(tags=tags)
    for key, value, step in metrics:
        logger.log_metric(key, value, step)
    logger.finish(status)
    return run_id


class TestBestRun:
    def test_peak_value_wins_across_steps(self, db_url):
        """The best single logged value wins, not the last one; other projects are ignored."""
        peak = log_run(db_url, metrics=[("acc", 0.95, 1), ("acc", 0.60, 2)])
        log_run(db_url, metrics=[("acc", 0.90, 1), ("acc", 0.90, 2)])
        log_run(db_url, "other", metrics=[("acc", 0.99, 1)])
        finder = SQLFinder(make_config(db_url))
        assert finder.find_best_run("proj", "acc", mode="max").id == peak

    def test_min_mode_errors_and_validation(self, db_url):
        """min picks the lowest value; missing project/metric give the seed's dicts."""
        low = log_run(db_url, metrics=[("loss", 0.1, 5)])
        log_run(db_url, metrics=[("loss", 0.5, 5)])
        finder = SQLFinder(make_config(db_url))
        assert finder.find_best_run("proj", "loss", mode="min").id == low
        assert finder.find_best_run("nope", "loss") == {"error": "Project not found"}
        assert finder.find_best_run("proj", "nope") == {"error": "Run not found"}
        with pytest.raises(ValueError, match="mode must be 'max' or 'min', not 'best'"):
            finder.find_best_run("proj", "loss", mode="best")

    def test_best_config_has_attribute_access(self, db_url):
        """best_run.config.lr works (ADict config)."""
        log_run(db_url, metrics=[("acc", 1, 0)], lr=0.5, model={"depth": 50})
        best = SQLFinder(make_config(db_url)).find_best_run("proj", "acc")
        assert best.config.lr == 0.5 and best.config.model.depth == 50


class TestSimilarAndFilters:
    def test_similar_runs_by_structure(self, db_url):
        """Same keys and types are similar, in any project; the run itself is excluded."""
        a = log_run(db_url, lr=0.1, model="a")
        b = log_run(db_url, "other", lr=0.2, model="b")
        log_run(db_url, lr="0.1", model="a")
        finder = SQLFinder(make_config(db_url))
        assert [r.id for r in finder.find_similar_runs(a)] == [b]
        assert finder.find_similar_runs(999) == []

    def test_tags_and_status(self, db_url):
        """Runs filter by all given tags and by status."""
        a = log_run(db_url, tags=["x", "y"])
        b = log_run(db_url, tags=["x"], status="failed")
        finder = SQLFinder(make_config(db_url))
        assert [r.id for r in finder.find_runs("proj", tags=["x"])] == [a, b]
        assert [r.id for r in finder.find_runs("proj", tags=["x", "y"])] == [a]
        assert [r.id for r in finder.find_runs("proj", status="failed")] == [b]

    def test_stale_running_run_is_crashed(self, db_url):
        """A running run whose heartbeat is older than stale_after is reported crashed."""
        logger = SQLLogger(make_config(db_url), handle_signals=False, heartbeat_interval=3600)
        run_id = logger.run()
        logger._stop.set()  # simulate a dead process: no more heartbeats
        import time

        time.sleep(0.3)
        finder = SQLFinder(make_config(db_url), stale_after=0.2)
        assert finder.find_run(run_id).status == "crashed"
        assert [r.id for r in finder.find_runs(status="crashed")] == [run_id]
        assert SQLFinder(make_config(db_url)).find_run(run_id).status == "running"
        logger.finish()


class TestRunRows:
    """find_run_rows (the dashboard's runs table) answers exactly what find_runs does."""

    @staticmethod
    def as_row(run) -> dict:
        return {"id": run.id, "project_name": run.project_name, "status": run.status,
                "recorded_status": run.recorded_status, "tags": run.tags,
                "start_time": run.start_time, "end_time": run.end_time,
                "heartbeat_at": run.heartbeat_at, "structural_hash": run.structural_hash,
                "config": run.config.to_dict()}

    def same(self, rows, runs) -> bool:
        # NaN != NaN: compare the JSON-ish text (repr writes nan the same on both sides)
        return repr(rows) == repr([self.as_row(r) for r in runs])

    def test_rows_equal_the_runs_with_every_filter(self, db_url):
        """Non-finite floats, a user dict that looks like the tracker's own markers, a
        stale running run shown as crashed; tags, status, where and project filters."""
        nan, inf = float("nan"), float("inf")
        a = log_run(db_url, tags=["x"], lr=0.1, model={"name": "r", "depth": 18},
                    bound=inf, low=-inf, gap=nan, grid=[1.5, inf, {"k": nan}])
        b = log_run(db_url, tags=["x", "y"], status="failed", lr=0.01,
                    weird={"$numberDouble": "Infinity"}, nested={"$dict": {"a": 1}}, empty={})
        log_run(db_url, "other", lr=0.5, note="<script>")
        logger = SQLLogger(make_config(db_url, lr=0.2), handle_signals=False,
                           heartbeat_interval=3600)
        stale = logger.run(tags=["x"])
        logger._stop.set()  # no more heartbeats: the run goes stale
        import time

        time.sleep(0.3)
        finder = SQLFinder(make_config(db_url), stale_after=0.2)
        for args, kwargs in [((), {}), (("proj",), {}), (("proj",), {"tags": ["x"]}),
                             (("proj",), {"tags": ["x", "y"]}), ((), {"status": "failed"}),
                             ((), {"status": "crashed"}), ((), {"where": "lr < 0.2"}),
                             (("nope",), {})]:
            rows = finder.find_run_rows(*args, **kwargs)
            assert self.same(rows, finder.find_runs(*args, **kwargs)), (args, kwargs)
        rows = {r["id"]: r for r in finder.find_run_rows()}
        assert rows[stale]["status"] == "crashed" and rows[stale]["recorded_status"] == "running"
        assert rows[a]["config"]["bound"] == inf and rows[a]["config"]["gap"] != rows[a]["config"]["gap"]
        assert rows[b]["config"]["weird"] == {"$numberDouble": "Infinity"}
        assert rows[b]["config"]["nested"] == {"$dict": {"a": 1}}
        logger.finish()

    def test_a_malformed_where_is_the_same_error(self, db_url):
        log_run(db_url, lr=0.1)
        finder = SQLFinder(make_config(db_url))
        with pytest.raises(WhereError, match="lr <"):
            finder.find_run_rows(where="lr <")


class TestWhere:
    @pytest.fixture
    def runs(self, db_url):
        ids = {
            "small": log_run(db_url, lr=0.001, model={"name": "resnet50", "depth": 50}, amp=True),
            "big": log_run(db_url, lr=0.1, model={"name": "resnet101", "depth": 101}, amp=False),
            "text": log_run(db_url, lr="0.01", model={"name": "vit", "depth": None}, amp=None),
        }
        return SQLFinder(make_config(db_url)), ids

    @pytest.mark.parametrize("expr, names", [
        ("lr < 0.01", ["small"]),
        ("lr >= 0.001", ["small", "big"]),
        ("model.name == 'resnet50'", ["small"]),
        ("model.name != 'resnet50'", ["big", "text"]),
        ("lr == '0.01'", ["text"]),
        ("model.depth >= 50 and model.name == %resnet101%", ["big"]),
        ("lr > 0.05 or model.name == 'vit'", ["big", "text"]),
        ("not (lr < 0.01) and model.depth > 0", ["big"]),
        ("amp == True", ["small"]),
        ("amp == False", ["big"]),
        ("model.depth == None", ["text"]),
        ("missing.key == 1", []),
    ])
    def test_typed_queries(self, runs, expr, names):
        """Comparisons are typed: numbers with numbers, strings with strings."""
        finder, ids = runs
        assert [r.id for r in finder.find_runs("proj", where=expr)] == [ids[n] for n in names]

    @pytest.mark.parametrize("expr, message", [
        ("lr <", "at position 4: expected a value"),
        ("lr < 1 and", "at position 10: expected a config key"),
        ("(lr < 1", "missing ')'"),
        ("lr < resnet", "'resnet' is not a value (quote strings: 'resnet')"),
        ("amp > True", "True can only be compared with == or !="),
        ("lr < 1; DROP TABLE experiments", "is not a value"),
    ])
    def test_errors(self, runs, expr, message):
        """Malformed expressions name the position and the problem."""
        finder, _ = runs
        with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")):
            finder.find_runs("proj", where=expr)


class TestHistory:
    def test_metric_history_in_step_order(self, db_url):
        """get_metric_history returns one metric of one run by step."""
        run_id = log_run(db_url, metrics=[("loss", 3, 2), ("loss", 1, 0), ("acc", 5, 0)])
        history = SQLFinder(make_config(db_url)).get_metric_history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 1.0), (2, 3.0)]


@pytest.mark.parametrize("run_id", [2**63, 2**70, 0, -1])
def test_find_run_of_an_id_no_database_holds_is_none(db_url, run_id):
    """SQLite raised OverflowError for an id past 2^63 - 1."""
    from ato.tracking import open_finder

    log_run(db_url)
    assert open_finder(db_url).find_run(run_id) is None
    assert open_finder(db_url).find_run(1) is not None
