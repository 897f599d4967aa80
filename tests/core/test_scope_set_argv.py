"""``Scope.set_argv(rest)``: a script parses its own options with argparse's
``parse_known_args()`` and hands the leftovers to the scopes (real processes)."""

import subprocess
import sys
import textwrap

import pytest

from ato.scope import Scope

SCRIPT = textwrap.dedent("""
    import argparse
    from ato.scope import Scope

    scope = Scope()

    @scope.observe(default=True)
    def defaults(config):
        config.lr, config.depth = 0.1, 2

    @scope.observe()
    def deep(config):
        config.depth = 8

    parser = argparse.ArgumentParser()
    parser.add_argument('--name')
    args, rest = parser.parse_known_args()
    Scope.set_argv(rest)

    @scope
    def main(config):
        print(args.name, config.lr, config.depth)

    main()
""")


@pytest.mark.parametrize("argv, printed", [
    (["--name", "x", "lr=0.5"], "x 0.5 2"),
    (["deep", "--name", "y"], "y 0.1 8"),
    (["--name=z"], "z 0.1 2"),
])
def test_leftover_argv_reaches_the_scope(tmp_path, argv, printed):
    (tmp_path / "s.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "s.py", *argv], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == printed


def test_a_bad_leftover_is_still_one_clear_error(tmp_path):
    (tmp_path / "s.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "s.py", "--name", "x", "--typo"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--typo" in done.stderr


@pytest.mark.parametrize("bad", ["lr=0.1", [1, 2], ["ok", None]])
def test_set_argv_takes_a_list_of_strings(bad):
    with pytest.raises(TypeError, match="Scope.set_argv takes a list of str tokens"):
        Scope.set_argv(bad)
