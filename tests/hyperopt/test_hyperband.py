"""Search spaces, the grid, HyperBand and its schedule (SPEC section 6)."""

import subprocess
import sys

import pytest

from ato.adict import ADict
from ato.hyperopt.base import GridSpaceMixIn, SearchSpaceError
from ato.hyperopt.hyperband import HyperBand
from ato.scope import Scope

README_SPACE = ADict(
    lr=ADict(param_type="FLOAT", param_range=(1e-5, 1e-1), num_samples=20, space_type="LOG"),
    batch_size=ADict(param_type="INTEGER", param_range=(16, 128), num_samples=5, space_type="LOG"),
    model=ADict(param_type="CATEGORY", categories=["resnet50", "resnet101", "efficientnet_b0"]),
)
BONUS = {"resnet50": 0, "resnet101": 0.05, "efficientnet_b0": 0.02}


def values(**spec):
    return GridSpaceMixIn.parameter_values("p", ADict(spec))


class TestGrid:
    @pytest.mark.parametrize("spec, expected", [
        (dict(param_type="INTEGER", param_range=(16, 128), num_samples=5, space_type="LOG"),
         [16, 26, 45, 76, 128]),
        (dict(param_type="INTEGER", param_range=(1, 10), num_samples=4), [1, 4, 7, 10]),
        (dict(param_type="INTEGER", param_range=(-5, 5), num_samples=4), [-5, -2, 1, 5]),
        (dict(param_type="INTEGER", param_range=(1, 1000), num_samples=4, space_type="LOG", base=10),
         [1, 10, 100, 1000]),
        (dict(param_type="FLOAT", param_range=(0.0, 0.5), num_samples=3), [0.0, 0.25, 0.5]),
        (dict(param_type="CATEGORY", categories=["a", 1]), ["a", 1]),
    ])
    def test_values(self, spec, expected):
        """Grid values per SPEC 6.2, exact endpoints, no float32."""
        assert values(**spec) == expected

    def test_float_log_endpoints_exact(self):
        """FLOAT LOG values are float64 with the exact endpoints."""
        v = values(param_type="FLOAT", param_range=(1e-5, 1e-1), num_samples=20, space_type="LOG")
        assert v[0] == 1e-5 and v[-1] == 0.1 and len(v) == 20
        assert values(param_type="FLOAT", param_range=(1e-4, 1e-1), num_samples=4,
                      space_type="LOG") == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)

    def test_integer_duplicates_removed(self):
        """More samples than integers gives each integer once."""
        assert values(param_type="INTEGER", param_range=(1, 10), num_samples=20) == list(range(1, 11))

    @pytest.mark.parametrize("spec, message", [
        (dict(param_range=(0, 1)), "'param_type' is required"),
        (dict(param_type="BOOL"), "param_type must be FLOAT, INTEGER or CATEGORY, not 'BOOL'"),
        (dict(param_type="FLOAT", param_range=(0, 1)), "needs 'param_range' and 'num_samples'"),
        (dict(param_type="FLOAT", param_range=(0, 1), num_samples=2, space_type="CUBIC"),
         "space_type must be LINEAR or LOG"),
        (dict(param_type="FLOAT", param_range=(0, 1), num_samples=2, space_type="LOG"),
         "a LOG range must be positive"),
    ])
    def test_errors_name_the_parameter(self, spec, message):
        """Bad entries raise SearchSpaceError naming the parameter."""
        with pytest.raises(SearchSpaceError, match=message):
            values(**spec)

    def test_product_order_and_nested_names(self):
        """Last parameter varies fastest; dotted names set nested keys."""
        space = ADict({"a": ADict(param_type="CATEGORY", categories=[1, 2]),
                       "opt.lr": ADict(param_type="CATEGORY", categories=[3, 4])})
        grid = GridSpaceMixIn.prepare_distributions(ADict(opt={"name": "sgd"}), space)
        assert [(g.a, g.opt.lr) for g in grid] == [(1, 3), (1, 4), (2, 3), (2, 4)]
        assert grid[0].opt.name == "sgd"


def readme_objective(config):
    import math

    return (-abs(math.log10(config.lr) + 3.1) - abs(config.batch_size - 45) / 1000
            + BONUS[config.model])


