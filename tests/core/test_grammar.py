"""The CLI grammar (SPEC section 2): literals only, specific errors, round trips."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ato.errors import CLIError
from ato.grammar import (
    Assign,
    Word,
    format_value,
    match_key,
    parse_args,
    parse_value,
    shell_quote,
)


def one(token):
    (item,) = parse_args([token])
    return item


class TestValues:
    @pytest.mark.parametrize("text, value", [
        ("64", 64), ("-4", -4), ("1_000", 1000), ("0.5", 0.5), ("1e-3", 1e-3), ("-0.5", -0.5),
        (".5", 0.5), ("0x10", 16), ("True", True), ("False", False), ("None", None),
        ("'abc'", "abc"), ('"a b"', "a b"), ("[64,128,256,512]", [64, 128, 256, 512]),
        ("(1,2)", (1, 2)), ("{'k':1,'j':[1,2]}", {"k": 1, "j": [1, 2]}),
        ("[1, [2, (3,)], {'a': None}]", [1, [2, (3,)], {"a": None}]),
        ("['a','b']", ["a", "b"]), ("[1,%a b%]", [1, "a b"]), ("inf", math.inf),
    ])
    def test_literals(self, text, value):
        """Every literal form of SPEC 2.2 parses to its Python value."""
        assert parse_value(text) == value

    @pytest.mark.parametrize("text, value", [
        ("%hello world%", "hello world"), ("%it's%", "it's"), ("%a=b%", "a=b"), ("%%", ""),
        ("%/data/x-1.5/file.txt%", "/data/x-1.5/file.txt"), ("%key: value%", "key: value"),
        ("%a%%b%", "a%b"), (r"%50\%%", "50%"), (r"%C:\new%", r"C:\new"), ('%say "hi"%', 'say "hi"'),
    ])
    def test_percent_strings(self, text, value):
        """Percent strings follow the intended escape rules of SPEC 2.3."""
        assert parse_value(text) == value

    def test_key_value_with_spaces_across_arguments(self):
        """A percent string may span shell arguments, as in `name=%hello world%`."""
        assert parse_args(["name=%hello", "world%", "x=1"]) == [
            Assign(("name",), "hello world", "name=%hello world%"), Assign(("x",), 1, "x=1")]

    def test_dotted_keys_and_words(self):
        """Dotted keys split into parts; other tokens are bare words."""
        assert one("model.backbone=%resnet101%") == Assign(
            ("model", "backbone"), "resnet101", "model.backbone=%resnet101%")
        assert one("high_lr") == Word("high_lr", "high_lr")


class TestErrors:
    @pytest.mark.parametrize("token, message", [
        ("model=resnet101", "'resnet101' is not a value; write strings as %resnet101% (type "
                            "model=%resnet101%, or \"model='resnet101'\": a shell removes quotes "
                            "that are not themselves quoted)"),
        ("x=", "a value is missing here: write a number, True/False/None, %text%, [list], "
               "(tuple) or {dict} (%% is the empty string)"),
        ("m=1+2", "unexpected '+2': values are literals, expressions are not evaluated (write "
                  "the value itself, or text as %1+2%)"),
        ("x=1;y=2", "unexpected ';y=2': values are literals, expressions are not evaluated "
                    "(write the value itself, or text as %1;y=2%)"),
        ("lr==3", "unexpected '=3': one '=' separates key and value (write lr=3; text holding "
                  "'=' goes in %...%)"),
        ("flag=true", "'true' is not a value; did you mean True?"),
        ("lr+=1", "'lr+' is not a valid key (use names separated by dots, e.g. model.depth)"),
        ("layers[0]=5", "'layers[0]' is not a valid key (use names separated by dots, e.g. model.depth)"),
        ("x=__import__('os')", "'__import__' is not a value; write strings as %__import__% or "
                               "'__import__' (Python quotes reach Ato only inside the shell's "
                               "quotes: \"'__import__'\")"),
    ])
    def test_rejected(self, token, message):
        """Non-literals and exec-era tricks are rejected with a specific message."""
        with pytest.raises(CLIError) as info:
            parse_args([token])
        assert info.value.detail == message
        assert info.value.token == token

    def test_unbalanced_bracket_names_token_and_position(self):
        """An unbalanced bracket names the token and where the bracket opened."""
        with pytest.raises(CLIError) as info:
            parse_args(["layers=[64,128"])
        assert str(info.value) == ("argument 1 'layers=[64,128' at character 8: unbalanced "
                                   "bracket: '[' is never closed: add the closing ']'")
        assert (info.value.argument, info.value.position) == (1, 7)


class TestShellSafeHints:
    """Every hint suggests what survives a POSIX shell (issue 8 §6)."""

    @pytest.mark.parametrize("token", ["model=resnet101", "layers=[64,a]", "opt={'k':sgd}",
                                       "pair=(1,b)", "m.name=x-1", "k=é"])
    def test_suggestions_survive_bash(self, tmp_path, token):
        """Each suggested command line, run through a real bash, reaches Ato as an
        argument that parses."""
        import shutil
        import subprocess
        import sys

        bash = shutil.which("bash")
        if bash is None:
            pytest.skip("no bash")
        with pytest.raises(CLIError) as info:
            parse_args([token])
        detail = info.value.detail
        start = detail.index("(type ") + len("(type ")
        first, _, rest = detail[start:].partition(", or ")
        second = rest.split(": a shell removes", 1)[0]
        for typed in (first, second):
            proc = subprocess.run(
                [bash, "-c", f"{sys.executable} -c 'import sys; print(sys.argv[1])' {typed}"],
                capture_output=True, text=True, cwd=tmp_path, check=True)
            (item,) = parse_args([proc.stdout.rstrip("\n")])
            assert isinstance(item, Assign)

    @pytest.mark.parametrize("argument, typed", [
        ("lr=0.1", "lr=0.1"), ("m=%a%", "m=%a%"), ("x=(1,2)", '"x=(1,2)"'),
        ("m='a'", "\"m='a'\""), ("m=$HOME", "'m=$HOME'"), ("m='$x'", "'m='\"'\"'$x'\"'\"''"),
        ("l=[1,2]", '"l=[1,2]"'), ("d={a:1,b:2}", '"d={a:1,b:2}"'), ("s=%a b%", '"s=%a b%"'),
    ])
    def test_shell_quote(self, argument, typed):
        """Bare when safe; double quotes when they suffice; single quotes otherwise."""
        assert shell_quote(argument) == typed


class TestMatchKey:
    def test_digit_parts_name_int_keys(self):
        assert match_key({0: "cat", 1: "dog"}, "1", "t") == 1
        assert match_key({"1": "x"}, "1", "t") == "1"
        assert match_key({}, "7", "t") == "7"
        assert match_key({True: "x"}, "1", "t") == "1"  # a bool key is not an int key
        assert match_key({"a": 1}, "a", "t") == "a"

    def test_ambiguous_is_refused(self):
        with pytest.raises(CLIError, match=r"'classes' has both the key '1' \(text\) and the "
                                           r"key 1 \(int\), so 1 is ambiguous"):
            match_key({1: "a", "1": "b"}, "1", "classes.1=%x%", "classes")


scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False) | st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=6) | st.integers(-99, 99), inner, max_size=4),
    max_leaves=12,
)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(values)
    def test_round_trip(self, value):
        """Every value the grammar can express comes back unchanged."""
        assert parse_args([f"k={format_value(value)}"]) == [
            Assign(("k",), value, f"k={format_value(value)}")]

    @settings(max_examples=500, deadline=None)
    @given(st.lists(st.text(max_size=20), max_size=4))
    def test_random_input_parses_or_cli_error(self, argv):
        """Random input yields a parse or a CLIError, never another exception."""
        try:
            parse_args(argv)
        except CLIError:
            pass

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="[](){}%'\",:=.\\ abTrue0123-e_", max_size=25))
    def test_random_grammar_soup(self, text):
        """Text made of the grammar's own characters never escapes as another error."""
        try:
            parse_args([text])
        except CLIError:
            pass


def test_a_token_that_is_neither_view_nor_assignment_says_how_to_pass_it():
    """A URL or a path given bare (``python train.py sqlite:///x.db``) is named, without a
    meaningless character position, with the two ways to pass it."""
    from ato.errors import CLIError
    from ato.grammar import parse_args

    for token in ("sqlite:///x.db", "data/train.csv", "-lr"):
        with pytest.raises(CLIError) as info:
            parse_args(["fast", token])
        assert str(info.value).startswith(f"argument 2 {token!r}: not a view name or "
                                          f"key=value assignment (set a value as key=value;")
        assert "use_external_parser=True" in str(info.value)
