"""Every command-line error names the argument by its number and the token, points at the
character at fault, and says how to write it instead — in process (parse, routing, scope
application, ``manual --why``) and through real scripts, where the number is the index in
``sys.argv``."""

from __future__ import annotations

import textwrap

import pytest

from ato.errors import CLIError, UnknownViewError
from ato.grammar import Assign, Word, parse_args
from ato.scope import Scope
from ato.scoping import cli as _cli
from tests.conftest import run_script


def error_for(argv, numbers=None) -> CLIError:
    with pytest.raises(CLIError) as info:
        parse_args(argv, numbers)
    return info.value


# (argv, the argument's number, the token, the character at fault (1-based), a fragment of
# the fix the message gives)
PARSE_ERRORS = [
    # keys
    (["ok", "=3"], 2, "=3", 1, "write key=value, e.g. lr=0.1"),
    (["a..b=1"], 1, "a..b=1", 2, "use names separated by dots, e.g. model.depth"),
    (["x", "y", ".lr=1"], 3, ".lr=1", 1, "use names separated by dots"),
    (["lr+=1"], 1, "lr+=1", 1, "use names separated by dots"),
    (["layers[0]=5"], 1, "layers[0]=5", 1, "use names separated by dots"),
    (["sqlite:///x.db"], 1, "sqlite:///x.db", None, "Scope(use_external_parser=True)"),
    # literals
    (["a", "b", "lr==0.1"], 3, "lr==0.1", 4, "one '=' separates key and value (write lr=0.1"),
    (["m=1+2"], 1, "m=1+2", 4, "write the value itself, or text as %1+2%"),
    (["x=1;y=2"], 1, "x=1;y=2", 4, "or text as %1;y=2%"),
    (["x=tru"], 1, "x=tru", 3, "write strings as %tru%"),
    (["flag=true"], 1, "flag=true", 6, "did you mean True?"),
    (["x=1'a'"], 1, "x=1'a'", 4, "text goes whole in %...%"),
    (["x="], 1, "x=", 3, "write a number, True/False/None, %text%"),
    (["x=,"], 1, "x=,", 3, "text holding ',' goes in %...%"),
    (["x=[1,,2]"], 1, "x=[1,,2]", 6, "write a number, True/False/None"),
    (["x=\"\\x4\""], 1, "x=\"\\x4\"", 4, "expected 2 hex digits"),
    (["x=\"\\U11000000\""], 1, "x=\"\\U11000000\"", 4, "the largest is \\U0010ffff"),
    # brackets, dicts
    (["x=[1,2"], 1, "x=[1,2", 3, "add the closing ']'"),
    (["x=[1", "2"], (1, 2), "x=[1 2", 3, "add the closing ']'"),
    (["ok", "x=[1,2)"], 2, "x=[1,2)", 7, "close it with ']'"),
    (["x=(1", "2]"], (1, 2), "x=(1 2]", 7, "close it with ')'"),
    (["x={1:2"], 1, "x={1:2", 3, "add the closing '}'"),
    (["x=[1 2]"], 1, "x=[1 2]", 6, "separate items with ','"),
    (["x={%a% 1}"], 1, "x={%a% 1}", 8, "write {key: value, ...}"),
    (["x={%a%:1 %b%:2}"], 1, "x={%a%:1 %b%:2}", 10, "write {key: value, ...}"),
    (["x={[1]:2}"], 1, "x={[1]:2}", 4, "a dict key must be a string or number"),
    # quotes and %strings% never closed: the rest of the line is the token
    (["x='abc", "y=1"], (1, 2), "x='abc y=1", 3, "add the closing '"),
    (["a", "model=%resnet", "101", "lr=2"], (2, 4), "model=%resnet 101 lr=2", 7,
     "add the closing '%'"),
]


@pytest.mark.parametrize("argv, number, token, character, fix", PARSE_ERRORS)
def test_every_parse_error_names_the_argument_token_place_and_fix(argv, number, token,
                                                                   character, fix):
    error = error_for(argv)
    assert error.token == token and error.argument == number
    assert (error.position is None if character is None else error.position + 1 == character)
    label = (f"argument {number}" if isinstance(number, int)
             else f"arguments {number[0]}-{number[1]}")
    where = "" if character is None else f" at character {character}"
    assert str(error).startswith(f"{label} {token!r}{where}: ")
    assert fix in error.detail
    assert str(error).count("\n") == 0  # one line on stderr


def test_numbers_given_for_the_arguments_are_the_ones_named():
    error = error_for(["high_lr", "x=[1"], numbers=[4, 7])
    assert error.argument == 7 and str(error).startswith("argument 7 'x=[1'")


