"""YAML scalars mean what they mean to a Hydra/OmegaConf user (issue 8 §1), and a value a
format cannot hold is converted by the documented rule or refused before writing, naming
the key path, for every pair of formats."""

from __future__ import annotations

import datetime
import math
import pathlib

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ato.adict import ADict
from ato.errors import ConfigFileError
from ato.formats.yaml import loads as yaml_loads

NAN = float("nan")
INF = float("inf")

#: ``v: <text>`` → value, as ``OmegaConf.create`` (omegaconf 2.3.1) gives it.
OMEGACONF_SCALARS = [
    ("1e-3", 0.001), ("1E5", 100000.0), ("1.0e3", 1000.0), ("1e+3", 1000.0), ("-1e-3", -0.001),
    ("2E-07", 2e-07), ("1.e3", 1000.0), ("6.8523015e+5", 685230.15),
    ("685.230_15e+03", 685230.15), ("1_2.5", 12.5), ("1_000.5", 1000.5), (".5", 0.5),
    ("1.", 1.0), ("0.", 0.0), ("+1", 1), ("-0", 0), ("+12", 12), ("1_000", 1000),
    ("0x1F", 31), ("0b101", 5), ("017", 15), ("0o17", "0o17"), ("1:30", 90),
    ("190:20:30.15", 685230.15), ("-.inf", -INF), (".inf", INF), ("+.inf", INF),
    (".Inf", INF), (".nan", NAN), (".NaN", NAN), ("-.nan", "-.nan"),
    ("on", True), ("off", False), ("yes", True), ("no", False), ("Yes", True), ("ON", True),
    ("y", "y"), ("n", "n"), ("true", True), ("True", True), ("TRUE", True), ("false", False),
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None),
    ("2001-12-14", "2001-12-14"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("'1e-3'", "1e-3"), ('"true"', "true"), ("'null'", "null"), ("!!str 1", "1"),
    ("!!float 1", 1.0), ("1e", "1e"), ("e3", "e3"), ("1.2.3", "1.2.3"), (".e3", ".e3"),
    ("_1", "_1"), (".", "."), ("1e-3x", "1e-3x"), ("lr=1e-3", "lr=1e-3"),
]

