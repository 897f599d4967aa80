"""Every value round-trips and every stored key can be queried, with the same result on
SQLite and PostgreSQL (issue 8 §4): non-finite floats in configs, tags, artifact metadata
and metrics; keys with quotes, dots, spaces, digits, backslashes, characters outside
ASCII; strict JSON from ``ato runs --json``."""

import json
import math
import shutil
import subprocess
import sys

import pytest

from ato.db_routers.sql import values
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.db_routers.sql.where import WhereError, parse_where
from tests.sql.conftest import make_config
from tests.sql.test_finder import log_run

INF, NAN = math.inf, math.nan


def same(a, b) -> bool:
    """Equality that also holds for NaN at the same place, and tells 1 from 1.0 and True."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def log(url, tags=None, metrics=(), artifact=None, **config):
    logger = SQLLogger(make_config(url, **config), handle_signals=False)
    run_id = logger.run(tags=tags)
    for key, value, step in metrics:
        logger.log_metric(key, value, step)
    if artifact is not None:
        logger.log_artifact(run_id, "model.pt", "model", artifact)
    logger.finish()
    return run_id


# --------------------------------------------------------------------------- the encoding
@pytest.mark.parametrize("value", [
    INF, -INF, NAN, 0.0, -0.0, 1e308, 5e-324, 1, True, None, "Infinity", "NaN",
    [INF, [NAN, {"x": -INF}]],
    {"$numberDouble": "Infinity"},            # a user dict that looks like the marker
    {"$numberDouble": INF},
    {"$dict": {"a": 1}},                       # and one that looks like the escape
    {"$dict": 1, "b": 2},                      # two keys: never ambiguous, kept as is
    {"$numberDouble": "NaN", "other": 1},
    {"nested": {"$numberDouble": {"$dict": NAN}}},
])
def test_encoding_round_trips_exactly(value):
    """decode(json.loads(dumps(v))) is v, and the text is strict JSON (no Infinity/NaN)."""
    text = values.dumps(value)
    strict = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON {token}"))
    assert same(values.decode(strict), value)
    assert same(values.loads(text), value)


def test_non_finite_floats_have_distinct_documented_forms():
    assert json.loads(values.dumps([INF, -INF, NAN])) == [
        {"$numberDouble": "Infinity"}, {"$numberDouble": "-Infinity"}, {"$numberDouble": "NaN"}]


# --------------------------------------------------------------------------- round trips
CONFIG = {
    "lr": INF, "floor": -INF, "score": NAN, "zero": -0.0, "tiny": 5e-324,
    "schedule": [1.0, INF, [NAN, -INF]],
    "nested": {"deep": {"bound": -INF, "list": [{"v": NAN}]}},
    "looks_like_marker": {"$numberDouble": "Infinity"},
    "text": "Infinity", "word": "NaN",
}


def test_config_tags_metadata_round_trip(db_url):
    """A config holding inf/-inf/nan anywhere is recorded (PostgreSQL rejected it before)
    and reads back as the exact Python values; tags and artifact metadata too."""
    run_id = log(db_url, tags=["t", INF], artifact={"best": -INF, "nan": NAN}, **CONFIG)
    run = SQLFinder(make_config(db_url)).find_run(run_id)
    config = run.config.to_dict()
    config.pop("experiment")
    assert same(config, CONFIG)
    assert same(run.tags, ["t", INF])
    assert same(run.artifacts[0].data_info, {"best": -INF, "nan": NAN})


def test_metrics_store_every_float(db_url):
    """+inf, -inf and NaN metric values are stored and read back; extremes skip NaN."""
    run_id = log(db_url, metrics=[("m", 1.0, 0), ("m", INF, 1), ("m", -INF, 2), ("m", NAN, 3),
                                  ("only_nan", NAN, 0)])
    finder = SQLFinder(make_config(db_url))
    history = finder.get_metric_history(run_id, "m")
    assert same([h.value for h in history], [1.0, INF, -INF, NAN])
    summary = finder.metric_summaries([run_id], ["m", "only_nan"])[run_id]
    assert summary["m"]["max"] == INF and summary["m"]["min"] == -INF
    assert math.isnan(summary["m"]["latest"]) and summary["m"]["steps"] == 4
    assert summary["only_nan"]["max"] is None and summary["only_nan"]["min"] is None
    assert math.isnan(summary["only_nan"]["latest"])


def test_best_run_with_non_finite_metrics(db_url):
    """NaN is never best; +inf is the largest and -inf the smallest value."""
    finite = log(db_url, metrics=[("loss", 0.5, 0), ("loss", 0.2, 1)])
    nan = log(db_url, metrics=[("loss", NAN, 0)])
    diverged = log(db_url, metrics=[("loss", 0.3, 0), ("loss", INF, 1)])
    finder = SQLFinder(make_config(db_url))
    assert finder.find_best_run("proj", "loss", "min").id == finite
    assert finder.find_best_run("proj", "loss", "max").id == diverged
    assert nan not in (finder.find_best_run("proj", "loss", m).id for m in ("min", "max"))
    exploded = log(db_url, metrics=[("loss", -INF, 0)])
    assert finder.find_best_run("proj", "loss", "min").id == exploded


# --------------------------------------------------------------------------- queries
@pytest.fixture
def lr_runs(db_url):
    ids = {name: log(db_url, lr=lr, model=name)
           for name, lr in [("small", 0.001), ("big", 3), ("inf", INF), ("ninf", -INF),
                            ("nan", NAN), ("text", "0.5")]}
    ids["none"] = log(db_url, model="none")  # no lr at all
    return db_url, ids


WHERES = [
    ("lr > 0", ["small", "big", "inf"]),
    ("lr < 1", ["small", "ninf"]),
    ("lr >= 3", ["big", "inf"]),
    ("lr == inf", ["inf"]),
    ("lr == -inf", ["ninf"]),
    ("lr < inf", ["small", "big", "ninf"]),
    ("lr > -inf", ["small", "big", "inf"]),
    ("lr == nan", ["nan"]),
    ("lr != nan", ["small", "big", "inf", "ninf"]),
    ("lr < nan", []),
    ("lr != 3", ["small", "inf", "ninf", "nan"]),
    ("not (lr > 0)", ["ninf", "nan", "text", "none"]),
    ("lr == '0.5'", ["text"]),
    ("lr > 0 and model != 'big'", ["small", "inf"]),
]


@pytest.mark.parametrize("where, expected", WHERES)
def test_where_with_non_finite_values(lr_runs, where, expected):
    """A stored inf/nan never breaks a query of the project, and is matched where IEEE
    comparison says so (nan only by == nan / != nan)."""
    url, ids = lr_runs
    runs = SQLFinder(make_config(url)).find_runs("proj", where=where)
    assert sorted(r.id for r in runs) == sorted(ids[name] for name in expected)


def test_where_agrees_with_the_protocol_reference(db_url):
    """Where the tracker protocol's Python evaluator (``ato.tracking.where.matches``) is
    installed, SQL gives exactly its answers, over values of every JSON type."""
    matches = pytest.importorskip("ato.tracking.where").matches
    for x in [None, True, False, "a", "c", 1, 2.5, {"y": 1}, [1], [0, 1], {"0": 1, "00": 2},
              INF, -INF, NAN]:
        log(db_url, x=x)
    log(db_url)
    finder = SQLFinder(make_config(db_url))
    runs = finder.get_runs_in_project("proj")
    wheres = [w for w, _ in WHERES] + [
        "x == None", "x != None", "x == True", "x != False", "x == 'a'", "x < 'b'", "x > 1",
        "not (x > 1)", "x == nan", "x != nan", "x < inf", "x.y == 1", "not x.y == 1",
        "x.0 == 1", "x.1 == 1", "x.00 == 2", "x == 1 or not (x == 1)"]
    for where in wheres:
        tree = parse_where(where)
        want = sorted(r.id for r in runs if matches(tree, r.config.to_dict()))
        assert sorted(r.id for r in finder.find_runs("proj", where=where)) == want, where


KEYS = [
    'say "hi"', "it's", "a.b", "with space", "0", "12", "1st_stage", "학습률", "naïve",
    "back\\slash", "trailing\\", "$dollar", "tab\there", "", "emoji🙂", "%pct%", "a=b",
    "(paren)", "and", "\u00e9", "e\u0301",
]


def quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


@pytest.fixture
def key_runs(db_url):
    runs = {}
    for i, key in enumerate(KEYS):
        runs[key] = log(db_url, **{"top": {key: i, "s": "x"}, "flat": {key: f"v{i}"}})
    return db_url, runs


def test_every_stored_key_can_be_queried(key_runs):
    """Each key is matched exactly (numbers and strings, nested) on both databases."""
    url, runs = key_runs
    finder = SQLFinder(make_config(url))
    for i, key in enumerate(KEYS):
        hits = finder.find_runs("proj", where=f"top.{quoted(key)} == {i}")
        assert [r.id for r in hits] == [runs[key]], key
        hits = finder.find_runs("proj", where=f"flat.{quoted(key)} == 'v{i}'")
        assert [r.id for r in hits] == [runs[key]], key
        assert hits[0].config["top"][key] == i
    # one quote style, and single quotes, reach the same key
    assert [r.id for r in finder.find_runs("proj", where="top.'it\\'s' == 1")] == [runs["it's"]]
    # a dot inside quotes is part of the key, outside it separates levels
    assert finder.find_runs("proj", where="top.a.b == 2") == []


def test_plain_keys_need_no_quotes(db_url):
    """Bare segments: digits, leading digits, non-ASCII; a digit segment indexes lists."""
    run_id = log(db_url, **{"1st": {"학습률": 0.1}, "layers": [64, {"w": 3}], "d": {"0": "zero"}})
    finder = SQLFinder(make_config(db_url))
    for where in ("1st.학습률 < 0.2", "layers.0 == 64", "layers.1.w == 3", "d.0 == 'zero'"):
        assert [r.id for r in finder.find_runs("proj", where=where)] == [run_id], where
    for where in ("layers.2 == 64", "layers.00 == 64", "layers.-1 == 64", "d.00 == 'zero'"):
        assert finder.find_runs("proj", where=where) == [], where


def test_string_order_is_code_point_order(db_url):
    """'<' on strings gives the same answer on both databases (PostgreSQL's locale
    collation would put 'a' < 'B' < 'b')."""
    ids = {name: log(db_url, name=name) for name in ["B", "a", "b", "é", "Z"]}
    finder = SQLFinder(make_config(db_url))
    assert sorted(r.config.name for r in finder.find_runs("proj", where="name < 'a'")) == ["B", "Z"]
    assert sorted(r.config.name for r in finder.find_runs("proj", where="name > 'b'")) == ["é"]
    assert len(ids) == 5


@pytest.mark.parametrize("text, message", [
    ("a..b == 1", "empty key segment"),
    ("a. == 1", "ends with '.'"),
    ('"a"b == 1', "expected '.' after a quoted segment"),
    ('a"b" == 1', "a quote inside"),
    ('"open == 1', "unterminated string"),
])
def test_bad_keys_are_named(text, message):
    with pytest.raises(WhereError, match=message):
        parse_where(text)


@pytest.mark.parametrize("text", ["(" * 5000 + "lr < 1" + ")" * 5000, "not " * 5000 + "lr < 1",
                                  "(" * 65 + "lr < 1" + ")" * 65])
def test_deep_nesting_is_a_parse_error_everywhere(db_url, text):
    """Deep nesting raised a bare RecursionError (a traceback in ato runs, a 503 in the
    dashboard): it is a WhereError naming the limit, from the finder and the command."""
    log_run(db_url, lr=0.1)
    finder = SQLFinder(make_config(db_url))
    with pytest.raises(WhereError, match="nested too deeply"):
        finder.find_runs(where=text)
    proc = ato("runs", "list", "--db", db_url, "--where", text)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "nested too deeply" in proc.stderr
    assert len(proc.stderr) < 400  # the expression is shown around the position only


def test_long_chains_and_the_deepest_nesting_allowed_work(db_url):
    log_run(db_url, lr=0.1)
    finder = SQLFinder(make_config(db_url))
    chain = " or ".join(["lr > 1"] * 9999 + ["lr < 1"])
    assert len(finder.find_runs(where=chain)) == 1
    assert len(finder.find_runs(where=" and ".join(["lr < 1"] * 10000))) == 1
    with pytest.raises(WhereError, match="too many comparisons"):
        finder.find_runs(where=" and ".join(["lr < 1"] * 10001))
    # 20 levels: parentheses and not (not not x is x), and/or nested in each other
    nested = "lr < 1"
    for _ in range(6):  # 3 levels each
        nested = f"(lr > 1 or not (lr > 2 and {nested}))"
    assert len(finder.find_runs(where="not not " * 10 + "((" + nested + "))")) == 1
    with pytest.raises(WhereError, match="nested too deeply"):
        finder.find_runs(where=f"lr > 1 or not (lr > 2 and {nested})")


def test_integers_past_64_bits_compare_as_doubles_on_both_databases(db_url):
    """A literal past 2^63 overflowed SQLite's binding (a traceback in ato runs, a 503 in
    the dashboard) and, near 2^63, the two databases disagreed: the leaf is a double, and
    so is the literal now, on both."""
    log_run(db_url, lr=2**63)
    log_run(db_url, lr=0.5)
    finder = SQLFinder(make_config(db_url))

    def lrs(where):
        return sorted(r.config["lr"] for r in finder.find_runs(where=where))

    assert lrs("lr < 99999999999999999999999999") == [0.5, 2**63]
    # doubles: 2^63 - 2 and 2^63 are the same double, on both databases alike
    assert lrs("lr > 9223372036854775806") == []
    assert lrs("lr >= 9223372036854775806") == lrs("lr >= 9223372036854775808") == [2**63]
    assert lrs("lr == 9223372036854775808") == [2**63]
    assert lrs("lr < " + "9" * 400) == [0.5, 2**63]  # past every double: +inf
    proc = ato("runs", "list", "--db", db_url, "--where", "lr < 99999999999999999999999999")
    assert proc.returncode == 0, proc.stderr


def test_a_nul_in_an_expression_is_refused_everywhere(db_url):
    log_run(db_url, lr=0.1)
    with pytest.raises(WhereError, match="NUL character"):
        SQLFinder(make_config(db_url)).find_runs(where='lr == "\x00"')


# --------------------------------------------------------------------------- ato runs --json
def ato(*args):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True)


def strict(text):
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))


def test_runs_json_is_strict_and_tells_non_finite_apart(db_url):
    """list/show/best/diff --json: valid RFC 8259 JSON; +inf, -inf and NaN distinct."""
    a = log(db_url, metrics=[("acc", INF, 0), ("acc", NAN, 1)], lr=INF, floor=-INF, score=NAN)
    b = log(db_url, metrics=[("acc", 0.5, 0)], lr=0.1)
    outputs = {
        "list": ato("runs", "list", "--db", db_url, "--metrics", "acc", "--json"),
        "show": ato("runs", "show", str(a), "--db", db_url, "--json"),
        "best": ato("runs", "best", "--db", db_url, "--project", "proj", "--metric", "acc",
                    "--json"),
        "diff": ato("runs", "diff", str(a), str(b), "--db", db_url, "--json"),
    }
    for name, proc in outputs.items():
        assert proc.returncode == 0, (name, proc.stderr)
        assert "Infinity" not in proc.stdout.replace('"Infinity"', "").replace('"-Infinity"', "")
        strict(proc.stdout)
    listed = values.decode(strict(outputs["list"].stdout))
    first = next(r for r in listed if r["id"] == a)
    assert first["config"]["lr"] == INF and first["config"]["floor"] == -INF
    assert math.isnan(first["config"]["score"])
    assert first["metrics"]["acc"]["max"] == INF and math.isnan(first["metrics"]["acc"]["latest"])
    assert strict(outputs["show"].stdout)["config"]["floor"] == {"$numberDouble": "-Infinity"}
    assert strict(outputs["best"].stdout)["id"] == a
    node = shutil.which("node")
    if node is None:
        return
    for name, proc in outputs.items():
        parsed = subprocess.run([node, "-e", "let s='';process.stdin.on('data',d=>s+=d);"
                                 "process.stdin.on('end',()=>{JSON.parse(s);console.log('ok')})"],
                                input=proc.stdout, capture_output=True, text=True)
        assert parsed.stdout.strip() == "ok", (name, parsed.stderr)