def test_valid_input_keeps_its_meaning_and_records_each_item_s_argument():
    items = parse_args(["high_lr", "model=%resnet", "101%", "lr=0.01", "d={a:1}".replace(
        "a", "%a%")])
    assert items == [Word("high_lr", "high_lr"),
                     Assign(("model",), "resnet 101", "model=%resnet 101%"),
                     Assign(("lr",), 0.01, "lr=0.01"),
                     Assign(("d",), {"a": 1}, "d={%a%:1}")]
    assert [item.argument for item in items] == [1, (2, 3), 4, 5]
    # where an item came from takes no part in what it means
    assert Assign(("lr",), 0.01, "lr=0.01", 9) == Assign(("lr",), 0.01, "lr=0.01")
    assert repr(items[2]) == "Assign(key=('lr',), value=0.01, token='lr=0.01')"


@pytest.fixture
def single():
    scope = Scope()

    @scope.observe(default=True)
    def defaults(cfg):
        cfg.lr = 0.1
        cfg.model = {"depth": 50}
        cfg.mixed = {1: "int", "1": "text"}

    @scope.observe()
    def high_lr(cfg):
        cfg.lr = 0.5

    return scope


def test_scope_application_errors_are_numbered(single):
    with pytest.raises(UnknownViewError) as info:
        single.apply(["lr=1", "hihg_lr"])
    assert str(info.value) == ("argument 2 'hihg_lr': unknown view 'hihg_lr' — did you mean "
                               "'high_lr'?")
    with pytest.raises(UnknownViewError) as info:
        single.apply(["zzz"])
    assert str(info.value) == ("argument 1 'zzz': unknown view 'zzz' (views: defaults, high_lr; to set "
                               "a value write zzz=<value>)")
    with pytest.raises(CLIError) as info:
        single.apply(["high_lr", "lr.x=1"])
    assert str(info.value) == ("argument 2 'lr.x=1': lr is a float, not a mapping, so lr.x "
                               "cannot be set (set lr itself: lr=<value>)")
    with pytest.raises(CLIError) as info:
        single.apply(["a=1", "b=2", "mixed.1=%x%"])
    assert str(info.value).startswith("argument 3 'mixed.1=%x%': 'mixed' has both the key "
                                      "'1' (text) and the key 1 (int), so 1 is ambiguous; "
                                      "rename one of them")


@pytest.fixture
def pair():
    model, data = Scope(name="model"), Scope(name="data")

    @model.observe(default=True)
    def m(model):
        model.lr = 0.1

    @model.observe()
    def fast(model):
        model.lr = 1.0

    @data.observe()
    def fast(data):  # noqa: F811 - the same view name in both scopes
        data.batch = 512

    @data.observe()
    def imagenet(data):
        data.name = "imagenet"

    return {"model": model, "data": data}


@pytest.mark.parametrize("argv, number, fix", [
    (["imagenet", "lr=0.1"], 2, "with several scopes a key starts with a scope name "
                                "(model.lr, data.lr)"),
    (["modle.lr=0.1"], 1, "did you mean 'model'?"),
    (["imagenet", "model.lr=1", "model=0.1"], 3, "give a key inside scope 'model', e.g. model.lr=0.1"),
    (["print"], 1, "say which to print: model.print, data.print"),
    (["fast"], 1, "view 'fast' is defined by scopes model, data; write model.fast or data.fast"),
    (["model.imagenet"], 1, "unknown view 'imagenet' (views: fast, m; to set a value write "
                            "model.imagenet=<value>)"),
    (["imagnet"], 1, "unknown view 'imagnet' — did you mean 'imagenet' or 'data.imagenet'?"),
    (["qqq"], 1, "(views: data.fast, data.imagenet, model.fast, model.m; to set a value write "
                 "qqq=<value>)"),
])
def test_routing_errors_among_several_scopes_are_numbered(pair, argv, number, fix):
    with pytest.raises(CLIError) as info:
        _cli.route(parse_args(argv), pair)
    assert str(info.value).startswith(f"argument {number} {argv[number - 1]!r}: ")
    assert fix in str(info.value)


def test_manual_and_why_count_as_arguments(pair):
    error = error_for_invocation(["manual", "--why", "lr=3"])
    assert str(error) == ("argument 2 '--why': --why needs a key to explain: write --why "
                          "model.lr (or --why-all for every key)")
    error = error_for_invocation(["manual", "--why", "lr", "x=[1"])
    assert error.argument == 4 and error.token == "x=[1"
    inv = _cli.parse_invocation(["manual", "imagenet", "--why", "lr", "--why=model.lr"])
    assert inv.why == ["lr", "model.lr"] and inv.why_arguments == [4, 5]
    from ato.scoping.manual import explain

    with pytest.raises(CLIError) as info:
        explain(pair, inv, "main")
    assert str(info.value).startswith("argument 4 'lr': name the scope first: model.lr, data.lr")


