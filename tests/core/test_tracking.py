"""ato.tracking without any backend installed: the series reduction, the where grammar,
opening by URL and the facade's capability handling."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ato.errors import PluginNotInstalledError, UnknownPluginError
from ato.plugins import hookimpl
from ato.tracking import (
    CapabilityError,
    MetricPoint,
    Run,
    TrackerProtocolError,
    WhereError,
    bucket_width,
    flatten,
    key_segment,
    matches,
    open_finder,
    open_logger,
    parse_where,
    reduce_points,
    tracker_config,
    url_of,
)


def points(values, steps=None):
    steps = range(len(values)) if steps is None else steps
    return [MetricPoint(1, "m", float(v), s) for v, s in zip(values, steps)]


class TestReduce:
    def test_short_series_is_returned_whole(self):
        series = points([3, 1, 2])
        assert reduce_points(series, 9) == series and reduce_points(series, None) == series

    def test_buckets_keep_min_max_and_last(self):
        # 11 points over steps 0..10, max_points 9 -> at most B = 2 buckets: the width is
        # 8, the smallest power of two with 10 // w - 0 // w + 1 <= 2, so steps 0..7 are
        # bucket 0 and 8..10 bucket 1.
        series = points([0, 5, -3, 2, 2, 1, 7, 7, -1, 4, 6])
        kept = reduce_points(series, 9)
        assert [p.step for p in kept] == [0, 2, 6, 7, 8, 10]
        # bucket 0: min -3@2, max 7@6 (earliest of the tie), last 7@7; bucket 1: min -1@8,
        # max and last 6@10; plus the first point.

    def test_buckets_are_aligned_powers_of_two_also_across_zero(self):
        assert bucket_width(0, 10, 2) == 8 and bucket_width(-1, 0, 2) == 1
        assert bucket_width(-3, 12, 2) == 16  # -3 // 16 = -1, 12 // 16 = 0
        rng = random.Random(3)
        for _ in range(300):
            a = rng.randint(-10**6, 10**6)
            b = a + rng.choice([0, 1, 2, 5, 100, 10**4, 10**7])
            n = rng.randint(2, 400)
            w = bucket_width(a, b, n)
            assert w & (w - 1) == 0 and b // w - a // w + 1 <= n
            assert w == 1 or b // (w // 2) - a // (w // 2) + 1 > n  # the smallest
        # every point lands in its aligned bucket, whatever the first step
        series = points([1, 9, 2, 8, 3, 7, 4, 6, 5, 0], steps=range(-5, 5))
        kept = reduce_points(series, 9)  # B = 2, width 8: steps -8..-1 and 0..7
        assert [(p.step, p.value) for p in kept] == [
            (-5, 1.0), (-4, 9.0), (-1, 3.0), (0, 7.0), (4, 0.0)]

    def test_an_infinity_hides_no_spike_and_each_bucket_shows_a_non_finite(self):
        inf, nan = float("inf"), float("nan")
        values = [0.5] * 64
        values[5], values[6] = inf, 100.0  # a finite spike beside an infinity
        values[20], values[21] = -inf, -100.0
        values[40], values[41], values[45] = nan, inf, -3.0
        kept = reduce_points(points(values), 9)  # B = 2: steps 0..31 and 32..63
        got = [(p.step, p.value) for p in kept]
        assert (6, 100.0) in got and (21, -100.0) in got and (45, -3.0) in got
        assert (5, inf) in got  # the first non-finite point of bucket 0
        assert [s for s, v in got if v != v] == [40]  # and of bucket 1: the NaN
        assert (20, -inf) not in got and (41, inf) not in got and len(kept) <= 9

    def test_step_bounds_are_64_bit_ints(self, minimal):
        finder = open_finder("minimal://x")
        for bad, match in [({"min_step": 1.5}, "min_step must be an int step or None, not "
                            "float 1.5"), ({"max_step": True}, "max_step must be an int"),
                           ({"min_step": -10**30}, "min_step must be within"),
                           ({"max_step": 2**63}, "max_step must be within")]:
            with pytest.raises(ValueError, match=match):
                finder.get_metric_series(1, "m", **bad)
            with pytest.raises(ValueError, match=match):
                finder.get_metric_series_columns([1], "m", **bad)
        assert finder.get_metric_series(1, "m", min_step=-2**63, max_step=2**63 - 1).total == 12

    def test_errors_name_the_argument(self):
        with pytest.raises(ValueError, match="at least 9"):
            reduce_points(points([1] * 10), 4)
        with pytest.raises(ValueError, match="int"):
            reduce_points(points([1] * 10), 10.5)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.floats(width=32), min_size=1, max_size=300),
           st.integers(min_value=9, max_value=60), st.integers(min_value=1, max_value=4))
    def test_guarantees(self, values, max_points, stride):
        series = points(values, [i // stride for i in range(len(values))])
        kept = reduce_points(series, max_points)
        assert len(kept) <= max_points
        assert [id(p) for p in kept] == [id(p) for p in reduce_points(series, max_points)]
        index = {id(p): i for i, p in enumerate(series)}
        positions = [index[id(p)] for p in kept]  # a subsequence, in order, no repeats
        assert positions == sorted(set(positions))
        assert kept[0] is series[0] and kept[-1] is series[-1]
        finite = [v for v in values if math.isfinite(v)]
        kept_finite = [p.value for p in kept if math.isfinite(p.value)]
        if finite:  # every finite extreme survives, whatever infinities are beside it
            assert min(kept_finite) == min(finite) and max(kept_finite) == max(finite)
        if len(finite) < len(values):  # and a non-finite value is never reduced away
            assert len(kept_finite) < len(kept)
        if len(series) <= max_points:
            assert kept == series


class TestWhere:
    CONFIG = {"lr": 0.001, "name": "resnet", "model": {"depth": 50, "conv.1": {"k": 3}},
              "amp": True, "note": None, "s": "0.5", "layers": [64, 128], "0": "zero",
              "learning rate": 2, "big": float("inf"), "bad": float("nan"), "é": "ü"}

    @pytest.mark.parametrize("expr, expected", [
        ("lr < 0.01", True), ("lr == 0.001", True), ("model.depth >= 50.0", True),
        ("name == 'resnet'", True), ("name != 'vit'", True), ("name < 'z'", True),
        ("amp == True", True), ("amp != False", True), ("amp == 1", False),
        ("note == None", True), ("note != None", False), ("s < 1", False),
        ("missing == 1", False), ("missing != 1", False), ("missing != None", False),
        # every comparison is true or false, so not is the exact complement
        ("not missing == 1", True), ("not s < 1", True),
        ("missing == 1 or lr > 0", True), ("not (lr > 0 and name == 'x')", True),
        ("model.depth.x == 1", False), ("model == 1", False),
        # quoted segments, list indexes, digit keys
        ('"learning rate" == 2', True), ("model.\"conv.1\".k == 3", True),
        ("layers.0 == 64", True), ("layers.1 > 100", True), ("layers.2 == 1", False),
        ("0 == 'zero'", True), ("é == 'ü'", True),
        # inf is a number; nan is never ordered, and != every number
        ("big > 1e308", True), ("big == inf", True), ("bad == nan", True),
        ("bad != 1", True), ("bad < 1", False), ("bad >= 1", False), ("lr != nan", True),
        ("bad != nan", False), ("lr == nan", False), ("lr < nan", False),
        ("name != nan", False),
    ])
    def test_typed(self, expr, expected):
        assert matches(parse_where(expr), self.CONFIG) is expected

    def test_works_on_an_adict(self):
        from ato.adict import ADict

        assert matches(parse_where("model.depth > 10"), ADict(model=ADict(depth=11)))

    @pytest.mark.parametrize("expr, message", [
        ("", "empty"), ("lr <", "position 4: expected a value"),
        ("(lr < 1", "missing ')'"), ("lr < [1]", "compare with a number"),
        ("amp < True", "only be compared with == or !="), ("lr 1", "expected a comparison"),
        ("a..b == 1", "empty key segment"), ("a. == 1", "ends with '.'"),
        ("'open == 1", "unterminated string"),
    ])
    def test_errors_name_the_position(self, expr, message):
        with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace(".", r"\.")):
            parse_where(expr)


class Minimal:
    """A finder with only the required members and no capabilities."""

    url = "minimal://x"
    stale_after = 60.0

    def __init__(self):
        self.history = points([5, 1, 9, 2, 2, 3, 8, 0, 4, 7, 6, 1])

    def list_projects(self):
        return []

    def find_project(self, name):
        return None

    def find_run(self, run_id):
        return Run(run_id, "p", {}) if run_id == 1 else None

    def find_runs(self, project_name=None, **query):
        self.query = query
        return [Run(1, "p", {})]

    def metric_keys(self, run_ids):
        return ["m"]

    def get_metric_summaries(self, run_ids, keys=None):
        return {r: {} for r in run_ids}

    def get_metric_history(self, run_id, key):
        return list(self.history) if key == "m" else []

    def find_best_run(self, project_name, metric_key, mode="max"):
        return {"error": "Project not found"}


class Incomplete:
    url = "incomplete://x"

    def find_run(self, run_id):
        return None


class MinimalTracker:
    PLUGIN_NAME = "minimal"
    schemes = ("minimal", "incomplete")

    @classmethod
    def logger(cls, config, **options):
        return Incomplete()

    @classmethod
    def finder(cls, config, **options):
        return Incomplete() if url_of(config).startswith("incomplete") else Minimal()


class MinimalPlugin:
    @hookimpl
    def ato_register_trackers(self):
        return MinimalTracker


@pytest.fixture
def minimal():
    from ato.plugins import manager

    pm = manager.plugin_manager()
    pm.register(MinimalPlugin(), name="minimal-test")
    manager._registries.clear()
    yield
    pm.unregister(name="minimal-test")
    manager._registries.clear()


class TestOpening:
    def test_url_of_and_config(self):
        config = tracker_config("jsonl://d", project="p")
        assert url_of(config) == "jsonl://d" and config.experiment.project_name == "p"
        assert url_of("sqlite:///x.db") == "sqlite:///x.db"
        with pytest.raises(KeyError, match="experiment.sql.db_path"):
            url_of({"experiment": {"project_name": "p"}})

    def test_unknown_scheme_is_one_clear_error(self):
        with pytest.raises(UnknownPluginError, match="'nosuch'"):
            open_finder("nosuch://x")

    def test_first_party_scheme_names_its_distribution(self, monkeypatch):
        from ato.plugins import manager

        # As if ato-sql were not installed: no SQL tracker, no ato-sql plugin record.
        records = [r for r in manager.plugin_records() if r.distribution != "ato-sql"]
        monkeypatch.setitem(manager._registries, "tracker", manager.Seam("tracker"))
        monkeypatch.setattr(manager, "plugin_records", lambda: records)
        real_version = manager.metadata.version

        def version(name):  # nor its metadata: "not installed" is asked, never inferred
            if name == "ato-sql":
                raise manager.metadata.PackageNotFoundError(name)
            return real_version(name)

        monkeypatch.setattr(manager.metadata, "version", version)
        with pytest.raises(PluginNotInstalledError, match="pip install ato-sql"):
            open_logger("postgresql://h/db", project="p")

    def test_missing_members_name_backend_and_members(self, minimal):
        with pytest.raises(TrackerProtocolError, match=r"'minimal' .*MinimalTracker\) "
                           r"returned a finder that lacks list_projects, find_project"):
            open_finder("incomplete://x")
        with pytest.raises(TrackerProtocolError, match="logger that lacks run, "):
            open_logger("minimal://x", project="p")

    @pytest.mark.parametrize("role", ["finder", "logger", "coordinator"])
    def test_a_backend_that_raises_is_named(self, role):
        """A backend's finder()/logger()/coordinator() that raises a bare exception is the
        plugin's fault: one PluginError naming the plugin, its class and the URL."""
        from ato.errors import PluginError
        from ato.plugins import manager
        from ato.tracking import open_coordinator

        class Raising:
            PLUGIN_NAME = "raising"
            schemes = ("raising",)

            @classmethod
            def logger(cls, config, **options):
                raise RuntimeError("no connection pool")

            finder = coordinator = logger

        class Plugin:
            @hookimpl
            def ato_register_trackers(self):
                return Raising

        pm = manager.plugin_manager()
        pm.register(Plugin(), name="raising-test")
        manager._registries.clear()
        try:
            opener = {"finder": open_finder, "coordinator": open_coordinator,
                      "logger": lambda url: open_logger(url, project="p")}[role]
            with pytest.raises(PluginError) as info:
                opener("raising://x")
        finally:
            pm.unregister(name="raising-test")
            manager._registries.clear()
        assert str(info.value).startswith(f"opening a tracker {role} for raising://x: plugin "
                                          f"'raising-test' (registered in-process, ")
        assert str(info.value).endswith(f"Raising.{role}() raised RuntimeError: no "
                                        f"connection pool")
        assert isinstance(info.value.__cause__, RuntimeError)

    def test_project_only_with_a_url(self, minimal):
        with pytest.raises(TypeError, match="project"):
            open_logger(tracker_config("minimal://x"), project="p")


