"""SEED.md's file examples, run as scripts: ADict quick examples and Import/Export."""

import ast
import json

import tomllib

from tests.conftest import EXAMPLES, run_script


def test_adict_quick_examples(tmp_path):
    """Hash comparisons print True/False; JSON loads, YAML dumps, update_if_absent adds."""
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1, "model": {"depth": 50}}))
    out = run_script(EXAMPLES / "seed" / "adict_quick.py", cwd=tmp_path, check=True).stdout
    lines = out.splitlines()
    assert lines[:2] == ["True", "False"]
    assert lines[2] == "{'lr': 0.1, 'model': {'depth': 50}, 'scheduler': 'cosine'}"
    assert lines[3] == "{'lr': 0.1, 'model': {'depth': 50}}"


def test_import_export_view(tmp_path):
    """The view loads JSON then YAML (each replaces), dumps TOML, applies an MM config,
    and command-line values still win."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "mmdet_configs" / "_base_").mkdir(parents=True)
    (tmp_path / "experiments" / "baseline.json").write_text('{"lr": 0.1, "epochs": 12}')
    (tmp_path / "models" / "resnet.yaml").write_text("backbone:\n  depth: 50\nlr: 0.01\n")
    (tmp_path / "mmdet_configs" / "_base_" / "model.py").write_text(
        "model = dict(type='FasterRCNN', depth=50)\n")
    (tmp_path / "mmdet_configs" / "faster_rcnn.py").write_text(
        "_base_ = './_base_/model.py'\nmodel = dict(depth=101)\n")
    proc = run_script(EXAMPLES / "seed" / "import_export.py", "load_external", "lr=0.5",
                      cwd=tmp_path, check=True)
    assert ast.literal_eval(proc.stdout.strip()) == {
        "backbone": {"depth": 50}, "lr": 0.5, "model": {"type": "FasterRCNN", "depth": 101}}
    dumped = tomllib.loads((tmp_path / "output" / "final_config.toml").read_text())
    assert dumped == {"backbone": {"depth": 50}, "lr": 0.01}
