"""Command line and argparse (issue 8 §6), through real subprocesses: "given" means given on
the command line, unknown flags never swallow a view or an assignment, int-looking key
parts update int keys."""

from __future__ import annotations

import ast
import textwrap

import pytest

from tests.conftest import run_script

SCRIPT = textwrap.dedent("""
    import argparse, sys
    from ato.scope import Scope

    Scope.unknown_external_literals = sys.argv.pop(1)
    scope = Scope(use_external_parser=True)
    parser = argparse.ArgumentParser()
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--flag', action='store_true')
    parser.add_argument('--count', '-c', action='count', default=0)
    parser.add_argument('--tag', action='append')
    parser.add_argument('--name', default='base')

    @scope.observe(default=True)
    def defaults(cfg):
        cfg.classes = {0: 'cat', 1: 'dog'}
        cfg.mixed = {1: 'int', '1': 'text'}
        cfg.nested = {2: {'name': 'two'}}

    @scope.observe()
    def high_lr(cfg):
        cfg.lr = 0.01
        cfg.name = 'from_view'
        cfg.flag = True

    @scope
    def main(cfg):
        print(repr({k: cfg[k] for k in cfg if k != 'mixed'}))

    if __name__ == '__main__':
        parser.parse_args()
        main()
""")


@pytest.fixture
def cli(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)

    def call(*args, mode="ignore", ok=True):
        proc = run_script(path, mode, *args)
        if not ok:
            assert proc.returncode == 2, proc.stdout + proc.stderr
            return proc.stderr
        assert proc.returncode == 0, proc.stderr
        return ast.literal_eval(proc.stdout.strip())
    return call


class TestGivenMeansOnTheCommandLine:
    @pytest.mark.parametrize("args, lr", [
        ([], 0.1), (["high_lr"], 0.01), (["high_lr", "--lr", "0.1"], 0.1),
        (["--lr", "0.1", "high_lr"], 0.1), (["--lr", "0.1", "lr=0.5"], 0.1),
        (["--lr=0.1", "lr=0.5", "high_lr"], 0.1), (["lr=0.5"], 0.5), (["high_lr", "lr=0.5"], 0.5),
        (["--lr", "0.2", "high_lr"], 0.2),
    ])
    def test_explicit_value_equal_to_default_still_applies(self, cli, args, lr):
        """An explicit --lr applies above views and assignments even when it equals the
        default; an absent one is only the lowest default."""
        assert cli(*args)["lr"] == lr

    def test_every_kind_of_action(self, cli):
        """store_true, store (string), count and append count as given only when typed:
        `--name base` (the default) beats the view's name."""
        got = cli("high_lr", "--name", "base")
        assert (got["name"], got["flag"], got["count"], got["tag"]) == ("base", True, 0, None)
        got = cli("high_lr", "-cc", "--tag", "a", "--tag", "b")
        assert (got["name"], got["count"], got["tag"]) == ("from_view", 2, ["a", "b"])

    def test_subparsers_are_recorded(self, tmp_path):
        """An explicit value given to a sub-command's own option counts as given too."""
        path = tmp_path / "sub.py"
        path.write_text(textwrap.dedent("""
            import argparse
            from ato.scope import Scope
            scope = Scope(use_external_parser=True)
            parser = argparse.ArgumentParser()
            sub = parser.add_subparsers(dest='cmd')
            fit = sub.add_parser('fit')
            fit.add_argument('--epochs', type=int, default=3)

            @scope.observe()
            def long(cfg):
                cfg.epochs = 100

            @scope
            def main(cfg):
                print(cfg.epochs, cfg.cmd)

            parser.parse_args()
            main()
        """))
        proc = run_script(path, "fit", "--epochs", "3", "long")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["3", "fit"]