#: Where Ato deliberately reads a float that OmegaConf 2.3 leaves as a string: a signed or
#: exponent-carrying number without a leading digit is a float in YAML 1.2 and in PyYAML.
DELIBERATE = [("-.5", -0.5, "-.5"), ("+.5", 0.5, "+.5"), (".5e3", 500.0, ".5e3")]


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class TestYAMLScalars:
    @pytest.mark.parametrize("text, expected", OMEGACONF_SCALARS)
    def test_scalar_as_omegaconf(self, text, expected):
        """Each plain or quoted scalar loads with OmegaConf's value and type."""
        assert same(yaml_loads(f"v: {text}")["v"], expected)

    @pytest.mark.parametrize("text, expected, _omegaconf", DELIBERATE)
    def test_deliberate_differences(self, text, expected, _omegaconf):
        """Sign-and-dot floats are floats (YAML 1.2, PyYAML), unlike OmegaConf 2.3."""
        assert same(yaml_loads(f"v: {text}")["v"], expected)

    def test_against_live_omegaconf(self):
        """The pinned table still matches the installed OmegaConf (when it is installed)."""
        omegaconf = pytest.importorskip("omegaconf")
        for text, expected in OMEGACONF_SCALARS:
            got = omegaconf.OmegaConf.create(f"v: {text}")["v"]
            assert same(got, expected), text
        for text, _, theirs in DELIBERATE:
            assert omegaconf.OmegaConf.create(f"v: {text}")["v"] == theirs

    def test_from_file_lists_and_keys(self, tmp_path):
        """Floats load as floats in lists, nested mappings and flow style, through from_file."""
        path = tmp_path / "c.yaml"
        path.write_text("lr: 1e-3\noptim: {wd: 5E-4, betas: [9e-1, 0.999]}\n"
                        "space:\n  lr: {param_range: [1e-5, 1e-1]}\n1e3: thousand\n")
        cfg = ADict.from_file(path)
        assert same(cfg.to_dict(), {"lr": 0.001, "optim": {"wd": 0.0005, "betas": [0.9, 0.999]},
                                    "space": {"lr": {"param_range": [1e-05, 0.1]}},
                                    1000.0: "thousand"})

    def test_duplicate_key_names_both_lines(self, tmp_path):
        """A repeated key is an error naming the file, the line of the repeat and the first."""
        path = tmp_path / "c.yaml"
        path.write_text("model:\n  lr: 1\n  depth: 2\n  lr: 3\n")
        with pytest.raises(ConfigFileError, match=r"c\.yaml:4:3: duplicate key 'lr' "
                                                  r"\(first at line 2\)"):
            ADict.from_file(path)

    def test_same_text_different_type_is_not_a_duplicate(self):
        """`1` and `'1'` are different keys (int and str)."""
        assert yaml_loads("1: a\n'1': b\n") == {1: "a", "1": "b"}

    def test_compose_hierarchy_reads_floats(self, tmp_path):
        """compose_hierarchy goes through the same loader (group files too)."""
        pytest.importorskip("ato.mmlab.hydra")
        (tmp_path / "optim").mkdir()
        (tmp_path / "config.yaml").write_text("defaults:\n  - optim: adam\n  - _self_\n"
                                              "big: 1E5\n")
        (tmp_path / "optim" / "adam.yaml").write_text("lr: 1e-3\neps: 1.0e-8\n")
        cfg = ADict.compose_hierarchy(tmp_path)
        assert same(cfg.to_dict(), {"optim": {"lr": 0.001, "eps": 1e-08}, "big": 100000.0})

    @pytest.mark.parametrize("text", ["1e-3", "1E5", "2001-12-14", "-.5", "on", "~", "0x1F",
                                      "1:30", "null", "017", "1_000", ".nan", "+1", "",
                                      " padded ", "a: b", "- x", "#c", "'q'", "0o17", "1.2.3"])
    def test_strings_round_trip_and_mean_the_same_to_yaml_11(self, tmp_path, text):
        """A string that looks like another scalar is quoted on dump: it reads back as the
        same string with Ato's loader and with plain PyYAML (MMEngine, YAML 1.1 tools)."""
        path = tmp_path / "c.yaml"
        ADict(v=text).dump(path)
        assert ADict.from_file(path).v == text
        assert yaml.safe_load(path.read_text())["v"] == text

    @pytest.mark.parametrize("value", [1e-3, 1e5, 1e-300, 1.5, -0.0, INF, -INF, NAN, 10 ** 30,
                                       -7, True, None])
    def test_numbers_round_trip(self, tmp_path, value):
        """Numbers and constants dumped to YAML load back with the same type and value."""
        path = tmp_path / "c.yaml"
        ADict(v=value).dump(path)
        assert same(ADict.from_file(path).v, value)


class TestSearchSpaceFromYAML:
    def test_search_space_read_from_yaml_runs(self, tmp_path):
        """A log-scale grid from YAML (`param_range: [1e-5, 1e-1]`) runs and sees floats."""
        pytest.importorskip("ato.hyperopt")
        from ato.hyperopt.algorithms import GridSearch
        from ato.scope import Scope

        path = tmp_path / "space.yaml"
        path.write_text("lr:\n  param_type: FLOAT\n  param_range: [1e-5, 1e-1]\n"
                        "  num_samples: 5\n  space_type: LOG\n")
        space = ADict.from_file(path)
        seen = []

        def objective(config):
            seen.append(config.lr)
            return -abs(math.log10(config.lr) + 3)

        result = GridSearch(Scope(), space, max_budget=1, progress=False).main(objective)()
        assert seen == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
        assert all(type(v) is float for v in seen)
        assert result.config.lr == pytest.approx(1e-3)

    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    def test_where_compares_yaml_floats_as_numbers(self, tmp_path, backend):
        """A run whose config came from YAML is found by a numeric `where`, on both
        databases."""
        pytest.importorskip("ato.db_routers.sql.manager")
        if backend == "sqlite":
            self.check_where(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path)
            return
        from ato.db_routers.sql.engine import forget_engine
        from tests.sql import conftest as sql

        if not sql.PG_URL:
            pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
        name, url = sql._pg_database()
        try:
            self.check_where(url, tmp_path)
        finally:
            forget_engine(url)
            sql._drop_pg_database(name)

    @staticmethod
    def check_where(url, tmp_path):
        from ato.db_routers.sql.manager import SQLFinder, SQLLogger

        ids = {}
        for name, lr in (("small", "1e-3"), ("big", "1E-1")):
            path = tmp_path / f"{name}.yaml"
            path.write_text(f"lr: {lr}\nexperiment:\n  project_name: p\n  sql:\n"
                            f"    db_path: {url}\n")
            logger = SQLLogger(ADict.from_file(path), handle_signals=False)
            ids[name] = logger.run()
            logger.finish()
        finder = SQLFinder(ADict(experiment={"project_name": "p", "sql": {"db_path": url}}))
        assert [r.id for r in finder.find_runs("p", where="lr < 0.01")] == [ids["small"]]
        assert [r.id for r in finder.find_runs("p", where="lr >= 0.01")] == [ids["big"]]


