"""``compose_hierarchy(resolve=True)``: OmegaConf 2.3's interpolation grammar, resolvers
and errors (issue 8 §2).  The table-driven test compares with results that hydra-core 1.3.8 /
omegaconf 2.3 produced (tests/mmlab/expected/hydra.json, regenerated and re-checked by
``nox -s interop``)."""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ato.adict import ADict
from ato.errors import AtoError
from ato.mmlab.interpolation import (
    GrammarParseError,
    InterpolationCycleError,
    InterpolationError,
    InterpolationKeyError,
    InterpolationResolutionError,
    InterpolationToMissingValueError,
    UnsupportedInterpolationType,
    resolve_tree,
)
from tests.mmlab.interop_cases import (
    INTERPOLATION_CASES,
    error_record,
    interpolation_case_id,
    interpolation_env,
    load_expected,
    normalise,
    same_result,
    write_interpolation_case,
)


def compose(tmp_path, text: str, **kwargs) -> ADict:
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    return ADict.compose_hierarchy(tmp_path, resolve=True, **kwargs)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("ATO_TEST_HOME", "/home/ato")
    monkeypatch.delenv("ATO_TEST_UNSET", raising=False)


@pytest.mark.parametrize("name", list(INTERPOLATION_CASES))
def test_same_as_hydra(tmp_path, name):
    """Each case resolves to OmegaConf's value, or fails with OmegaConf's exception class,
    first message line and key."""
    expected = load_expected("hydra")[interpolation_case_id(name)]
    root = write_interpolation_case(tmp_path, name)
    with interpolation_env(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ours = normalise(ADict.compose_hierarchy(root, resolve=True).to_dict())
        except InterpolationError as e:
            ours = error_record(e)
    assert same_result(expected, ours), (expected, ours)


def test_cases_cover_every_error_kind():
    """The pinned table holds values and each kind of OmegaConf error."""
    kinds = {v["__error__"] for k, v in load_expected("hydra").items()
             if k.startswith("interpolation/") and "__error__" in v}
    assert {"InterpolationKeyError", "InterpolationResolutionError", "GrammarParseError",
            "UnsupportedInterpolationType", "InterpolationToMissingValueError"} <= kinds


class TestIssueExamples:
    @pytest.mark.parametrize("text, chain", [
        ("a: ${b}\nb: ${a}\n", "Recursive interpolation detected: a -> b -> a"),
        ("a: ${a}\n", "Recursive interpolation detected: a -> a"),
        ("x: 1\nm:\n  a: p_${m.b}\n  b: ${.c}\n  c: ${m.a}\n",
         "Recursive interpolation detected: m.a -> m.b -> m.c -> m.a"),
        ("a:\n  x: ${b}\nb: ${a}\n", "Interpolation to parent node detected: a.x -> b -> a"),
        ("l:\n  - ${l}\n", "Interpolation to parent node detected: l[0] -> l"),
    ])
    def test_cycles_name_their_chain(self, tmp_path, text, chain):
        """A cycle is an error (never RecursionError) that shows the chain of keys."""
        with pytest.raises(InterpolationCycleError) as info:
            compose(tmp_path, text)
        assert str(info.value).startswith(chain)
        assert isinstance(info.value, InterpolationResolutionError)

    def test_missing_key_is_named(self, tmp_path):
        """`${paths.rot}` with no such key raises naming `paths.rot` and the value."""
        with pytest.raises(InterpolationKeyError) as info:
            compose(tmp_path, "paths:\n  root: /d\nckpt: ${paths.rot}/ckpt\n")
        assert str(info.value) == ("Interpolation key 'paths.rot' not found "
                                   "(resolving 'ckpt': '${paths.rot}/ckpt')")
        assert isinstance(info.value, KeyError) and isinstance(info.value, AtoError)
        assert info.value.key == "ckpt"

    @pytest.mark.parametrize("text", ["d: ${oc.env:ATO_TEST_UNSET}", "d: ${oc.env:ATO_TEST_UNSET}/data",
                                      "d: '${oc.select:x,${oc.env:ATO_TEST_UNSET}}'"])
    def test_unset_environment_variable(self, tmp_path, env, text):
        """An unset variable without a default fails, alone or inside text."""
        with pytest.raises(InterpolationResolutionError,
                           match="Environment variable 'ATO_TEST_UNSET' not found"):
            compose(tmp_path, text + "\n")

    def test_env_defaults_lose_their_quotes(self, tmp_path, env):
        """`null` is None, quoted defaults are their content, set variables win."""
        cfg = compose(tmp_path, "a: ${oc.env:ATO_TEST_UNSET,null}\n"
                                "b: ${oc.env:ATO_TEST_UNSET,''}\n"
                                "c: ${oc.env:ATO_TEST_UNSET,'x,y'}\n"
                                "d: ${oc.env:ATO_TEST_UNSET,\"it's\"}\n"
                                "e: ${oc.env:ATO_TEST_UNSET,7}\n"
                                "f: ${oc.env:ATO_TEST_HOME,/other}/data\n"
                                "g: ${oc.env:ATO_TEST_UNSET, two words }\n")
        assert cfg.to_dict() == {"a": None, "b": "", "c": "x,y", "d": "it's", "e": "7",
                                 "f": "/home/ato/data", "g": "two words"}

    def test_unknown_resolver(self, tmp_path):
        with pytest.raises(UnsupportedInterpolationType,
                           match=r"^Unsupported interpolation type today \(resolving 't'"):
            compose(tmp_path, "t: ${today:%H}\n")

    def test_missing_mandatory_value(self, tmp_path):
        with pytest.raises(InterpolationToMissingValueError,
                           match="Missing mandatory value: model.name"):
            compose(tmp_path, "model:\n  name: ???\nrun: ${model.name}_1\n")


class TestGrammar:
    def test_types_and_concatenation(self, tmp_path):
        """A whole-value interpolation keeps the type; inside text it is str()."""
        cfg = compose(tmp_path, "lr: 1e-3\nflag: true\nnone: null\nsizes: [1, 2]\n"
                                "opt: {lr: '${lr}'}\na: ${lr}\nb: lr=${lr}\nc: ${flag}\n"
                                "d: ${none}\ne: ${sizes}\nf: x${sizes}\ng: ${opt}\n")
        assert cfg.a == 0.001 and type(cfg.a) is float
        assert cfg.b == "lr=0.001" and cfg.c is True and cfg.d is None
        assert cfg.e == [1, 2] and cfg.f == "x[1, 2]" and cfg.g == {"lr": 0.001}

    def test_results_are_copies(self, tmp_path):
        """Two interpolations of one mapping are independent copies."""
        cfg = compose(tmp_path, "base: {k: [1]}\na: ${base}\nb: ${base}\n")
        cfg.a.k.append(2)
        assert cfg.b.k == [1] and cfg.base.k == [1]

    @pytest.mark.parametrize("value, expected", [
        (r"\${a}", "${a}"), (r"\\${a}", "\\1"), (r"\\\${a}", "\\${a}"), (r"\\\\${a}", "\\\\1"),
        (r"C:\tmp\${a}", "C:\\tmp${a}"), (r"C:\\tmp", "C:\\\\tmp"), ("end\\", "end\\"),
        ("$5 and $", "$5 and $"), ("${a}$", "1$"), ("a$${a}", "a$1"),
    ])
    def test_escapes(self, value, expected):
        """Backslashes are special only right before `${`; `$` alone is text."""
        assert resolve_tree({"a": 1, "v": value})["v"] == expected

    @pytest.mark.parametrize("arg, expected", [
        ("1", 1), ("-3", -3), ("+1", 1), ("1_000", 1000), ("1.5", 1.5), ("1e-3", 0.001),
        ("1.", 1.0), (".5", 0.5), ("true", True), ("FALSE", False), ("null", None),
        ("NULL", None), ("01", "01"), ("0x10", "0x10"), ("1a", "1a"), ("a b", "a b"),
        ("a\\,b", "a,b"), ("a\\ b", "a b"), ("'1'", "1"), ('"true"', "true"), ("''", ""),
        ("[1, 'a', [null]]", [1, "a", [None]]), ("{k: 1, 2: x}", {"k": 1, 2: "x"}),
        ("[]", []), ("{}", {}), ("/a/b:c", "/a/b:c"), ("'q\\'s'", "q's"), ("é", "é"),
    ])
    def test_resolver_argument_types(self, arg, expected):
        """Arguments are typed as in OmegaConf (plus non-ASCII letters, unquoted)."""
        got = resolve_tree({"v": "${oc.select:missing," + arg + "}"})["v"]
        assert got == expected and type(got) is type(expected)

    def test_nested_interpolations(self, tmp_path, env):
        cfg = compose(tmp_path, "var: ATO_TEST_HOME\nname: b\nmodels: {a: 1, b: 2}\n"
                                "home: ${oc.env:${var}}\npick: ${models.${name}}\n"
                                "sel: ${oc.select:models.${name},0}\n")
        assert (cfg.home, cfg.pick, cfg.sel) == ("/home/ato", 2, 2)

    def test_relative_references_in_lists_and_groups(self, tmp_path):
        """`.x` is a sibling, each further dot one level up, in lists too; group files
        resolve against the composed tree."""
        (tmp_path / "db").mkdir()
        (tmp_path / "db" / "pg.yaml").write_text("host: h\nurl: pg://${.host}:${port}\n")
        cfg = compose(tmp_path, "defaults:\n  - db: pg\n  - _self_\nport: 5432\n"
                                "jobs:\n  - {n: 1, id: 'j${.n}'}\n  - {n: 2, up: '${..0.n}'}\n")
        assert cfg.db.url == "pg://h:5432"
        assert cfg.jobs[0].id == "j1" and cfg.jobs[1].up == 1

    def test_overrides_take_part(self, tmp_path):
        """Overrides are applied before interpolations are resolved."""
        cfg = compose(tmp_path, "lr: 0.1\nopt: {lr: '${lr}'}\n", overrides={"lr": 0.5})
        assert cfg.opt.lr == 0.5

    def test_resolve_false_keeps_text(self, tmp_path):
        (tmp_path / "config.yaml").write_text("a: ${b}\nb: ${a}\nc: ${oc.env:NOPE}\n")
        cfg = ADict.compose_hierarchy(tmp_path)
        assert cfg.to_dict() == {"a": "${b}", "b": "${a}", "c": "${oc.env:NOPE}"}

    def test_int_keys_are_found(self):
        """Deliberately unlike OmegaConf: `${m.1}` finds an int key 1 (Ato keeps int keys)."""
        tree = {"m": {1: "one", "2": "two"}, "a": "${m.1}", "b": "${m.2}", "c": "${m[1]}"}
        assert resolve_tree(tree) == {**tree, "a": "one", "b": "two", "c": "one"}

    @pytest.mark.parametrize("text, message", [
        ("${a", "unterminated interpolation"), ("${}", "expected a key"),
        ("${a b}", "unexpected 'b'"), ("${oc.select:a,'x}", "unterminated quoted string"),
        ("${oc.select:a,f(x)}", r"unexpected '\(': expected ',' or '}'"), ("${oc.select:a,[1,2}",
                                                               "expected ',' or ']'"),
    ])
    def test_grammar_errors(self, text, message):
        with pytest.raises(GrammarParseError, match=message):
            resolve_tree({"a": 1, "v": text})

    def test_decode_never_evaluates(self, tmp_path):
        """oc.decode parses literals only: Python text stays text or fails to parse."""
        cfg = compose(tmp_path, "a: \"${oc.decode:'__import__'}\"\n")
        assert cfg.a == "__import__"
        with pytest.raises(InterpolationResolutionError, match="GrammarParseError"):
            compose(tmp_path, "a: \"${oc.decode:'__import__(\\\"os\\\")'}\"\n")

    def test_deprecated_warns_and_forwards(self, tmp_path):
        with pytest.warns(UserWarning, match="'old' is deprecated. Change your code and "
                                             "config to use 'new'"):
            cfg = compose(tmp_path, "new: 3\nold: ${oc.deprecated:new}\n")
        assert cfg.old == 3

    def test_dict_keys_and_values(self):
        tree = {"m": {"a": 1, "b": "${x}"}, "x": 5, "k": "${oc.dict.keys:m}",
                "v": "${oc.dict.values:m}"}
        assert resolve_tree(tree)["k"] == ["a", "b"] and resolve_tree(tree)["v"] == [1, 5]


    def test_dict_resolvers_resolve_an_interpolated_mapping(self, tmp_path):
        """oc.dict.keys/values on a key whose value is an interpolation (oc.create, a
        reference) use the mapping it resolves to, as OmegaConf 2.3 does."""
        cfg = compose(tmp_path, "z: '${oc.create:{a: 1}}'\nk: ${oc.dict.keys:z}\n"
                                "v: ${oc.dict.values:z}\ny: ${z}\nw: ${oc.dict.keys:y}\n")
        assert cfg.to_dict() == {"z": {"a": 1}, "k": ["a"], "v": [1], "y": {"a": 1}, "w": ["a"]}
        with pytest.raises(InterpolationResolutionError,
                           match="oc.dict.keys` cannot be applied to objects of type: int"):
            compose(tmp_path, "z: ${x}\nx: 3\nk: ${oc.dict.keys:z}\n")

    @pytest.mark.parametrize("function, name", [
        (lambda a: 1 / 0, "ZeroDivisionError"), (lambda a: [][a], "IndexError"),
        (lambda a: a.nope, "AttributeError"), (lambda a: open("/nonexistent/x"), "FileNotFoundError"),
    ])
    def test_any_error_in_a_user_resolver_is_wrapped(self, tmp_path, function, name):
        """Whatever a user's resolver raises becomes an InterpolationResolutionError that
        names the exception and the key, as OmegaConf wraps it."""
        with pytest.raises(InterpolationResolutionError) as info:
            compose(tmp_path, "x: ${boom:1}\n", resolvers={"boom": function})
        assert str(info.value).startswith(f"{name} raised while resolving interpolation: ")
        assert str(info.value).endswith("(resolving 'x': '${boom:1}')")
        assert isinstance(info.value.__cause__, Exception)

    def test_a_long_chain_is_refused_clearly(self, tmp_path):
        """A chain of references longer than MAX_CHAIN is an InterpolationResolutionError
        naming its start (never a RecursionError); a shorter one resolves."""
        def chain(n):
            return "".join(f"k{i}: ${{k{i + 1}}}\n" for i in range(n)) + f"k{n}: 1\n"
        assert compose(tmp_path, chain(99)).k0 == 1
        for n in (101, 2000):
            with pytest.raises(InterpolationResolutionError) as info:
                compose(tmp_path, chain(n))
            assert str(info.value) == (
                "interpolations nested too deeply: k0 -> k1 -> k2 -> ... -> k100 is a chain of "
                "more than 100 references (resolving 'k0': '${k1}')")


    @pytest.mark.parametrize("text, message", [
        ("x: '${oc.select:" * 1 + "${oc.select:" * 1000 + "a" + "}" * 1001 + "'\n",
         "GrammarParseError: interpolations or resolver arguments nested too deeply"),
        ("x: '${oc.create:" + "[" * 3000 + "]" * 3000 + "}'\n",
         "GrammarParseError: interpolations or resolver arguments nested too deeply"),
        ("x: '${oc.decode:\"" + "[" * 3000 + "]" * 3000 + "\"}'\n",
         "InterpolationResolutionError: GrammarParseError raised while resolving "
         "interpolation: cannot decode a value nested this deeply"),
    ])
    def test_deeply_nested_text_is_refused_clearly(self, tmp_path, text, message):
        """Interpolations or resolver arguments nested thousands deep are an
        InterpolationError naming the key, with the value shortened (no RecursionError)."""
        with pytest.raises(InterpolationError) as info:
            compose(tmp_path, "a: 1\n" + text)
        shown = f"{type(info.value).__name__}: {info.value}"
        assert shown.startswith(message + " (resolving 'x': '${oc.")
        assert len(shown) < 300


class TestHydraResolvers:
    def test_now_python_version_and_hydra(self, tmp_path, monkeypatch):
        """Hydra's own resolvers work without a Hydra run; `now` is one instant."""
        import datetime
        import sys

        monkeypatch.chdir(tmp_path)
        cfg = compose(tmp_path, "a: ${now:%Y-%m-%d}\nb: ${now:%Y-%m-%d}_${now:%H}\n"
                                "py: ${python_version:minor}\ncwd: ${hydra:runtime.cwd}\n"
                                "out: ${hydra:runtime.output_dir}\njob: ${hydra:job.name}\n")
        today = datetime.date.today().strftime("%Y-%m-%d")
        assert cfg.a in (today, (datetime.date.today() - datetime.timedelta(days=1)).isoformat())
        assert cfg.b.startswith(cfg.a + "_")
        assert cfg.py == f"{sys.version_info[0]}.{sys.version_info[1]}"
        assert cfg.cwd == str(tmp_path) and cfg.job == "config"
        assert cfg.out.startswith(str(tmp_path / "outputs" / cfg.a))
        assert not (tmp_path / "outputs").exists()

    def test_hydra_reads_the_primary_hydra_mapping(self, tmp_path, monkeypatch):
        """`${hydra:run.dir}` and the output dir follow a `hydra:` mapping, which is still
        dropped from the result."""
        monkeypatch.chdir(tmp_path)
        cfg = compose(tmp_path, "log: logs\nhydra:\n  run:\n    dir: ${log}/run1\n"
                                "out: ${hydra:runtime.output_dir}\nrd: ${hydra:run.dir}\n")
        assert cfg.to_dict() == {"log": "logs", "out": str(tmp_path / "logs" / "run1"),
                                 "rd": "logs/run1"}

    def test_unknown_hydra_key_says_what_is_known(self, tmp_path):
        with pytest.raises(InterpolationResolutionError,
                           match="'hydra:runtime.choices' is not known without a Hydra run"):
            compose(tmp_path, "c: ${hydra:runtime.choices}\n")

    def test_user_resolvers(self, tmp_path):
        """`resolvers=` adds functions as OmegaConf.register_new_resolver does."""
        cfg = compose(tmp_path, "a: 3\nb: ${mul:${a},2}\nc: ${mul:'x',3}\n",
                      resolvers={"mul": lambda x, y: x * y})
        assert (cfg.b, cfg.c) == (6, "xxx")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="${}[]().,:'\"\\ab1 -_%", max_size=24))
def test_any_text_resolves_or_fails_cleanly(text):
    """Whatever the text, resolution returns a value or raises an InterpolationError."""
    os.environ.pop("ATO_TEST_UNSET", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            resolve_tree({"a": 1, "b": {"c": 2}, "v": text})
        except InterpolationError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="$\\"), max_size=30))
def test_text_without_dollar_or_backslash_is_unchanged(text):
    assert resolve_tree({"v": text}) == {"v": text}


def test_escaped_trailing_space_is_kept():
    """`\\ ` is an escaped space: the whitespace trimmed before `}` or `,` is not it."""
    assert resolve_tree({"v": "${oc.select:n,x\\ }", "w": "${oc.select:n, a b }"}) == \
        {"v": "x ", "w": "a b"}


def test_too_many_arguments_says_what_the_resolver_takes():
    with pytest.raises(InterpolationResolutionError,
                       match=r"oc\.select takes \(key, \[default\]\), got 3 arguments"):
        resolve_tree({"w": "${oc.select:n,a,b}"})