class TestCapabilities:
    def test_undeclared_capabilities_degrade_with_a_message(self, minimal):
        finder = open_finder("minimal://x")
        assert finder.capabilities == frozenset() and not finder.supports("where")
        for call, capability in ((lambda: finder.find_runs(where="lr < 1"), "where"),
                                 (lambda: finder.get_artifacts(1), "artifacts"),
                                 (lambda: finder.get_fingerprints(1), "fingerprints")):
            with pytest.raises(CapabilityError, match=f"'minimal' tracker backend "
                               f"\\(minimal://x\\) cannot .*'{capability}' capability"):
                call()
        with pytest.raises(ValueError, match="unknown capability"):
            finder.supports("telepathy")

    def test_where_errors_before_the_capability(self, minimal):
        with pytest.raises(WhereError):
            open_finder("minimal://x").find_runs(where="lr <")

    def test_series_and_since_fall_back_to_the_history(self, minimal):
        finder = open_finder("minimal://x")
        series = finder.get_metric_series(1, "m", max_points=9)
        assert series.total == 12 and series.reduced and len(series.points) <= 5
        assert [p.step for p in series.points] == [
            p.step for p in reduce_points(finder.backend.history, 9)]
        window = finder.get_metric_series(1, "m", min_step=2, max_step=4)
        assert [p.step for p in window.points] == [2, 3, 4] and not window.reduced
        assert [p.step for p in finder.get_metric_points_since(1, after_step=6)] == [7, 8, 9, 10, 11]
        assert finder.get_metric_points_since(1, keys=["other"]) == []

    def test_find_runs_arguments_are_checked_once_for_every_backend(self, minimal):
        finder = open_finder("minimal://x")
        for bad in ({"order_by": "lr"}, {"status": "finished"}, {"limit": -1},
                    {"last": True}, {"status": ["completed", "nope"]}):
            with pytest.raises(ValueError):
                finder.find_runs("p", **bad)
        finder.find_runs("p", tags=("a",), status=["completed", "crashed"], limit=3)
        assert finder.backend.query == {"tags": ["a"], "status": ["completed", "crashed"],
                                        "order_by": "id", "descending": False, "limit": 3,
                                        "last": None}
        with pytest.raises(ValueError, match="mode"):
            finder.find_best_run("p", "m", mode="best")