# --------------------------------------------------------------------------- cross-format
FORMATS = [".json", ".yaml", ".toml", ".xyz"]

#: (name, value, {suffix: what comes back, or an error pattern (str starting with "!")}).
#: Everything a format can hold round-trips exactly; the rest is refused with the key path.
CASES = [
    ("none", None, {".json": None, ".yaml": None, ".toml": "!TOML cannot hold None",
                    ".xyz": None}),
    ("inf", INF, {".json": "!JSON cannot hold inf", ".yaml": INF, ".toml": INF, ".xyz": INF}),
    ("nan", NAN, {".json": "!JSON cannot hold nan", ".yaml": NAN, ".toml": NAN, ".xyz": NAN}),
    ("neg_inf", -INF, {".json": "!JSON cannot hold -inf", ".yaml": -INF, ".toml": -INF,
                       ".xyz": -INF}),
    ("int_key", {1: "cat"}, {".json": "!JSON cannot hold the key 1",
                             ".yaml": {1: "cat"}, ".toml": "!TOML cannot hold the key 1",
                             ".xyz": "!XYZ cannot hold the key 1"}),
    ("bool_key", {True: 1}, {".json": "!JSON cannot hold the key True", ".yaml": {True: 1},
                             ".toml": "!TOML cannot hold the key True",
                             ".xyz": "!XYZ cannot hold the key True"}),
    ("tuple", (1, "a"), {s: [1, "a"] for s in FORMATS}),
    ("nested_tuple", [(1, 2)], {s: [[1, 2]] for s in FORMATS}),
    ("path", pathlib.PurePosixPath("data/x.csv"), {s: "data/x.csv" for s in FORMATS}),
    ("date", datetime.date(2024, 2, 29), {
        ".json": "!JSON cannot hold a date", ".yaml": datetime.date(2024, 2, 29),
        ".toml": datetime.date(2024, 2, 29), ".xyz": "!XYZ cannot hold a date"}),
    ("datetime", datetime.datetime(2024, 2, 29, 12, 30, 1), {
        ".json": "!JSON cannot hold a datetime",
        ".yaml": datetime.datetime(2024, 2, 29, 12, 30, 1),
        ".toml": datetime.datetime(2024, 2, 29, 12, 30, 1),
        ".xyz": "!XYZ cannot hold a datetime"}),
    ("time", datetime.time(7, 5), {".json": "!JSON cannot hold a time",
                                   ".yaml": "!YAML cannot hold a time of day",
                                   ".toml": datetime.time(7, 5),
                                   ".xyz": "!XYZ cannot hold a time"}),
    ("bytes", b"\x00ab", {".json": "!JSON cannot hold a bytes", ".yaml": b"\x00ab",
                          ".toml": "!TOML cannot hold a bytes", ".xyz": "!XYZ cannot hold a bytes"}),
    ("set", {3}, {".json": "!JSON cannot hold a set", ".yaml": {3},
                  ".toml": "!TOML cannot hold a set", ".xyz": "!XYZ cannot hold a set"}),
    ("complex", 1j, {s: f"!{s[1:].upper()} cannot hold " for s in FORMATS}),
    ("mixed_list", [1, "a", 2.5, [True]], {s: [1, "a", 2.5, [True]] for s in FORMATS}),
    ("list_with_none", [1, None], {".json": [1, None], ".yaml": [1, None],
                                   ".toml": "!TOML cannot hold None", ".xyz": [1, None]}),
    ("numberlike_str", "100", {".json": "100", ".yaml": "100", ".toml": "100",
                               ".xyz": "!XYZ cannot hold the string '100'"}),
    ("none_str", "None", {".json": "None", ".yaml": "None", ".toml": "None",
                          ".xyz": "!XYZ cannot hold the string 'None'"}),
    ("empty_str", "", {".json": "", ".yaml": "", ".toml": "",
                       ".xyz": "!XYZ cannot hold the string ''"}),
    ("multiline", "a\nb", {".json": "a\nb", ".yaml": "a\nb", ".toml": "a\nb",
                           ".xyz": "!XYZ cannot hold the string 'a\\\\nb'"}),
    ("colon_key", {"a:b": 1}, {".json": {"a:b": 1}, ".yaml": {"a:b": 1},
                               ".toml": {"a:b": 1}, ".xyz": "!XYZ cannot hold the key 'a:b'"}),
    ("huge_int", 2 ** 70, {".json": 2 ** 70, ".yaml": 2 ** 70,
                           ".toml": "!TOML cannot hold the integer", ".xyz": 2 ** 70}),
    ("unicode", "λ — ✓", {s: "λ — ✓" for s in FORMATS}),
]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name, value, outcomes", CASES, ids=[c[0] for c in CASES])
def test_each_format_holds_or_refuses(tmp_path, suffix, name, value, outcomes):
    """Dumping `{m: {deep: [0, value]}}`: either it loads back as documented, or the dump
    fails naming the format and the key path `m.deep[1]`, and the old file is intact."""
    path = tmp_path / f"c{suffix}"
    expected = outcomes[suffix]
    config = {"m": {"deep": [0, value]}}
    if isinstance(expected, str) and expected.startswith("!"):
        path.write_text("OLD")
        with pytest.raises(ConfigFileError) as info:
            ADict._from_mapping(config).dump(path)
        message = str(info.value)
        assert message.startswith(f"{path}: {expected[1:]}".replace("\\\\", "\\")), message
        assert "(key 'm.deep[1]" in message
        assert path.read_text() == "OLD"
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
        return
    ADict._from_mapping(config).dump(path)
    assert same(ADict.from_file(path).to_dict(), {"m": {"deep": [0, expected]}})