def error_for_invocation(argv) -> CLIError:
    with pytest.raises(CLIError) as info:
        _cli.parse_invocation(argv)
    return info.value


def test_leftovers_of_an_external_parser_are_numbered_where_they_stand():
    argv = ["--lr", "0.1", "high_lr", "--flag", "x=[1"]
    assert _cli.argument_numbers(["high_lr", "x=[1"], argv) == [3, 5]
    assert _cli.argument_numbers(["gone"], argv) == [None]
    _cli.hand_off(["high_lr", "x=[1"], [3, 5])
    with pytest.raises(CLIError) as info:
        _cli.invocation()
    assert str(info.value).startswith("argument 5 'x=[1' at character 3: unbalanced bracket")


SCRIPT = textwrap.dedent("""
    import argparse, sys
    from ato.scope import MultiScope, Scope

    mode = sys.argv.pop(1)  # not part of the command line the scopes read
    if mode == 'multi':
        model, data = Scope(name='model'), Scope(name='data')

        @model.observe(default=True)
        def m(model):
            model.lr = 0.1

        @data.observe()
        def imagenet(data):
            data.name = 'imagenet'

        @MultiScope(model, data)
        def main(model, data):
            print(model.lr)
    else:
        scope = Scope(use_external_parser=mode == 'argparse')

        @scope.observe(default=True)
        def defaults(cfg):
            cfg.lr = 0.1

        @scope.observe()
        def high_lr(cfg):
            cfg.lr = 0.5

        @scope
        def main(cfg):
            print(cfg.lr)

    if mode == 'argparse':
        parser = argparse.ArgumentParser()
        parser.add_argument('--epochs', type=int, default=1)
        parser.parse_args()
    main()
""")


@pytest.mark.parametrize("argv, line", [
    (["plain", "high_lr", "lr==0.1"],
     "argument 2 'lr==0.1' at character 4: unexpected '=0.1': one '=' separates key and "
     "value (write lr=0.1; text holding '=' goes in %...%)"),
    (["plain", "layers=[64,128)"],
     "argument 1 'layers=[64,128)' at character 15: ')' does not match the open '[': close it "
     "with ']'"),
    (["plain", "model=%resnet", "101"],
     "arguments 1-2 'model=%resnet 101' at character 7: unterminated %string: add the "
     "closing '%'"),
    (["plain", "manual", "--why"],
     "argument 2 '--why': --why needs a key to explain: write --why model.lr (or --why-all "
     "for every key)"),
    (["multi", "imagenet", "lr=2"],
     "argument 2 'lr=2': with several scopes a key starts with a scope name (model.lr, "
     "data.lr)"),
    (["argparse", "--epochs", "3", "high_lr", "=3"],
     "argument 4 '=3' at character 1: the key before '=' is empty: write key=value, e.g. "
     "lr=0.1"),
])
def test_a_script_reports_the_argument_as_sys_argv_numbers_it(tmp_path, argv, line):
    """A real script: one line on stderr naming ``sys.argv[N]``, exit status 2."""
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    proc = run_script(path, *argv)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"train.py: error: {line}"]
    good = run_script(path, argv[0], "lr=0.25" if argv[0] != "multi" else "model.lr=0.25")
    assert (good.returncode, good.stdout) == (0, "0.25\n"), good.stderr


# Text glued to a complete item (no white space between) is not a second item.
GLUED_TEXT_ERRORS = [
    (["x='a''b'"], "argument 1 \"x='a''b'\" at character 6: unexpected \"'b'\" after the value "
     "(one value per item; text goes whole in %...%)"),
    (["x='a'b"], "argument 1 \"x='a'b\" at character 6: unexpected 'b' after the value (one "
     "value per item; text goes whole in %...%)"),
    (['x="""abc"""'], "argument 1 'x=\"\"\"abc\"\"\"' at character 5: unexpected "
     "'\"abc\"\"\"' after the value (one value per item; text goes whole in %...%)"),
    (["x=[1]{2:3}"], "argument 1 'x=[1]{2:3}' at character 6: unexpected '{2:3}' after the "
     "value (one value per item; text goes whole in %...%)"),
    # an error inside such an argument quotes the whole argument too
    (["x=1+ y=2"], "argument 1 'x=1+ y=2' at character 4: unexpected '+': values are "
     "literals, expressions are not evaluated (write the value itself, or text as %1+%)"),
]