def test_every_tracking_module_imports_without_pytest_or_sql(tmp_path):
    """Tools that import every module of ``ato`` (the subset checks) can import the
    conformance suite even where pytest, SQLAlchemy and ato-sql are absent."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import importlib, importlib.abc, pkgutil, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest", "sqlalchemy") or \\
                        name.startswith("ato.db_routers"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        import ato.tracking
        names = [m.name for m in pkgutil.walk_packages(ato.tracking.__path__, "ato.tracking.")]
        for name in names:
            importlib.import_module(name)
        print(sorted(names))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "ato.tracking.conformance.suite" in proc.stdout


# ------------------------------------------------------------------ flat keys
_segments = st.text(st.characters(codec="utf-8"), max_size=8)
_configs = st.recursive(st.integers(), lambda inner: st.dictionaries(_segments, inner,
                                                                     min_size=1, max_size=4),
                        max_leaves=12)


@given(_segments)
def test_a_key_segment_reads_back_as_itself(name):
    from ato.tracking.where import split_key

    assert split_key(key_segment(name)) == [name]
    assert split_key("a." + key_segment(name) + ".b") == ["a", name, "b"]


@given(st.dictionaries(_segments, _configs, max_size=4))
def test_flat_keys_never_collide_and_name_their_path(config):
    """Two different paths never share a flat key ({"a.b": 3, "a": {"b": 4}} kept both,
    showing 4 for "a.b"), and each flat key is what --where reads as that path."""
    from ato.tracking.where import split_key

    def leaves(node, path=()):
        if isinstance(node, dict) and node:
            for k, v in node.items():
                yield from leaves(v, (*path, k))
        else:
            yield path, node

    expected = dict(leaves(config)) if config else {}
    flat = flatten(config)
    assert len(flat) == len(expected)
    assert {tuple(split_key(k)): v for k, v in flat.items()} == expected


def test_plain_keys_stay_plain_and_the_others_are_quoted():
    assert flatten({"model": {"depth": 50, "conv.1": {"k": 3}}, "learning rate": 0.1,
                    "a.b": 3, "a": {"b": 4}, "or": 1, "1st": 2, "학습률": 3}) == {
        "model.depth": 50, 'model."conv.1".k': 3, '"learning rate"': 0.1,
        '"a.b"': 3, "a.b": 4, '"or"': 1, "1st": 2, "학습률": 3}
    assert matches(parse_where('"a.b" == 3 and a.b == 4'), {"a.b": 3, "a": {"b": 4}})


def test_the_tracker_suite_refuses_a_url_no_backend_serves_before_any_test(tmp_path):
    """`--tracker-url` with an unknown scheme is one usage error, not one per test."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "ato.tracking.conformance",
                           "--pyargs", "ato.tracking.conformance", "-p", "no:cacheprovider",
                           "--tracker-url=nosuch:///{tmp}/t.db"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert ("ERROR: --tracker-url=nosuch:///{tmp}/t.db: tracking to 'nosuch' URLs: no "
            "installed plugin provides 'nosuch'") in proc.stderr
    assert "passed" not in proc.stdout and "failed" not in proc.stdout


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("42", 42), (str(2**63 - 1), 2**63 - 1),
    ("0", None), ("01", None), ("+3", None), (" 3", None), ("3 ", None), ("1_0", None),
    ("\uff13", None), ("-1", None), ("", None), (str(2**63), None), ("1e3", None),
])
def test_parse_run_id_takes_plain_digits_a_database_holds(text, expected):
    """One rule for `ato runs` and the dashboard: int() took '+3', ' 3', '1_0' and a
    full-width 3 as ids."""
    from ato.tracking import parse_run_id

    assert parse_run_id(text) == expected
