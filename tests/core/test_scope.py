"""Scope application (SPEC section 3), in process through Scope.apply(argv)."""

import pytest

from ato.adict import ADict
from ato.errors import AtoError, CLIError, UnknownViewError
from ato.scope import Scope


@pytest.fixture
def scope():
    scope = Scope()

    @scope.observe(default=True)
    def defaults(cfg):
        cfg.lr = 0.001
        cfg.epochs = 100

    @scope.observe(priority=1)
    def high_lr(cfg):
        cfg.lr = 0.01

    @scope.observe(priority=2)
    def long_training(cfg):
        cfg.epochs = 300

    return scope


class TestOrder:
    @pytest.mark.parametrize("argv, expected", [
        ([], {"lr": 0.001, "epochs": 100}),
        (["high_lr"], {"lr": 0.01, "epochs": 100}),
        (["high_lr", "long_training"], {"lr": 0.01, "epochs": 300}),
        (["long_training", "high_lr"], {"lr": 0.01, "epochs": 300}),
        (["lr=0.5", "high_lr"], {"lr": 0.5, "epochs": 100}),
    ])
    def test_priority_merging(self, scope, argv, expected):
        """SEED.md priority example; CLI assignments beat every non-lazy view."""
        assert scope.apply(argv).to_dict() == expected

    def test_negative_priority_runs_before_default(self, scope):
        """Defaults are not special in the ordering."""
        @scope.observe(priority=-1)
        def early(cfg):
            cfg.lr = 5

        assert scope.apply(["early"]).lr == 0.001

    def test_lazy_view_sees_cli(self):
        """A lazy view runs after the CLI assignments."""
        scope = Scope()

        @scope.observe(lazy=True, default=True)
        def computed(cfg):
            cfg.num_classes = 10 if cfg.dataset == "cifar10" else 1000

        assert scope.apply(["dataset=%cifar10%"]).num_classes == 10

    def test_chain_with(self, scope):
        """chain_with assigns the chained views first (ordered by their priority)."""
        @scope.observe(chain_with="high_lr")
        def combo(cfg):
            cfg.combo = cfg.lr

        assert scope.apply(["combo"]).to_dict() == {"lr": 0.01, "epochs": 100, "combo": 0.001}

    def test_chain_with_cycles_apply_each_view_once(self):
        """Views that chain to each other (or to themselves) apply once each, whichever is
        named: a loop of chain_with is no RecursionError."""
        scope = Scope()

        @scope.observe(chain_with="b")
        def a(cfg):
            cfg.order = [*cfg.get("order", []), "a"]

        @scope.observe(chain_with=["a", "b"])
        def b(cfg):
            cfg.order = [*cfg.get("order", []), "b"]

        assert scope.apply(["a"]).order == ["b", "a"]
        assert scope.apply(["b"]).order == ["a", "b"]

    def test_chain_with_an_unknown_view_names_the_chaining_view(self):
        scope = Scope()
        scope.observe("small", config={"x": 1}, chain_with="bigg")
        scope.observe("big", config={"y": 1})
        with pytest.raises(AtoError) as info:
            scope.apply(["small"])
        assert str(info.value) == ("view 'small' has chain_with='bigg', but scope 'config' has "
                                   "no view 'bigg' — did you mean 'big'?")

    def test_mapping_view_and_initial_config(self):
        """A mapping view updates the top level; Scope(config=dict) works."""
        scope = Scope(config={"a": 1, "m": {"x": 1}})
        scope.observe("small", config={"m": {"y": 2}})
        assert scope.apply(["small"]).to_dict() == {"a": 1, "m": {"y": 2}}
        assert scope.apply([]).to_dict() == {"a": 1, "m": {"x": 1}}


class TestLazyBlock:
    @pytest.fixture
    def scope(self):
        scope = Scope()
        calls = []

        @scope.observe(default=True)
        def my_config(cfg):
            calls.append(1)
            cfg.model = "resnet50"
            cfg.num_layers = 50
            with Scope.lazy():
                if cfg.model == "resnet101":
                    cfg.num_layers = 101

        scope.calls = calls
        return scope

    @pytest.mark.parametrize("argv, layers", [
        (["model=%resnet101%"], 101), (["model=%resnet101%", "num_layers=7"], 101),
        (["num_layers=7"], 7),
    ])
    def test_seed_semantics(self, scope, argv, layers):
        """SPEC 3.4: the block runs after the CLI assignments."""
        assert scope.apply(argv).num_layers == layers

    def test_views_without_lazy_blocks_run_once(self):
        """Only views that use Scope.lazy() are replayed."""
        scope = Scope()
        calls = []

        @scope.observe(default=True)
        def plain(cfg):
            calls.append(1)
            cfg.x = 1

        scope.apply([])
        assert calls == [1]

    def test_load_in_view_keeps_cli(self, tmp_path):
        """config.load() in a view no longer wipes CLI overrides (SPEC 3.5)."""
        path = tmp_path / "base.json"
        path.write_text('{"lr": 1, "depth": 2}')
        scope = Scope()

        @scope.observe(default=True)
        def load_external(config):
            config.load(str(path))
            with Scope.lazy():
                config.touched = True

        assert scope.apply(["lr=5"]).to_dict() == {"lr": 5, "depth": 2, "touched": True}

    def test_outside_a_view_is_an_error(self):
        """Scope.lazy() outside an application is a clear error."""
        with pytest.raises(AtoError, match="only be used inside a view"):
            with Scope.lazy():
                pass


