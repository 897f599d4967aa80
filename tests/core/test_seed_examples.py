"""Every core example of SEED.md, run as a real script with real CLI arguments."""

import pytest

from tests.conftest import EXAMPLES, run_script

SEED = EXAMPLES / "seed"


def out(script, *args):
    proc = run_script(SEED / script, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class TestQuickstart:
    def test_defaults_and_overrides(self):
        """The 30-second example prints what SEED.md says, with and without overrides."""
        assert out("quickstart.py") == "Training resnet50 with lr=0.001\n"
        assert out("quickstart.py", "lr=0.01", "model=%resnet101%") == (
            "Training resnet101 with lr=0.01\n")

    @pytest.mark.parametrize("args, message", [
        (["hihg_lr"], "unknown view 'hihg_lr'"),
        (["model=resnet101"], "write strings as %resnet101%"),
        (["layers=[64,128"], "argument 1 'layers=[64,128' at character 8: unbalanced bracket"),
        (["x=__import__('os').system('echo pwned')"], "is not a value"),
    ])
    def test_user_mistakes_exit_2_without_traceback(self, args, message):
        """Bad arguments give one clear line on stderr and exit status 2."""
        proc = run_script(SEED / "quickstart.py", *args)
        assert proc.returncode == 2
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert "pwned" not in proc.stdout


class TestPriority:
    @pytest.mark.parametrize("args, expected", [
        ([], "{'lr': 0.001, 'epochs': 100}"),
        (["high_lr"], "{'lr': 0.01, 'epochs': 100}"),
        (["high_lr", "long_training"], "{'lr': 0.01, 'epochs': 300}"),
        (["lr=0.01", "batch_size=64"], "{'lr': 0.01, 'epochs': 100, 'batch_size': 64}"),
        (["model.backbone=%resnet101%", "model.depth=101"],
         "{'lr': 0.001, 'epochs': 100, 'model': {'backbone': 'resnet101', 'depth': 101}}"),
        (["layers=[64,128,256,512]", "dropout=0.5"],
         "{'lr': 0.001, 'epochs': 100, 'layers': [64, 128, 256, 512], 'dropout': 0.5}"),
        (["my_config", "lr=0.001", "batch_size=128"],
         "{'lr': 0.001, 'epochs': 100, 'dataset': 'cifar10', 'batch_size': 128}"),
        (["model.backbone.resnet.depth=50", "data.batch_size=32"],
         "{'lr': 0.001, 'epochs': 100, 'model': {'backbone': {'resnet': {'depth': 50}}}, "
         "'data': {'batch_size': 32}}"),
        (["auto_nested"], "{'lr': 0.001, 'epochs': 100, 'training': {'optimizer': "
         "{'name': 'AdamW', 'lr': 0.001}}, 'model': {'encoder': {'num_layers': 12}}}"),
    ])
    def test_cli_lines_of_the_seed(self, args, expected):
        """The CLI lines shown in SEED.md do what it says."""
        assert out("priority.py", *args).strip() == expected


class TestLazy:
    def test_lazy_view(self):
        """`dataset=%cifar10% computed_config` gives num_classes=10, image_size=32."""
        assert out("lazy.py", "dataset=%cifar10%", "computed_config").strip() == (
            "{'dataset': 'cifar10', 'num_classes': 10, 'image_size': 32}")

    @pytest.mark.parametrize("args, layers", [
        (["my_config", "model=%resnet101%"], 101), (["my_config", "num_layers=7"], 7)])
    def test_lazy_block(self, args, layers):
        """The Scope.lazy() block runs after the CLI."""
        assert f"'num_layers': {layers}" in out("lazy.py", *args)


class TestMultiScope:
    @pytest.mark.parametrize("args, expected", [
        ([], "Training resnet50 on cifar10\nModel LR: 0.1, Data LR: 0.001\n"),
        (["model.backbone=%resnet101%"], "Training resnet101 on cifar10\nModel LR: 0.1, Data LR: 0.001\n"),
        (["data.dataset=%imagenet%"], "Training resnet50 on imagenet\nModel LR: 0.1, Data LR: 0.001\n"),
        (["model.backbone=%resnet101%", "data.dataset=%imagenet%"],
         "Training resnet101 on imagenet\nModel LR: 0.1, Data LR: 0.001\n"),
        (["resnet101", "imagenet"], "Training resnet101 on imagenet\nModel LR: 0.05, Data LR: 0.001\n"),
        (["model.lr=0.5", "data.lr=0.002"], "Training resnet50 on cifar10\nModel LR: 0.5, Data LR: 0.002\n"),
    ])
    def test_routing(self, args, expected):
        """Prefixed keys and bare view names reach the right scope."""
        assert out("multiscope.py", *args) == expected

    def test_unprefixed_key_is_an_error(self):
        """With several scopes an unprefixed key says which prefixes exist."""
        proc = run_script(SEED / "multiscope.py", "lr=3")
        assert proc.returncode == 2 and "(model.lr, data.lr)" in proc.stderr


class TestManual:
    def test_single_scope_layout(self):
        """`python train.py manual` prints SEED.md's layout byte for byte."""
        assert out("manual_single.py", "manual") == (
            "--------------------------------------------------\n"
            '[Scope "config"]\n'
            "(The Applying Order of Views)\n"
            "defaults \u2192 experiment_config \u2192 another_config \u2192 (CLI Inputs) \u2192 "
            "adaptive_lr \u2192 main\n"
            "\n"
            "(User Manuals)\n"
            "config.lr: Learning rate for optimizer\n"
            "config.batch_size: Number of samples per batch\n"
            "config.model: Model architecture (resnet50, resnet101, etc.)\n"
            "--------------------------------------------------\n")

    def test_multi_scope_layout(self):
        """MultiScope manual: one block per scope, as in SEED.md."""
        assert out("manual_multi.py", "manual") == (
            "--------------------------------------------------\n"
            '[Scope "model"]\n'
            "(The Applying Order of Views)\n"
            "model_defaults \u2192 model_advanced \u2192 (CLI Inputs) \u2192 model_lazy \u2192 main\n"
            "\n"
            "(User Manuals)\n"
            "model.backbone: Model backbone architecture\n"
            "model.num_layers: Number of layers in the model\n"
            "--------------------------------------------------\n"
            '[Scope "train"]\n'
            "(The Applying Order of Views)\n"
            "train_defaults \u2192 (CLI Inputs) \u2192 main\n"
            "\n"
            "(User Manuals)\n"
            "train.lr: Learning rate for optimizer\n"
            "train.epochs: Total training epochs\n"
            "--------------------------------------------------\n")

    def test_why(self):
        """`manual --why lr` explains the chain of writes ending in the final value."""
        text = out("manual_single.py", "manual", "--why", "lr", "experiment_config",
                   "another_config", "batch_size=128", "adaptive_lr")
        lines = text.splitlines()
        assert lines[0] == "lr = 0.2"
        assert [line.split()[1] for line in lines[1:]] == [
            "defaults", "experiment_config", "another_config", "adaptive_lr"]
        assert "0.1 -> 0.2" in lines[4] and "manual_single.py:22" in lines[4]

    def test_why_all(self):
        """`manual --why-all` explains every key."""
        text = out("manual_single.py", "manual", "--why-all")
        assert "lr = 0.001" in text and "batch_size = 32" in text

    def test_why_multiscope(self):
        """In a MultiScope the key is prefixed by the scope."""
        text = out("manual_multi.py", "manual", "--why", "model.num_layers", "model.backbone=%resnet101%",
                   "model_lazy")
        assert text.splitlines()[0] == "model.num_layers = 101"
        assert "model_lazy (lazy)" in text

    def test_print(self):
        """`print` shows the final config as XYZ and exits 0 without training."""
        assert out("quickstart.py", "print", "lr=3") == (
            "lr: 3\nbatch_size: 32\nmodel: resnet50\n")


class TestArgparse:
    @pytest.mark.parametrize("args, expected", [
        ([], "GPU: 0, LR: 0.001\n"), (["--gpu", "1", "lr=0.5"], "GPU: 1, LR: 0.5\n"),
        (["--unknown", "5", "lr=0.2"], "GPU: 0, LR: 0.2\n"),
    ])
    def test_seed_example(self, args, expected):
        """argparse flags and Ato assignments mix on one command line."""
        assert out("argparse_mix.py", *args) == expected

    def test_manual_shows_parser_help(self):
        """`manual` prints the external parser's help and the scope manual."""
        text = out("argparse_mix.py", "manual")
        assert text.startswith("[External Parser]") and "--gpu GPU" in text
