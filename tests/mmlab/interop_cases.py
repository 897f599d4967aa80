"""The interop cases shared by the default test run (against stored expected outputs) and
the ``nox -s interop`` session (against mmengine and hydra-core themselves)."""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPENMMLAB = HERE / "fixtures" / "openmmlab"
EXPECTED = HERE / "expected"
CORPORA = HERE.parents[2] / "shared" / "corpora" / "hydra"
if not CORPORA.exists():  # a checkout without ../shared beside it
    CORPORA = Path(os.environ.get("ATO_CORPORA", "/nonexistent"))

MM_CASES = ["detection/faster_rcnn_r101.py", "detection/adam_child.py", "detection/base_refs.py",
            "detection/yaml_child.yaml", "detection/three_levels.py",
            "_base_/default_runtime.py", "_base_/datasets/coco.yaml",
            # every statement Python allows on the _base_ namespace
            "namespace/del_after_alias.py", "namespace/item_pop_augmented.py",
            "namespace/iterate.py", "namespace/nested_write.py",
            "namespace/yaml_braces_in_py_base.py", "namespace/aliases.py",
            "namespace/methods.py",
            # the plain-Python twin of braces/expressions.py (which MMEngine gets wrong)
            "braces/expressions_plain.py",
            # reserved keys MMEngine consumes or keeps
            "reserved/deprecated.py", "reserved/deprecated_child.yaml",
            "reserved/nested_reserved.py",
            # imports of modules outside the standard library (MMEngine's lazy import)
            "imports/third_party.py",
            # real configs of the MMDetection 3.3 release (fixtures/openmmlab/mmdet-3.3/README.md)
            "mmdet-3.3/qdtrack/qdtrack_faster-rcnn_r50_fpn_4e_base.py",
            "mmdet-3.3/bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py",
            "mmdet-3.3/strongsort/yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py",
            "mmdet-3.3/detr/detr_r50_8xb2-150e_coco.py",
            "mmpretrain-1.2/_base_/models/replknet-31B_in1k.py"]
MM_ENV = {"ATO_TEST_DATA_ROOT": "/datasets/coco/"}

LIGHTNING = "lightning-hydra-template/configs"
EX = "hydra/examples"


def _tree_cases():
    """Every top-level config of every tree, with its defaults."""
    cases = []
    for conf in sorted(CORPORA.glob("**/conf")) + sorted(CORPORA.glob("**/configs")):
        rel = conf.relative_to(CORPORA).as_posix()
        for top in sorted(conf.glob("*.yaml")):
            cases.append((rel, top.stem, {}))
    return cases


SELECTIONS = [
    (LIGHTNING, "train", {"experiment": "example"}),
    (LIGHTNING, "train", {"debug": "default"}),
    (LIGHTNING, "train", {"debug": "overfit", "logger": "csv"}),
    (LIGHTNING, "train", {"trainer": "ddp", "logger": "many_loggers"}),
    (LIGHTNING, "train", {"callbacks": "none", "trainer": "gpu"}),
    (LIGHTNING, "train", {"experiment": "example", "debug": "fdr", "logger": "tensorboard"}),
    (LIGHTNING, "eval", {"trainer": "cpu", "logger": "wandb"}),
    (f"{EX}/tutorials/basic/your_first_hydra_app/6_composition/conf", "config",
     {"db": "postgresql", "ui": "view", "schema": "support"}),
    (f"{EX}/tutorials/basic/your_first_hydra_app/4_config_groups/conf", "config", {"db": "mysql"}),
    (f"{EX}/patterns/configuring_experiments/conf", "config", {"experiment": "aplite"}),
    (f"{EX}/patterns/configuring_experiments/conf", "config", {"experiment": "nglite"}),
    (f"{EX}/patterns/extending_configs/conf", "config", {"db": "mysql_extending_from_this_group"}),
    (f"{EX}/patterns/extending_configs/conf", "config", {"db": "mysql_extending_from_another_group"}),
    (f"{EX}/patterns/multi-select/conf", "config", {"server/site": ["amazon", "fb"]}),
    (f"{EX}/advanced/package_overrides/conf", "two_packages", {"db@destination": "postgresql"}),
    (f"{EX}/advanced/nested_defaults_list/conf", "config", {"server/db": "sqlite"}),
]


def hydra_cases():
    return _tree_cases() + SELECTIONS


def case_id(root, name, select) -> str:
    sel = "-".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}" for k, v in select.items())
    return f"{root}/{name}" + (f"[{sel}]" if sel else "")


def normalise(value):
    """Tuples become lists (ADict stores lists) so results compare by content."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def expected_file(kind: str) -> Path:
    return EXPECTED / f"{kind}.json"


def load_expected(kind: str) -> dict:
    return json.loads(expected_file(kind).read_text())