SOURCES = {
    ".json": '{"a": null, "b": 1.5, "c": "1e-3", "d": [1, "x"], "e": {"f": true}}',
    ".yaml": "a: ~\nb: 1e-3\nc: '1e-3'\nd: [1, x, 2.5]\ne: {1: one}\ng: .inf\n"
             "h: !!timestamp 2024-02-29\n",
    ".toml": 'b = 1e-3\nc = "1e-3"\nd = [1, "x"]\nt = 2024-02-29T10:00:00\nn = nan\n'
             '[e]\nf = true\n',
    ".xyz": "a: None\nb: 0.001\nd:\n  0) 1\n  1) x\ne:\n  f: True\ni: -inf",
}


@pytest.mark.parametrize("target", FORMATS)
@pytest.mark.parametrize("source", FORMATS)
def test_every_pair_of_formats(tmp_path, source, target):
    """A config read from one format and written to another either reads back equal or
    is refused, naming a key path, before anything is written."""
    src = tmp_path / f"src{source}"
    src.write_text(SOURCES[source])
    loaded = ADict.from_file(src)
    dst = tmp_path / f"dst{target}"
    try:
        loaded.dump(dst)
    except ConfigFileError as e:
        assert " cannot hold " in str(e) and "(key '" in str(e)
        assert not dst.exists()
        return
    assert same(ADict.from_file(dst).to_dict(), loaded.to_dict())


def test_refusal_lists_the_first_bad_key_in_order(tmp_path):
    """The error names the first unrepresentable key in document order."""
    with pytest.raises(ConfigFileError, match=r"TOML cannot hold None \(key 'a.b'\)"):
        ADict(a={"ok": 1, "b": None}, z=None).dump(tmp_path / "c.toml")