@pytest.mark.parametrize("argv, message", GLUED_TEXT_ERRORS)
def test_text_glued_to_an_item_names_the_whole_argument(argv, message):
    """Text glued to a complete value is refused with the whole argument quoted, at the
    first character of the extra text."""
    assert str(error_for(argv)) == message


@pytest.mark.parametrize("argv, items", [
    (["model=%resnet", "101%", "lr=1"], 2),       # a value the shell split: still one item
    ([" x=1 ", "", "high_lr"], 2),                # white space around an item is no item
    (["x=%a b%", "y='c d'", "z=[1, 2]", "w={%k%: (1, 2)}"], 4),
    # items separated by white space inside one argument, as the original re-tokenised
    # the joined command line (SPEC 2): `python train.py "$OVERRIDES"` keeps working
    (["x='a' high_lr"], 2),
    (["x=1 y=2"], 2),
    (["x=1", "high_lr lr=5"], 3),
    (["a=%x", "y% b=2"], 2),
])
def test_one_item_spread_padded_or_several_in_one_argument(argv, items):
    assert len(parse_args(argv)) == items


def test_deep_keys_and_values_are_refused_clearly():
    """A key of more than MAX_NESTING parts, or a value nested deeper, is one CLIError (not
    a RecursionError); up to the limit both work through a Scope."""
    from ato.representable import MAX_NESTING

    key = ".".join(f"k{i}" for i in range(500))
    error = error_for([f"{key}=1"])
    assert error.detail == "the key has 500 parts: Ato nests keys at most 100 deep"
    assert str(error).startswith("argument 1 'k0.k1.k2.") and len(str(error)) < 250
    error = error_for(["x=" + "[" * 5000 + "]" * 5000])
    assert error.position == 2 + MAX_NESTING
    assert error.detail == ("containers nested more than 100 deep: Ato keeps at most 100 "
                            "levels of lists and dicts")
    error = error_for(["x=" + "{%a%:" * 101 + "1" + "}" * 101])
    assert "containers nested more than 100 deep" in error.detail
    scope = Scope()
    config = scope.apply([".".join(f"k{i}" for i in range(MAX_NESTING)) + "=" +
                          "[" * MAX_NESTING + "]" * MAX_NESTING])
    assert config.to_dict() and scope.explain()


def test_tuples_become_lists_at_every_depth():
    """A command-line value is stored with every tuple turned into a list, at any depth."""
    config = Scope().apply(["x=[1,[2,{%a%:(3,)}]]", "t=(1,(2,[(3,4)]))", "d={%k%: ((1,),)}"])
    assert config.to_dict() == {"x": [1, [2, {"a": [3]}]], "t": [1, [2, [[3, 4]]]],
                                "d": {"k": [[1]]}}


def test_print_with_several_scopes_takes_the_scope_prefix(pair):
    """docs/config.md#multiscope: `model.print` goes to the model scope as its print view."""
    routed = _cli.route(parse_args(["data.imagenet", "model.print"]), pair)
    assert routed["model"] == [Word("print", "model.print")]
    assert routed["data"] == [Word("imagenet", "data.imagenet")]


def test_manual_anywhere_keeps_the_argument_numbers():
    """`manual` after other arguments: the items and --why keys keep their sys.argv numbers."""
    inv = _cli.parse_invocation(["epochs=20", "manual", "--why", "warmup", "derived"])
    assert inv.manual and inv.why == ["warmup"] and inv.why_arguments == [4]
    assert [item.argument for item in inv.items] == [1, 5]
    assert _cli.parse_invocation(["a=1", "--help"]).manual
    assert not _cli.parse_invocation(["manual=1"]).manual


@pytest.mark.parametrize("argv, message", [
    (["manual", "--why="], "argument 2 '--why=': --why= needs a key to explain: write "
                           "--why=model.lr (or --why-all for every key)"),
    (["lr=1", "--why", "lr"], "argument 2 '--why': --why explains keys for manual: add the "
                              "word manual (python train.py manual --why lr ...)"),
    (["--why-all"], "argument 1 '--why-all': --why-all explains keys for manual: add the word "
                    "manual (python train.py manual --why lr ...)"),
])
def test_why_without_a_key_or_without_manual(argv, message):
    assert str(error_for_invocation(argv)) == message


def test_print_beside_manual_does_not_cut_the_explanation(single):
    """`print manual --why lr`: manual explains (print would have printed and exited)."""
    from ato.scoping.manual import explain

    inv = _cli.parse_invocation(["print", "high_lr", "manual", "--why", "lr"])
    assert explain({"config": single}, inv, "main").splitlines()[0] == "lr = 0.5"


