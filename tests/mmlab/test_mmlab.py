"""OpenMMLab configs and Hydra-style composition, checked against the outputs of mmengine
and hydra-core themselves (stored in expected/ by `nox -s interop`)."""

import os
import warnings

import pytest

from ato.adict import ADict
from ato.errors import AtoError, ConfigFileError
from ato.mmlab.hydra import (
    ComposeArgumentError,
    CompositionError,
    MissingConfigError,
    MissingRequiredKeyError,
)
from tests.mmlab.interop_cases import (
    CORPORA,
    EX,
    LIGHTNING,
    MM_CASES,
    MM_ENV,
    OPENMMLAB,
    case_id,
    hydra_cases,
    load_expected,
    normalise,
)

needs_corpora = pytest.mark.skipif(not CORPORA.exists(), reason="../shared/corpora is not beside the checkout")


class TestOpenMMLab:
    @pytest.mark.parametrize("case", MM_CASES)
    @pytest.mark.filterwarnings("ignore::DeprecationWarning")  # _deprecation_ fixtures
    def test_same_as_mmengine(self, case, monkeypatch):
        """Each fixture resolves to what mmengine.Config.fromfile(...).to_dict() gives."""
        for k, v in MM_ENV.items():
            monkeypatch.setenv(k, v)
        ours = normalise(ADict.from_mm_config(OPENMMLAB / case).to_dict())
        assert ours == load_expected("mmengine")[case]

    def test_seed_example_semantics(self):
        """SPEC 1.15: backbone keeps type, GN norm replaces BN wholesale, optimizer merges."""
        cfg = ADict.from_mm_config(OPENMMLAB / "detection/faster_rcnn_r101.py")
        assert cfg.model.backbone.type == "ResNet" and cfg.model.backbone.depth == 101
        assert cfg.model.backbone.norm_cfg == {"type": "GN", "num_groups": 32}
        assert cfg.optimizer == {"type": "SGD", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0001}
        assert cfg.load_from is None and "helper" not in cfg and "__hidden__" not in cfg
        assert cfg.work_dir == "./work_dirs/default_runtime" and "_base_" not in cfg

    def test_instance_method_keeps_unrelated_keys(self):
        """config.load_mm_config() replaces the loaded top-level keys only."""
        cfg = ADict(mine=1, optimizer={"old": True})
        cfg.load_mm_config(OPENMMLAB / "detection/adam_child.py")
        assert cfg.mine == 1 and cfg.optimizer == {"type": "Adam", "lr": 0.0003}
        assert cfg.custom_imports.imports == ["os.path"]

    def test_paths_relative_to_the_naming_file(self, tmp_path, monkeypatch):
        """Bases resolve against the naming file, whatever the working directory holds."""
        (tmp_path / "_base_" / "schedules").mkdir(parents=True)
        (tmp_path / "_base_" / "schedules" / "schedule_1x.py").write_text("decoy = True\n")
        monkeypatch.chdir(tmp_path)
        cfg = ADict.from_mm_config(OPENMMLAB / "detection/faster_rcnn_r101.py")
        assert "decoy" not in cfg

    @pytest.mark.parametrize("name, message", [
        ("duplicate.py", "the same key in two bases: optimizer"),
        ("dict_over_scalar.py", "load_from is a mapping in the child config but a NoneType in its base"),
        ("syntax.py", r"syntax.py:2:9: syntax error: '\(' was never closed"),
        ("name_error.py", "name_error.py:2: NameError: name 'undefined_name' is not defined"),
    ])
    def test_errors_name_file_and_line(self, name, message):
        """Broken configs fail with the file (and line) in the message."""
        with pytest.raises(ConfigFileError, match=message):
            ADict.from_mm_config(OPENMMLAB / "errors" / name)

    def test_custom_imports_are_not_imported(self, tmp_path):
        """custom_imports is data; the named module is never imported."""
        (tmp_path / "c.py").write_text("custom_imports = dict(imports=['ato_never_imported'])\n")
        import sys

        cfg = ADict.from_mm_config(tmp_path / "c.py")
        assert cfg.custom_imports.imports == ["ato_never_imported"]
        assert "ato_never_imported" not in sys.modules


