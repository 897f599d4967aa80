"""Configuration performance (issue #2's targets), written to benchmarks/results/config.json.

    python benchmarks/bench_config.py [--peers]

Measures, each a median, each comparison a ratio taken side by side in one run:
import time of ato.scope over a bare interpreter; a 10-key app with 2 CLI overrides as a
whole process against a bare argparse script doing the same; nested read and write
against nested dicts; build, recursive merge and structural hash of a 10k-leaf config
against plain-dict code doing the same work.  --peers adds OmegaConf and ml_collections
when they are installed.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, processes_interleaved, write_results  # noqa: E402

from ato.adict import ADict  # noqa: E402

ATO_APP = '''
from ato.scope import Scope
scope = Scope()

@scope.observe(default=True)
def defaults(cfg):
    cfg.lr = 0.001
    cfg.batch_size = 32
    cfg.epochs = 10
    cfg.model = "resnet50"
    cfg.dropout = 0.1
    cfg.weight_decay = 0.0001
    cfg.momentum = 0.9
    cfg.seed = 0
    cfg.workers = 4
    cfg.dataset = "cifar10"

@scope
def main(cfg):
    return cfg.lr, cfg.batch_size

main()
'''

ARGPARSE_APP = '''
import argparse
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.001)
p.add_argument("--batch_size", type=int, default=32)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--model", default="resnet50")
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--weight_decay", type=float, default=0.0001)
p.add_argument("--momentum", type=float, default=0.9)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--workers", type=int, default=4)
p.add_argument("--dataset", default="cifar10")
a = p.parse_args()
a.lr, a.batch_size
'''


def tree(width: int, depth: int, leaf=0):
    if depth == 0:
        return {f"k{i}": (i if i % 3 else float(i)) for i in range(width)}
    return {f"g{i}": tree(width, depth - 1) for i in range(width)}


def plain_copy(d):
    return {k: plain_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def plain_merge(target, source):
    for k, v in source.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            plain_merge(target[k], v)
        else:
            target[k] = v


def plain_hash(d):
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                walk(v, path)
            else:
                out[path] = type(v).__name__

    walk(d, "")
    return hashlib.sha1("".join(f"[{p}:{out[p]}]" for p in sorted(out)).encode()).hexdigest()


def row(measure, value, target=None, ok=None, **extra):
    return {"measure": measure, "value": value, "target": target, "ok": ok, **extra}


def main(peers: bool) -> None:
    rows = []
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        ato_app = Path(tmp) / "ato_app.py"
        ato_app.write_text(ATO_APP)
        argparse_app = Path(tmp) / "argparse_app.py"
        argparse_app.write_text(ARGPARSE_APP)
        times = processes_interleaved({
            "bare": [py, "-c", "pass"],
            "import": [py, "-c", "import ato.scope"],
            "ato_app": [py, str(ato_app), "lr=0.01", "batch_size=64"],
            "argparse_app": [py, str(argparse_app), "--lr", "0.01", "--batch_size", "64"],
        }, repeat=21)
    import_ms = (times["import"] - times["bare"]) * 1000
    rows.append(row("import ato.scope, ms over a bare interpreter", f"{import_ms:.1f} ms",
                    "<= 20 ms", import_ms <= 20))
    ratio = times["ato_app"] / times["argparse_app"]
    rows.append(row("10-key app, 2 CLI overrides, whole process vs argparse",
                    f"{times['ato_app'] * 1000:.1f} ms vs {times['argparse_app'] * 1000:.1f} ms"
                    f" = {ratio:.2f}x", "<= 1.5x", ratio <= 1.5))

    cfg = ADict(model={"optimizer": {"lr": 0.1}})
    plain = {"model": {"optimizer": {"lr": 0.1}}}
    _ = cfg.model.optimizer.lr  # the first read caches, as in any program that reads twice
    reads = interleaved({
        "adict": lambda: cfg.model.optimizer.lr, "dict": lambda: plain["model"]["optimizer"]["lr"],
    }, repeat=9, number=200_000)
    ratio = reads["adict"] / reads["dict"]
    rows.append(row("nested read cfg.model.optimizer.lr vs nested dict",
                    f"{reads['adict'] * 1e9:.0f} ns vs {reads['dict'] * 1e9:.0f} ns = {ratio:.2f}x",
                    "<= 3x", ratio <= 3))

    def adict_write():
        cfg.model.optimizer.lr = 0.2

    def dict_write():
        plain["model"]["optimizer"]["lr"] = 0.2

    writes = interleaved({"adict": adict_write, "dict": dict_write}, repeat=9, number=200_000)
    ratio = writes["adict"] / writes["dict"]
    rows.append(row("nested write vs nested dict",
                    f"{writes['adict'] * 1e9:.0f} ns vs {writes['dict'] * 1e9:.0f} ns = {ratio:.2f}x",
                    "<= 5x", ratio <= 5))

    source = tree(22, 2)  # 22^3 = 10,648 leaves
    other = tree(22, 2)
    big = ADict(source)
    big_other = ADict(other)
    builds = interleaved({"adict": lambda: ADict(source), "dict": lambda: plain_copy(source)},
                         repeat=7, number=5)
    ratio = builds["adict"] / builds["dict"]
    rows.append(row("10k-leaf build vs plain-dict copy",
                    f"{builds['adict'] * 1e3:.2f} ms vs {builds['dict'] * 1e3:.2f} ms = {ratio:.2f}x",
                    "<= 3x", ratio <= 3))
    plain_target = plain_copy(source)
    merges = interleaved({"adict": lambda: big.update(big_other, recurrent=True),
                          "dict": lambda: plain_merge(plain_target, other)}, repeat=7, number=5)
    ratio = merges["adict"] / merges["dict"]
    rows.append(row("10k-leaf recursive merge vs plain-dict merge",
                    f"{merges['adict'] * 1e3:.2f} ms vs {merges['dict'] * 1e3:.2f} ms = {ratio:.2f}x",
                    "<= 3x", ratio <= 3))
    assert big.get_structural_hash() == plain_hash(source)
    hashes = interleaved({"adict": big.get_structural_hash, "dict": lambda: plain_hash(source)},
                         repeat=7, number=5)
    ratio = hashes["adict"] / hashes["dict"]
    rows.append(row("10k-leaf structural hash vs plain-dict hash",
                    f"{hashes['adict'] * 1e3:.2f} ms vs {hashes['dict'] * 1e3:.2f} ms = {ratio:.2f}x",
                    "<= 3x", ratio <= 3))
    if peers:
        rows += peer_rows(source, other, plain, reads["dict"], writes["dict"], builds["dict"],
                          merges["dict"])
    write_results("config", rows)


def peer_rows(source, other, plain, read_floor, write_floor, build_floor, merge_floor):
    rows = []
    try:
        from omegaconf import OmegaConf

        oc = OmegaConf.create({"model": {"optimizer": {"lr": 0.1}}})
        read = interleaved({"p": lambda: oc.model.optimizer.lr}, repeat=5, number=20_000)["p"]

        def write():
            oc.model.optimizer.lr = 0.2

        wr = interleaved({"p": write}, repeat=5, number=20_000)["p"]
        build = interleaved({"p": lambda: OmegaConf.create(source)}, repeat=3)["p"]
        a, b = OmegaConf.create(source), OmegaConf.create(other)
        merge = interleaved({"p": lambda: OmegaConf.merge(a, b)}, repeat=3)["p"]
        rows.append(row("peer OmegaConf: read / write / build / merge vs dict",
                        f"{read / read_floor:.0f}x / {wr / write_floor:.0f}x / "
                        f"{build / build_floor:.0f}x / {merge / merge_floor:.0f}x"))
    except ImportError:
        rows.append(row("peer OmegaConf", "not installed"))
    try:
        from ml_collections import ConfigDict

        mc = ConfigDict({"model": {"optimizer": {"lr": 0.1}}})
        read = interleaved({"p": lambda: mc.model.optimizer.lr}, repeat=5, number=20_000)["p"]
        build = interleaved({"p": lambda: ConfigDict(source)}, repeat=3)["p"]
        rows.append(row("peer ml_collections: read / build vs dict",
                        f"{read / read_floor:.0f}x / {build / build_floor:.0f}x"))
    except ImportError:
        rows.append(row("peer ml_collections", "not installed"))
    return rows


if __name__ == "__main__":
    main("--peers" in sys.argv)
