"""The release sweep (compare_release.py, run by ``nox -s openmmlab_release``): its
placeholder detector and its verdicts, on fixtures instead of downloaded wheels."""

from __future__ import annotations

import pytest

from tests.mmlab.compare_release import ATO_PLACEHOLDER, compare, config_files, placeholders
from tests.mmlab.interop_cases import OPENMMLAB


@pytest.mark.parametrize("text, leaked", [
    ("_p", False),  # a slice of a placeholder cannot be told from text; the sweep compares values
    ("_pcr_4ae025", True),
    ("_a_4ae025_a_4ae025_a_4ae025", True),
    ('runs/"_name_d6aca5"/x', True),
    ('"_model.backbone_0f1e2d"', True),
    ("https://download.openmmlab.com/x/resnet50_8xb256-rsb-a1-600e_in1k_20211228-20e21305.pth", False),
    ("faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth", False),
    ("data/coco/", False),
])
def test_mmengine_placeholders_are_found(text, leaked):
    """MMEngine's placeholder text is found in values and keys; file names with hashes are not."""
    assert bool(placeholders({"k": [text]})) is leaked
    assert bool(placeholders({text: 1})) is leaked


def test_ato_placeholders_are_found():
    """Ato's own token, or a placeholder left as written, counts as a leak."""
    assert placeholders({"a": "x__ato_base_ref_1a2b3c4d_0__"}, pattern=ATO_PLACEHOLDER)
    assert placeholders({"a": ["{{ _base_.x }}"]}, pattern=ATO_PLACEHOLDER)
    assert not placeholders({"a": "{{fileDirname}}"}, pattern=ATO_PLACEHOLDER)


def test_config_files_of_a_wheel_layout(tmp_path):
    """Configs are found under <package>/.mim/configs; model-index metafiles are skipped."""
    configs = tmp_path / "pkg" / ".mim" / "configs"
    for name in ("a/x.py", "a/metafile.yml", "b/y.yaml", "b/z.json", "README.md"):
        (configs / name).parent.mkdir(parents=True, exist_ok=True)
        (configs / name).write_text("{}")
    assert [p.relative_to(configs).as_posix() for p in config_files(tmp_path)] == [
        "a/x.py", "b/y.yaml", "b/z.json"]


def test_verdicts(tmp_path):
    """same when Ato matches MMEngine, better when MMEngine leaks a placeholder and Ato
    computes the value, both-refuse when both fail, differs when only MMEngine refuses
    (left for a person to judge)."""
    pytest.importorskip("mmengine")
    assert compare(OPENMMLAB / "namespace/del_after_alias.py") == ("same", "")
    (tmp_path / "base.py").write_text("name = 'coco'\n")
    (tmp_path / "leak.yaml").write_text("_base_: base.py\nwork_dir: runs/{{_base_.name}}/x\n")
    verdict, detail = compare(tmp_path / "leak.yaml")
    assert verdict == "better" and detail.startswith("MMEngine leaks work_dir = 'runs/\"_name_")
    assert compare(OPENMMLAB / "errors/duplicate.py")[0] == "both-refuse"
    verdict, detail = compare(OPENMMLAB / "braces/strings.yaml")  # MMEngine: a YAML ParserError
    assert verdict == "differs" and detail.startswith("MMEngine refuses (ParserError")