def test_json_options_can_allow_python_tokens(tmp_path):
    """`allow_nan=True` asks for Python's Infinity/NaN tokens explicitly; `default=` takes
    the values JSON cannot hold."""
    path = tmp_path / "c.json"
    ADict(x=INF).dump(path, allow_nan=True)
    assert path.read_text() == '{"x": Infinity}'
    ADict(d=datetime.date(2024, 1, 2)).dump(path, default=str)
    assert ADict.from_file(path).d == "2024-01-02"
    with pytest.raises(ConfigFileError, match="JSON cannot hold inf"):
        ADict(x=INF, d=datetime.date(2024, 1, 2)).dump(path, default=str)


def test_yaml_sorts_mixed_keys(tmp_path):
    """Keys of different types are sorted None, bools, numbers, strings (PyYAML alone
    fails on them); sort_keys=False keeps the order."""
    path = tmp_path / "c.yaml"
    ADict(m={"b": 1, 2: "x", "a": 2, 1.5: "y", None: 0, True: 3}).dump(path)
    assert path.read_text() == ("m:\n  null: 0\n  true: 3\n  1.5: y\n  2: x\n  a: 2\n"
                                "  b: 1\n")
    assert ADict.from_file(path).m == {None: 0, True: 3, 1.5: "y", 2: "x", "a": 2, "b": 1}
    ADict(m={"b": 1, 2: "x"}).dump(path, sort_keys=False)
    assert list(ADict.from_file(path).m) == ["b", 2]


def test_adict_json_refuses_like_a_json_file():
    """`ADict.json()` follows the JSON rules of `.json` files, without a file name."""
    from ato.representable import UnrepresentableError

    assert ADict(a=1, t=(1, 2), p=pathlib.PurePosixPath("x/y")).json() == \
        '{"a": 1, "t": [1, 2], "p": "x/y"}'
    with pytest.raises(UnrepresentableError, match=r"^JSON cannot hold nan .*\(key 'm.v\[0\]'\)"):
        ADict(m={"v": [NAN]}).json()
    assert ADict(x=INF).json(allow_nan=True) == '{"x": Infinity}'


_TRICKY = ["1e-3", "1E5", "-.5", ".inf", "nan", "inf", "0o17", "017", "0x1F", "1:30", "on",
           "No", "~", "null", "None", "True", "", " ", "2001-12-14", "<<", "=", "- a", "a: b",
           "#x", "[1]", "{a: 1}", "'q'", '"q"', "%x%", "${a}", "\\", "λ", "a\nb", "\t", "1_000",
           "[Empty Sequence]", "x)", "0) y", "key-prefix -> y"]
_keys = st.sampled_from(["a", "b", "key", "1", "x y", "é", "with.dot"]) | st.text(max_size=6)
_scalars = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats()
            | st.sampled_from(_TRICKY) | st.text(max_size=10))
_trees = st.dictionaries(_keys, st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner,
                                                                          max_size=3),
    max_leaves=8), max_size=4)


@pytest.mark.parametrize("suffix", FORMATS)
def test_any_config_round_trips_or_is_refused(tmp_path_factory, suffix):
    """Random configs: each format reads back exactly what it wrote, or refuses before
    writing with a key path — never a silent change, never a half-written file."""

    @settings(max_examples=150, deadline=None)
    @given(_trees)
    def check(tree):
        path = tmp_path_factory.mktemp("rt") / f"c{suffix}"
        path.write_text("OLD")
        try:
            ADict._from_mapping(tree).dump(path)
        except ConfigFileError as e:
            assert " cannot hold " in str(e) and "(key " in str(e), str(e)
            assert path.read_text() == "OLD"
            return
        assert same(ADict.from_file(path).to_dict(), tree)

    check()


def test_key_paths_stay_readable_for_odd_keys(tmp_path):
    """A key holding a dot, a quote or spaces is shown in brackets, so the path is exact."""
    with pytest.raises(ConfigFileError, match=r"\(key \"m\['a.b'\]\[1\]\"\)"):
        ADict(m={"a.b": [0, None]}).dump(tmp_path / "c.toml")
    with pytest.raises(ConfigFileError, match=r"\(key \"\[' x'\]\"\)"):
        ADict({" x": None}).dump(tmp_path / "c.toml")