@needs_corpora
class TestHydra:
    @pytest.mark.parametrize("root, name, select", hydra_cases(),
                             ids=[case_id(*c) for c in hydra_cases()])
    def test_same_as_hydra_compose(self, root, name, select):
        """Every top-level config and a dozen selections compose as hydra.compose() does."""
        expected = load_expected("hydra")[case_id(root, name, select)]
        if "__error__" in expected:
            with pytest.raises((ValueError, LookupError, OSError)):
                ADict.compose_hierarchy(CORPORA / root, config_filename=name, select=select)
            return
        ours = ADict.compose_hierarchy(CORPORA / root, config_filename=name, select=select)
        assert normalise(ours.to_dict()) == expected

    def test_overrides_required_and_resolve(self, monkeypatch):
        """Dotted overrides act like ++key=value; required keys are checked; resolve=True."""
        monkeypatch.setenv("PROJECT_ROOT", "/proj")
        cfg = ADict.compose_hierarchy(
            CORPORA / LIGHTNING, config_filename="train", select={"experiment": "example"},
            overrides={"model.optimizer.lr": 0.01, "data.new_key": 3},
            required=["model.optimizer.lr", "trainer.max_epochs"], resolve=True)
        assert cfg.model.optimizer.lr == 0.01 and cfg.data.new_key == 3
        assert cfg.paths.data_dir == "/proj/data/" and cfg.logger.wandb.tags == ["mnist", "simple_dense_net"]
        with pytest.raises(MissingRequiredKeyError, match="Missing required key: model.nope"):
            ADict.compose_hierarchy(CORPORA / LIGHTNING, config_filename="train",
                                    required=["model.nope"])
        with pytest.raises(KeyError, match="Missing required key: seed.x"):
            ADict.compose_hierarchy(CORPORA / LIGHTNING, config_filename="train", required=["seed.x"])

    def test_mandatory_group(self):
        """A ??? group must be selected."""
        with pytest.raises(ValueError, match="you must select a config for group 'db'"):
            ADict.compose_hierarchy(CORPORA / EX / "patterns/extending_configs/conf")