class TestHyperBand:
    def test_readme_search(self):
        """README setting: generations 300/90/27/8, 426 evaluations, the known winner."""
        scope = Scope()
        calls = []
        hb = HyperBand(scope, README_SPACE, halving_rate=0.3, num_min_samples=3, mode="max",
                       progress=False)

        @hb.main
        def train(config):
            calls.append(config.__num_halved__)
            return readme_objective(config)

        result = train()
        assert [len(g) for g in result.logs] == [300, 90, 27, 8, 1]
        assert len(calls) == 426
        assert result.config.lr == pytest.approx(10 ** (-5 + 4 * 9 / 19))
        assert (result.config.batch_size, result.config.model) == (45, "resnet101")
        steps = hb.compute_optimized_initial_training_steps(1000)
        assert max(calls) == len(steps) - 1 == result.config.__num_halved__

    def test_min_mode(self):
        """mode='min' finds the minimum."""
        hb = HyperBand(Scope(), README_SPACE, halving_rate=0.3, num_min_samples=3, mode="min",
                       progress=False)
        result = hb.main(readme_objective)()
        assert (result.config.lr, result.config.batch_size, result.config.model) == (
            0.1, 128, "resnet50")

    @pytest.mark.parametrize("min_samples, sizes", [(3, [16, 8, 4, 1]), (2, [16, 8, 4, 1])])
    def test_small_example_and_stopping_rule(self, min_samples, sizes):
        """Stop once no more than num_min_samples survive (README rule)."""
        space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 15), num_samples=16))
        hb = HyperBand(Scope(), space, halving_rate=0.5, num_min_samples=min_samples, mode="min",
                       progress=False)
        result = hb.main(lambda config: (config.x - 6) ** 2 + 0.5 * config.x)()
        assert [len(g) for g in result.logs] == sizes
        assert (result.config.x, result.metric) == (6, 3.0)

    def test_tiny_grid_still_searches(self):
        """A grid no larger than num_min_samples is evaluated once, no IndexError."""
        space = ADict(x=ADict(param_type="CATEGORY", categories=[1, 2]))
        result = HyperBand(Scope(), space, 0.5, 3, progress=False).main(lambda c: c.x)()
        assert result.config.x == 2 and [len(g) for g in result.logs] == [2, 1]

    @pytest.mark.parametrize("n, rate, min_samples, max_steps, expected", [
        (300, 0.3, 4, 100000, [2700, 9000, 30001, 100000]),
        (60, 0.3, 3, 1000, [90, 300, 1000]),
        (16, 0.5, 2, 1000, [250, 500, 1000]),
        (100, 0.5, 1, 100000, [1563, 3125, 6250, 12500, 25000, 50000, 100000]),
        (10, 0.5, 3, 50000, [25000, 50000]),
    ])
    def test_step_schedule(self, n, rate, min_samples, max_steps, expected):
        """compute_optimized_initial_training_steps gives SPEC 6.4's values."""
        space = ADict(x=ADict(param_type="INTEGER", param_range=(1, n), num_samples=n))
        hb = HyperBand(Scope(), space, rate, min_samples)
        assert hb.compute_optimized_initial_training_steps(max_steps) == expected

    def test_views_and_cli_reach_every_candidate(self):
        """Every candidate is built on the fully applied scope config; scope.config is restored."""
        scope = Scope()

        @scope.observe(default=True)
        def defaults(cfg):
            cfg.bias = 1

        scope.apply(["bias=100"])
        before = scope.config
        seen = []
        space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
        HyperBand(scope, space, 0.5, 1, progress=False).main(
            lambda config: seen.append(config.bias) or config.x)()
        assert set(seen) == {100} and scope.config is before

    def test_validation(self):
        """Bad settings are rejected."""
        scope = Scope()
        with pytest.raises(ValueError, match="halving_rate"):
            HyperBand(scope, README_SPACE, 1.5, 3)
        with pytest.raises(ValueError, match="num_min_samples"):
            HyperBand(scope, README_SPACE, 0.5, 0)
        with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
            HyperBand(scope, README_SPACE, 0.5, 3, mode="best")


def test_import_needs_neither_torch_nor_numpy():
    """`import ato.hyperopt.hyperband` works without importing torch or numpy."""
    code = ("import sys, ato.hyperopt.hyperband, ato.hyperopt.base; "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "False False"


def test_seed_examples_run(run):
    """The SEED.md hyperopt examples run unchanged and print the expected results."""
    from tests.conftest import EXAMPLES

    out = run(EXAMPLES / "seed" / "hyperband.py", check=True).stdout
    assert "'batch_size': 45, 'model': 'resnet101', '__num_halved__': 3" in out
    assert run(EXAMPLES / "seed" / "step_schedule.py", check=True).stdout.splitlines()[:3] == [
        "[2700, 9000, 30001, 100000]", "[2700, 9000, 30001, 100000]", "3 True"]
    assert run(EXAMPLES / "seed" / "custom_search.py", check=True).stdout.strip() == "6 0"


@pytest.mark.parametrize("args, message", [
    ((0.0, 3), "hyperband: halving_rate must be between 0 and 1 (exclusive), got 0.0"),
    ((True, 3), "hyperband: halving_rate must be a number, got True"),
    ((0.5, 2.5), "hyperband: num_min_samples must be an int >= 1, got 2.5"),
    ((0.5, True), "hyperband: num_min_samples must be an int >= 1, got True"),
])
def test_hyperband_options_are_named_in_errors(args, message):
    """HyperBand's own options fail like the common ones: SearchOptionError naming them."""
    from ato.hyperopt.base import SearchOptionError

    with pytest.raises(SearchOptionError) as info:
        HyperBand(Scope(), README_SPACE, *args)
    assert str(info.value) == message


def test_a_command_line_mistake_in_a_search_script_is_one_line_exit_2(tmp_path):
    """A search builds its base config from the command line like a decorated function:
    a typo in a view name is one line on stderr and exit status 2, never a traceback."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent("""
        from ato.scope import Scope
        from ato.hyperopt.hyperband import HyperBand
        scope = Scope()
        @scope.observe(default=True)
        def config(cfg):
            cfg.lr = 0.1
        @scope.observe()
        def high_lr(cfg):
            cfg.lr = 0.5
        space = {'lr': {'param_type': 'FLOAT', 'param_range': (0.01, 0.1), 'num_samples': 4}}
        hb = HyperBand(scope, space, halving_rate=0.5, num_min_samples=1, mode='max')
        @hb.main
        def objective(cfg):
            return cfg.lr
        print(objective().metric)
    """))
    bad = subprocess.run([sys.executable, str(script), "hihg_lr"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "search.py: error: argument 1 'hihg_lr': unknown view 'hihg_lr' — did you mean "
        "'high_lr'?"]
    good = subprocess.run([sys.executable, str(script), "high_lr"], capture_output=True,
                          text=True, timeout=120)
    assert good.returncode == 0, good.stderr