class TestCLI:
    def test_unknown_view_suggests(self, scope):
        """A misspelt view name is an error with a close match."""
        with pytest.raises(UnknownViewError) as info:
            scope.apply(["hihg_lr"])
        assert str(info.value) == ("argument 1 'hihg_lr': unknown view 'hihg_lr' — did you "
                                   "mean 'high_lr'?")

    def test_nested_keys_created(self, scope):
        """Dotted CLI keys create missing levels (SEED 'Works with CLI')."""
        cfg = scope.apply(["model.backbone.resnet.depth=50", "data.batch_size=32"])
        assert cfg.model.backbone.resnet.depth == 50 and cfg.data.batch_size == 32

    def test_scalar_parent_is_an_error(self, scope):
        """Setting below a scalar names both keys."""
        with pytest.raises(CLIError, match="lr is a float, not a mapping"):
            scope.apply(["lr.x=1"])

    def test_built_config_is_not_auto(self, scope):
        """After building, a typo raises instead of yielding {}."""
        cfg = scope.apply([])
        with pytest.raises(AttributeError):
            cfg.lrr


class TestInjection:
    def test_first_positional_fallback_and_named(self):
        """def train(cfg) gets the config; a parameter named after the scope wins."""
        scope = Scope()

        @scope.observe(default=True)
        def d(cfg):
            cfg.v = 1

        @scope
        def train(cfg):
            return cfg.v

        @scope
        def second(x, config):
            return x, config.v

        @scope
        def first(config, x=2):
            return config.v, x

        assert train() == 1
        assert second(3) == (3, 1)
        assert first() == (1, 2) and first(5) == (1, 5) and first(x=7) == (1, 7)
        assert first(config=ADict(v=9)) == (9, 2)
        with scope.pause():
            assert train(ADict(v=4)) == 4


class TestProvenance:
    def test_chain_of_writes(self, scope):
        """Each write is recorded with its source, old and new value."""
        scope.apply(["high_lr", "lr=0.5"])
        text = scope.explain("lr")
        lines = text.splitlines()
        assert lines[0] == "lr = 0.5"
        assert "defaults" in lines[1] and "set 0.001" in lines[1] and "test_scope.py" in lines[1]
        assert "high_lr" in lines[2] and "0.001 -> 0.01" in lines[2]
        assert "CLI lr=0.5" in lines[3] and "0.01 -> 0.5" in lines[3]

    def test_user_writes_after_build_are_not_recorded(self, scope):
        """Provenance covers the build only."""
        cfg = scope.apply([])
        n = len(scope.writes)
        cfg.lr = 3
        assert len(scope.writes) == n

    def test_ancestor_replacement_explained(self):
        """A key set through a mapping shows the write of its parent."""
        scope = Scope()

        @scope.observe(default=True)
        def d(cfg):
            cfg.model = {"depth": 50}

        scope.apply(["model.depth=101"])
        text = scope.explain("model.depth")
        assert "set 50  (via model)" in text and "50 -> 101" in text


class TestFingerprints:
    def test_static_fingerprint_ignores_location(self):
        """Moving a function does not change its fingerprint; changing its code does."""
        from ato.scoping.fingerprint import static_fingerprint

        def f(x):
            return [i for i in range(x)]

        def g(x):
            return [i for i in range(x)]

        def h(x):
            return [i + 1 for i in range(x)]

        g.__code__ = g.__code__.replace(co_name="f", co_qualname=f.__code__.co_qualname)
        assert static_fingerprint(f) == static_fingerprint(g)
        assert static_fingerprint(f) != static_fingerprint(h)

    def test_runtime_trace_returns_result(self):
        """runtime_trace keeps the return value and uses the given trace id."""
        scope = Scope()

        @scope.runtime_trace(trace_id="out", inspect_fn=lambda r: r * 2)
        def step(cfg):
            return 21

        assert step() == 21
        assert set(scope.fingerprints["out"]) == {"runtime"}