class TestUnknownFlags:
    @pytest.mark.parametrize("args, lr, name", [
        (["--verbose", "high_lr"], 0.01, "from_view"),
        (["--verbose", "lr=0.5"], 0.5, "base"),
        (["--verbose", "3", "high_lr"], 0.01, "from_view"),
        (["-q", "high_lr"], 0.01, "from_view"),
        (["--seed=3", "high_lr"], 0.01, "from_view"),
        (["--verbose", "--lr", "0.3"], 0.3, "base"),
        (["--offset", "-1", "lr=0.4"], 0.4, "base"),
        (["--verbose", "print"], None, None),
    ])
    def test_ignore_never_swallows_views_or_assignments(self, cli, tmp_path, args, lr, name):
        """A following view name, assignment or flag is never taken as the flag's value."""
        if args[-1] == "print":
            proc = run_script(tmp_path / "train.py", "ignore", *args)
            assert proc.returncode == 0 and "lr: 0.1" in proc.stdout
            return
        got = cli(*args)
        assert (got["lr"], got["name"]) == (lr, name)

    def test_merge_takes_values_but_not_views(self, cli):
        got = cli("--epochs", "7", "--debug", "high_lr", "--run-name", "%x y%", mode="merge")
        assert (got["epochs"], got["debug"], got["lr"], got["run_name"]) == (7, True, 0.01, "x y")

    def test_error_mode_names_the_flag(self, cli):
        err = cli("--verbose", "high_lr", mode="error", ok=False)
        assert ("argument 1 '--verbose': unknown option for the argument parser (add it to "
                "the parser, or set Scope.unknown_external_literals to 'ignore' or 'merge')"
                in err)


class TestIntKeys:
    def test_updates_int_key(self, cli):
        """`classes.1=%wolf%` updates key 1 of an int-keyed mapping (no new '1' key)."""
        assert cli("classes.1=%wolf%")["classes"] == {0: "cat", 1: "wolf"}
        assert cli("nested.2.name=%deux%")["nested"] == {2: {"name": "deux"}}

    def test_new_digit_key_stays_text(self, cli):
        """Only existing int keys are matched: a new key is the text typed."""
        assert cli("classes.5=%owl%")["classes"] == {0: "cat", 1: "dog", "5": "owl"}

    def test_ambiguous_key_is_refused(self, cli):
        err = cli("mixed.1=%x%", ok=False)
        assert ("argument 1 'mixed.1=%x%': 'mixed' has both the key '1' (text) and the key 1 "
                "(int), so 1 is ambiguous; rename one of them") in err

    def test_manual_why_follows_int_keys(self, tmp_path):
        """`manual --why classes.1` explains the int key the assignment updated."""
        path = tmp_path / "train.py"
        path.write_text(SCRIPT)
        proc = run_script(path, "ignore", "manual", "--why", "classes.1", "classes.1=%wolf%")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == "classes.1 = 'wolf'"
        assert "CLI classes.1=%wolf%  'dog' -> 'wolf'" in proc.stdout


def test_parse_args_inside_the_decorated_function_says_what_to_do(tmp_path):
    """parse_args() called inside the decorated function runs after the config is built:
    the refused flag's error says to call parse_args() first; at module level it works."""
    path = tmp_path / "t5.py"
    path.write_text(textwrap.dedent("""
        import argparse, sys
        from ato.scope import Scope

        scope = Scope(use_external_parser=True)
        parser = argparse.ArgumentParser()
        parser.add_argument('--lr', type=float, default=0.001)

        @scope.observe(priority=1)
        def high_lr(cfg):
            cfg.lr = 0.01

        @scope
        def train(cfg):
            if sys.argv[-1] == 'inside':
                parser.parse_args()
            print(cfg.lr)

        if sys.argv.pop() == 'outside':
            parser.parse_args()
        train()
    """))
    proc = run_script(path, "high_lr", "--lr", "0.1", "inside")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (
        "t5.py: error: argument 2 '--lr': an option for your argument parser, but the config "
        "is being built by calling train() before parser.parse_args() ran "
        "(Scope(use_external_parser=True) hands the command line to Ato only once "
        "parse_args() has parsed it): call parser.parse_args() first, e.g. at module level or "
        "in main() before train() (docs/config.md#argparse)\n")
    assert run_script(path, "high_lr", "--lr", "0.1", "outside").stdout == "0.1\n"


def test_manual_anywhere_with_an_external_parser(tmp_path):
    """`manual --why` after other arguments works with argparse too."""
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    proc = run_script(path, "ignore", "--lr", "0.5", "high_lr", "manual", "--why", "lr")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "lr = 0.5"
    assert "_argparse_literals" in proc.stdout


@pytest.mark.parametrize("args", [
    ["--lr", "0.5", "high_lr manual --why lr"],
    ["--lr", "0.5", "manual --why lr", "high_lr"],
])
def test_manual_inside_a_multi_item_argument_with_an_external_parser(tmp_path, args):
    """`manual --why` is found among the items of one argument, as everything else is."""
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    proc = run_script(path, "ignore", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "lr = 0.5"
