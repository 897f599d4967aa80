"""Run by `nox -s plugin_example` in a venv with ato-core, ato-sql and the example plugin
pip-installed: the plugin's format and tracker work through entry points alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ato.adict import ADict
from ato.plugins.manager import describe_plugins, failures

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    assert failures() == [], failures()
    names = {row["name"]: row for row in describe_plugins()}
    assert "example" in names, names
    row = names["example"]
    assert (row["distribution"], row["state"], row["errors"], row["conflicts"]) == (
        "ato-example-plugin", "loaded", [], []), row
    assert row["provides"] == {"formats": ["properties (.properties)"],
                               "trackers": ["jsonl (jsonl)"],
                               "search algorithms": ["coordinate"]}, row
    print("ato plugins:", row)
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "model.properties")
    config = ADict(model={"depth": 50, "name": "res net"}, lr=0.001, layers=[1, 2])
    config.dump(path)
    assert ADict.from_file(path) == config, ADict.from_file(path)
    loaded = ADict()
    loaded.load(path)
    assert loaded.model.name == "res net"
    print("properties format: load/dump OK")
    script = (ROOT / "examples/seed/tracking.py").read_text()
    script = script.replace("sqlite:///experiments.db", "jsonl://runs")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Run 1: resnet50 - completed" in out.stdout and "Acc: 90.00%" in out.stdout, out.stdout
    assert os.path.exists(os.path.join(tmp, "runs", "image_classification", "1", "metrics.jsonl"))
    print("jsonl tracker: the seed tracking example ran unchanged but for its URL")
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.scoping.cli import set_argv

    set_argv([])
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 20), num_samples=21),
                  y=ADict(param_type="CATEGORY", categories=["a", "b", "c"]))
    search = get_algorithm("coordinate")(Scope(), space, mode="min")
    result = search.main(lambda c: (c.x - 13) ** 2 + (0 if c.y == "c" else 5))()
    assert (result.config.x, result.config.y, result.metric) == (13, "c", 0), result
    print(f"coordinate search: found x=13, y='c' in {result.trials} trials")


if __name__ == "__main__":
    main()