class TestSeedComposition:
    @pytest.fixture
    def tree(self, tmp_path):
        (tmp_path / "model").mkdir()
        (tmp_path / "data").mkdir()
        (tmp_path / "config.yaml").write_text("defaults:\n  - model: resnet50\n  - _self_\nseed: 1\n")
        (tmp_path / "model" / "resnet50.yaml").write_text("backbone: resnet50\nlr: 0.1\n")
        (tmp_path / "model" / "resnet101.yaml").write_text("backbone: resnet101\n")
        (tmp_path / "data" / "imagenet.yaml").write_text("dataset: imagenet\nbatch_size: 256\n")
        return tmp_path

    def test_seed_example(self, tree):
        """SEED.md compose_hierarchy call: groups under their names, overrides, required."""
        config = ADict.compose_hierarchy(
            root=str(tree), config_filename="config",
            select={"model": "resnet50", "data": "imagenet"},
            overrides={"model.lr": 0.01, "data.batch_size": 64},
            required=["model.backbone", "data.dataset"], on_missing="warn")
        assert config.to_dict() == {"model": {"backbone": "resnet50", "lr": 0.01}, "seed": 1,
                                    "data": {"dataset": "imagenet", "batch_size": 64}}
        multi = ADict.compose_hierarchy(str(tree), select={"model": ["resnet50", "resnet101"]})
        assert multi.model == {"backbone": "resnet101", "lr": 0.1}

    def test_on_missing(self, tree):
        """'error' raises for a missing primary or option; 'warn' warns and goes on."""
        with pytest.raises(FileNotFoundError, match="model/nope not found"):
            ADict.compose_hierarchy(str(tree), select={"model": "nope"}, on_missing="error")
        with pytest.raises(FileNotFoundError, match="missing_primary"):
            ADict.compose_hierarchy(str(tree), config_filename="missing_primary")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cfg = ADict.compose_hierarchy(str(tree), select={"model": "nope"}, on_missing="warn")
        assert [str(w.message) for w in caught] == [
            f"missing: select={{'model': 'nope'}}: model/nope not found (no "
            f"model/nope.[yaml|yml|json|toml|xyz] in {tree}; options of group 'model': "
            f"resnet101, resnet50)"] and cfg.seed == 1
        assert caught[0].filename == __file__  # the caller's line, not ato's

    def test_missing_primary_warning_points_at_the_caller(self, tree):
        with pytest.warns(UserWarning, match="config_filename='nope': nope not found") as caught:
            ADict.compose_hierarchy(str(tree), config_filename="nope", on_missing="warn")
        assert caught[0].filename == __file__

    def test_missing_option_names_file_line_root_and_options(self, tree):
        """An option named in a defaults list that does not exist: the error names the
        file and line that asked for it, the root and the options of the group."""
        (tree / "bad.yaml").write_text("seed: 1\ndefaults:\n  - data: imagenet\n"
                                       "  - model: nothere\n")
        with pytest.raises(MissingConfigError) as info:
            ADict.compose_hierarchy(str(tree), config_filename="bad")
        assert str(info.value) == (
            f"{tree / 'bad.yaml'}:4: model/nothere not found (no "
            f"model/nothere.[yaml|yml|json|toml|xyz] in {tree}; options of group 'model': "
            f"resnet101, resnet50)")
        with pytest.raises(MissingConfigError, match=r"^select=\{'data': 'zz'\}: data/zz not "
                                                     r"found .*options of group 'data': imagenet\)$"):
            ADict.compose_hierarchy(str(tree), select={"data": "zz"})
        with pytest.raises(MissingConfigError, match="group 'nogroup' has no options there"):
            ADict.compose_hierarchy(str(tree), select={"nogroup": "zz"})

    @pytest.mark.parametrize("files, chain", [
        ({"config": "defaults:\n  - m: a\n", "m/a": "defaults:\n  - /config\n"},
         "config.yaml: defaults cycle: config.yaml -> m/a.yaml -> config.yaml"),
        ({"config": "defaults: [config]\n"}, "config.yaml: defaults cycle: config.yaml -> config.yaml"),
        ({"config": "defaults: [b]\n", "b": "defaults: [c]\n", "c": "defaults: [b]\nx: 1\n"},
         "b.yaml: defaults cycle: b.yaml -> c.yaml -> b.yaml"),
    ])
    def test_defaults_cycle_is_named(self, tmp_path, files, chain):
        """A loop in the defaults lists is one CompositionError naming the chain."""
        for name, text in files.items():
            (tmp_path / f"{name}.yaml").parent.mkdir(exist_ok=True)
            (tmp_path / f"{name}.yaml").write_text(text)
        with pytest.raises(CompositionError) as info:
            ADict.compose_hierarchy(tmp_path)
        assert str(info.value) == chain

    def test_the_same_file_twice_is_no_cycle(self, tmp_path):
        (tmp_path / "config.yaml").write_text("defaults: [b, c]\n")
        (tmp_path / "b.yaml").write_text("defaults: [c]\nx: 1\n")
        (tmp_path / "c.yaml").write_text("y: 2\n")
        assert ADict.compose_hierarchy(tmp_path) == {"x": 1, "y": 2}

    def test_overrides_as_hydra_list(self, tree):
        """overrides may be hydra.compose's list of 'key=value' strings (Ato's CLI grammar,
        + and ++ prefixes allowed); other types are a clear ComposeArgumentError."""
        cfg = ADict.compose_hierarchy(str(tree), overrides=["model.lr=0.01", "++extra.k=[1,2]",
                                                            "+name=%run 1%"])
        assert cfg.model.lr == 0.01 and cfg.extra.k == [1, 2] and cfg.name == "run 1"
        with pytest.raises(ComposeArgumentError) as info:
            ADict.compose_hierarchy(str(tree), overrides="a=2")
        assert str(info.value).endswith("not a str 'a=2': write ['a=2']")
        assert isinstance(info.value, (TypeError, AtoError))
        with pytest.raises(ComposeArgumentError, match=r"^overrides\[1\] 'a=x': 'x' is not a value"):
            ADict.compose_hierarchy(str(tree), overrides=["b=1", "a=x"])
        with pytest.raises(ComposeArgumentError, match=r"overrides\[0\] 'model' is not a key=value"):
            ADict.compose_hierarchy(str(tree), overrides=["model"])
        with pytest.raises(ComposeArgumentError, match=r"overrides\[0\] is an int 3"):
            ADict.compose_hierarchy(str(tree), overrides=[3])
        with pytest.raises(ComposeArgumentError, match="not an int 5"):
            ADict.compose_hierarchy(str(tree), overrides=5)

    @pytest.mark.parametrize("overrides, message", [
        # a config group's option is chosen with select=, not set as a string
        (["model=resnet101"], "overrides[0] 'model=resnet101': 'model' is a config group (the "
                              "folder {root}/model), so its option is chosen with "
                              "select={{'model': 'resnet101'}}, not set as a value"),
        (["seed=2", "+data=imagenet"], "overrides[1] '+data=imagenet': 'data' is a config group"),
        # one override per list item
        (["lr=0.1 bs=3"], "overrides[0] 'lr=0.1 bs=3' holds 2 overrides: write one per list "
                          "item (['lr=0.1', 'bs=3'])"),
        # Hydra's deletion of a key that is not there, or with a value to compare
        (["~model.name"], "overrides[0] '~model.name': cannot delete model.name, the composed "
                          "config has no such key"),
        (["~seed=1"], "overrides[0] '~seed=1': write ~seed to delete the key"),
        # no command-line (argparse) hint in compose errors
        (["model/x"], "overrides[0] 'model/x' is not a key=value assignment (choose a group's "
                      "option with select=)"),
    ])
    def test_override_errors_say_what_compose_takes(self, tree, overrides, message):
        with pytest.raises(ComposeArgumentError) as info:
            ADict.compose_hierarchy(str(tree), overrides=overrides)
        assert str(info.value).startswith(message.format(root=tree)), str(info.value)
        assert "argparse" not in str(info.value) and "use_external_parser" not in str(info.value)

    def test_hydra_delete_override_and_explicit_string_for_a_group_key(self, tree):
        cfg = ADict.compose_hierarchy(str(tree), overrides=["~model.lr", "~seed"])
        assert cfg.to_dict() == {"model": {"backbone": "resnet50"}}
        cfg = ADict.compose_hierarchy(str(tree), overrides=["model=%resnet101%"])
        assert cfg.model == "resnet101"  # a quoted value is a value, as written

    def test_missing_value_counts_as_missing_for_required(self, tmp_path):
        """``???`` (OmegaConf's MISSING) is no value: a required key holding it is missing,
        as in Hydra; once overridden it passes."""
        (tmp_path / "config.yaml").write_text("req: ???\nm:\n  x: ???\n  y: '???x'\n")
        for key in ("req", "m.x"):
            with pytest.raises(MissingRequiredKeyError, match=rf"^Missing required key: {key} "
                                                              rf"\(listed in required=; its "
                                                              rf"value is \?\?\?"):
                ADict.compose_hierarchy(tmp_path, required=[key])
        cfg = ADict.compose_hierarchy(tmp_path, required=["req", "m.y"], overrides=["req=3"])
        assert cfg.req == 3 and cfg.m.y == "???x"

    @needs_corpora
    def test_missing_value_of_a_real_tree_is_missing(self):
        with pytest.raises(MissingRequiredKeyError, match="ckpt_path"):
            ADict.compose_hierarchy(CORPORA / LIGHTNING, config_filename="eval",
                                    required=["ckpt_path"])

    @pytest.mark.parametrize("text, message", [
        ("a: &a\n  b: *a\n", ":2:6: recursive alias: *a is used inside its own anchor &a"),
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", ": mappings and lists nested too deeply"),
        ("".join("  " * i + f"k{i}:\n" for i in range(120)) + "  " * 120 + "x: 1\n",
         ": mappings and lists nested more than 100 levels deep"),
    ])
    def test_recursive_or_deep_files_are_refused(self, tmp_path, text, message):
        """Composed files go through the same checks as ADict.from_file."""
        (tmp_path / "config.yaml").write_text(text)
        with pytest.raises(ConfigFileError) as info:
            ADict.compose_hierarchy(tmp_path)
        assert str(info.value).startswith(f"{tmp_path / 'config.yaml'}{message}")

    @pytest.mark.parametrize("text, message", [
        ("x = []\ny = x\nfor i in range(3000):\n    y.append([])\n    y = y[0]\n",
         "mappings and lists nested more than 100 levels deep (at x[0][0]... 100 levels down)"),
        ("a = {'b': []}\na['b'].append(a)\n", "a value that contains itself: a.b[0] is a itself"),
    ])
    def test_python_configs_of_any_shape_are_checked(self, tmp_path, text, message):
        """A Python config builds its data by running: too deep or self-containing data is
        a ConfigFileError naming the file, for a base as for the config itself."""
        (tmp_path / "base.py").write_text(text)
        (tmp_path / "child.py").write_text("_base_ = ['base.py']\nc = 1\n")
        for name in ("base.py", "child.py"):
            with pytest.raises(ConfigFileError) as info:
                ADict.from_mm_config(tmp_path / name)
            assert str(info.value) == f"{tmp_path / 'base.py'}: {message}"

    @pytest.mark.parametrize("kwargs, message", [
        ({"select": "model=resnet101"}, "select takes a dict such as {'model': 'resnet50'} (a "
         "group's option, or a list of options), not a str 'model=resnet101' (Hydra's "
         "'group=option' strings are written as a dict here)"),
        ({"select": ["model=resnet101"]}, "select takes a dict such as {'model': 'resnet50'} "
         "(a group's option, or a list of options), not a list ['model=resnet101'] (Hydra's "
         "'group=option' strings are written as a dict here)"),
        ({"required": 5}, "required takes a list of dotted keys (['model.lr']), not an int 5"),
        ({"resolvers": [len], "resolve": True}, "resolvers takes a dict such as {'mul': "
         "lambda a, b: a * b}, not a list [<built-in function len>]"),
    ])
    def test_wrong_argument_types_are_named(self, tree, kwargs, message):
        """Every argument of a wrong type is one ComposeArgumentError saying what it takes."""
        with pytest.raises(ComposeArgumentError) as info:
            ADict.compose_hierarchy(str(tree), **kwargs)
        assert str(info.value) == message

    def test_config_filename_may_carry_its_extension(self, tree):
        """As Hydra's config_name: 'config.yaml' names config.yaml; one required key may be
        a plain string."""
        assert ADict.compose_hierarchy(str(tree), config_filename="config.yaml",
                                       required="seed").seed == 1

    def test_missing_required_key_is_an_ato_error(self, tree):
        with pytest.raises(MissingRequiredKeyError) as info:
            ADict.compose_hierarchy(str(tree), required=["b.c"])
        assert isinstance(info.value, (KeyError, AtoError))
        assert str(info.value) == ("Missing required key: b.c (listed in required=; the "
                                   "composed config lacks it)")


def test_missing_distribution_is_named(tmp_path):
    """With ato-mmlab's plugin disabled, asking for it names the distribution and why it
    is unavailable (real absence: tests/core/test_plugins.py::TestInstallHints)."""
    import subprocess
    import sys

    code = ("from ato.adict import ADict\ntry:\n    ADict.compose_hierarchy('.')\n"
            "except LookupError as e:\n    print(e)\n")
    env = dict(os.environ, ATO_DISABLE_PLUGINS="mmlab")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path).stdout.strip()
    assert out == ("ADict.compose_hierarchy needs the ato-mmlab distribution, which is installed "
                   "but its plugin 'mmlab' is disabled by ATO_DISABLE_PLUGINS; unset "
                   "ATO_DISABLE_PLUGINS to enable it")