@pytest.mark.parametrize("argv, manual, why, why_all, why_arguments, items", [
    (["lr=0.1 manual"], True, [], False, [], 1),
    (["manual --why-all"], True, [], True, [], 0),
    (["manual --why lr high_lr lr=0.5"], True, ["lr"], False, [1], 2),
    (["x=1", "-h high_lr"], True, [], False, [], 2),
    (["high_lr", "--help"], True, [], False, [], 1),
    (["manual", "--why lr epochs"], True, ["lr"], False, [2], 1),  # two items: lr, epochs
    (["x=1 --why=lr manual"], True, ["lr"], False, [1], 1),
    (["x=%manual%"], False, [], False, [], 1),  # the text 'manual' is no request
])
def test_manual_and_why_are_items_found_inside_any_argument(argv, manual, why, why_all,
                                                            why_arguments, items):
    inv = _cli.parse_invocation(argv)
    assert (inv.manual, inv.why, inv.why_all, inv.why_arguments, len(inv.items)) == (
        manual, why, why_all, why_arguments, items)


def test_why_errors_inside_a_multi_item_argument_point_at_the_item():
    error = error_for_invocation(["x=1", "high_lr --why"])
    assert str(error).startswith("argument 2 'high_lr --why' at character 9: --why explains")
    error = error_for_invocation(["manual x=1 --why"])
    assert str(error).startswith("argument 1 'manual x=1 --why' at character 12: --why needs")


# an error about one item of a multi-item argument quotes the whole argument and points at
# the item, whatever the kind of error
def test_errors_in_a_multi_item_argument_quote_it_and_point_at_the_item(single, pair):
    with pytest.raises(UnknownViewError) as info:
        single.apply(["lr=0.1 hihg_lr"])
    assert str(info.value) == ("argument 1 'lr=0.1 hihg_lr' at character 8: unknown view "
                               "'hihg_lr' — did you mean 'high_lr'?")
    with pytest.raises(CLIError) as info:
        single.apply(["x=1", "high_lr lr.x=1"])
    assert str(info.value).startswith("argument 2 'high_lr lr.x=1' at character 9: lr is a "
                                      "float, not a mapping")
    assert str(error_for(["lr=0.1", "a=1 b=[1,2"])).startswith(
        "argument 2 'a=1 b=[1,2' at character 7: unbalanced bracket")
    assert str(error_for(["a=1 b=(1,2]"])).startswith("argument 1 'a=1 b=(1,2]' at character 11")
    for argv, start, fix in [
        (["model.lr=1 zz.x=1"], "argument 1 'model.lr=1 zz.x=1' at character 12: ",
         "(model.zz.x, data.zz.x)"),
        (["data.imagenet print"], "argument 1 'data.imagenet print' at character 15: ",
         "say which to print"),
        (["model.lr=1 fast"], "argument 1 'model.lr=1 fast' at character 12: ",
         "write model.fast or data.fast"),
        (["x model.qq"], "argument 1 'x model.qq' at character 1: ", "unknown view 'x'"),
        (["data.imagenet model.qq"], "argument 1 'data.imagenet model.qq' at character 15: ",
         "unknown view 'qq'"),
    ]:
        with pytest.raises(CLIError) as info:
            _cli.route(parse_args(argv), pair)
        assert str(info.value).startswith(start) and fix in str(info.value), str(info.value)


@pytest.mark.parametrize("argv, message", [
    (["lr=1", "x=%a", "b%c"], "arguments 2-3 'x=%a b%c' at character 8: unexpected 'c' after "
     "the value"),
    (["x=%a b%c y=1"], "argument 1 'x=%a b%c y=1' at character 8: unexpected 'c' after the "
     "value"),
    (["q=1", "x=%a", "b%[1] y=2"], "arguments 2-3 'x=%a b%[1] y=2' at character 8: unexpected "
     "'[1]' after the value"),
    (["c=="], "argument 1 'c==' at character 3: unexpected '=': one '=' separates key and "
     "value (write c=%=% for the text '='"),
    (["c==x"], "argument 1 'c==x' at character 3: unexpected '=x': one '=' separates key and "
     "value (write c=%=x% for the text '=x'"),
    (["c==3"], "argument 1 'c==3' at character 3: unexpected '=3': one '=' separates key and "
     "value (write c=3;"),
    (["x=1%"], "argument 1 'x=1%' at character 4: unexpected '%' after the value (one value "
     "per item;"),
])
def test_glued_and_doubled_text_is_named_by_the_arguments_it_spans(argv, message):
    assert str(error_for(argv)).startswith(message)