class TestMultiScopeInProcess:
    @pytest.fixture
    def scopes(self):
        from ato.scope import MultiScope

        Scope(name="stray")  # created elsewhere; takes no part in the MultiScope
        model, data = Scope(name="model"), Scope(name="data")

        @model.observe(default=True)
        def m(model):
            model.lr = 0.1

        @data.observe(default=True)
        def d(data):
            data.lr = 0.001

        @data.observe(priority=1)
        def imagenet(data):
            data.name = "imagenet"

        return MultiScope(model, data)

    def test_keyword_only_and_kwargs_injection_built_once(self, scopes):
        """Keyword-only parameters and **kwargs receive configs; building happens once."""
        from ato.scoping.cli import set_argv

        set_argv(["model.lr=0.5", "imagenet"])

        @scopes
        def kwonly(*, data, model):
            return model.lr, data.name

        @scopes
        def anything(**kwargs):
            return sorted(kwargs)

        assert kwonly() == (0.5, "imagenet")
        assert anything() == ["data", "model"]
        cfg = scopes.build()
        assert cfg["model"] is scopes.scopes[0].config and kwonly() == (0.5, "imagenet")
        assert "stray" in Scope.registry


class TestConfigDocExample:
    """The views example of docs/config.md, run as a script: each statement the page makes
    about it (applying order, chain_with, lazy views, manual) holds."""

    @pytest.fixture(scope="class")
    def script(self, tmp_path_factory):
        import re
        from pathlib import Path

        page = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
        block = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S)
                     if "chain_with='high_lr'" in b)
        path = tmp_path_factory.mktemp("doc") / "train.py"
        path.write_text(block + "\n@scope\ndef train(cfg):\n    print(cfg.to_dict())\n\n"
                        "train()\n")
        return path

    def run(self, script, *argv):
        import ast
        import subprocess
        import sys

        proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True,
                              text=True, cwd=script.parent)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        return ast.literal_eval(out) if out.startswith("{") else out

    def test_only_chosen_views_apply(self, script):
        assert self.run(script) == {"lr": 0.001, "epochs": 100,
                                    "training": {"optimizer": {"name": "AdamW"}}}

    def test_lazy_view_runs_when_named_after_the_cli(self, script):
        assert self.run(script, "epochs=20", "derived")["warmup"] == 2
        assert "warmup" not in self.run(script, "epochs=20")

    def test_chained_view_applies_by_its_own_priority(self, script):
        config = self.run(script, "finetune")
        assert config["freeze_backbone"] is True and config["lr"] == 0.01
        why = self.run(script, "manual", "--why", "lr", "finetune")
        order = [line.split()[1] for line in why.splitlines()[1:]]
        assert order == ["defaults", "finetune", "high_lr"]

    def test_manual_lists_every_registered_view(self, script):
        out = self.run(script, "manual")
        assert "defaults → finetune → small → high_lr → (CLI Inputs) → derived → train" in out
        assert out == self.run(script, "manual", "high_lr")  # whatever is named

    def test_manual_works_wherever_it_stands(self, script):
        """`manual` (with --why) anywhere on the command line, as `print` works anywhere."""
        why = self.run(script, "epochs=20", "manual", "--why", "warmup", "derived")
        assert why.splitlines()[0] == "warmup = 2"
        assert self.run(script, "epochs=20", "derived", "manual", "--why=warmup") == why
        assert self.run(script, "--why", "warmup", "epochs=20", "derived", "manual") == why
        assert self.run(script, "epochs=20", "manual") == self.run(script, "manual")

    def test_mapping_view_write_points_at_its_registration(self, script):
        """A mapping view's writes are credited to the line of scope.observe(...)."""
        source = script.read_text().splitlines()
        line = next(i for i, text in enumerate(source, 1) if "scope.observe('small'" in text)
        why = self.run(script, "manual", "--why", "depth", "small")
        assert why.splitlines()[1].endswith(f"mapping view small  set 18  [train.py:{line}]")


def test_manual_is_a_reserved_view_name():
    with pytest.raises(ValueError, match="'manual' is reserved for the built-in manual command"):
        Scope().observe("manual", config={"a": 1})


def test_why_columns_align_by_display_width(tmp_path):
    """Wide (CJK) view names take two columns each: the change column still lines up."""
    from tests.conftest import run_script

    path = tmp_path / "t.py"
    path.write_text("from ato.scope import Scope\nscope = Scope()\n\n"
                    "@scope.observe(default=True)\ndef 默认(cfg):\n    cfg.lr = 1\n\n"
                    "@scope.observe()\ndef high_lr_view(cfg):\n    cfg.lr = 2\n\n"
                    "@scope\ndef train(cfg):\n    pass\n\ntrain()\n")
    out = run_script(path, "manual", "--why", "lr", "high_lr_view", cwd=tmp_path).stdout
    assert out.splitlines()[1:] == ["  1. 默认          set 1  [t.py:6]",
                                    "  2. high_lr_view  1 -> 2  [t.py:10]"]
