"""Load every OpenMMLab config of real releases with Ato and with MMEngine, and compare.

Usage (``nox -s openmmlab_release`` runs it with the downloads)::

    python tests/mmlab/compare_release.py WHEEL_OR_DIR [WHEEL_OR_DIR ...] [--show N]

Each argument is a wheel (``mmdet-3.3.0-py3-none-any.whl``) or a folder a wheel was
unpacked into.  Every ``.py``/``.yaml``/``.yml``/``.json`` file under its
``<package>/.mim/configs`` (model-index ``metafile.yml`` files excepted) is loaded with
``mmengine.Config.fromfile(path, import_custom_modules=False).to_dict()`` and with
``ADict.from_mm_config(path).to_dict()``.  The unpacked wheels are put on ``sys.path`` so
that cross-package bases (``_base_ = 'mmdet::...'``) resolve for both.

The results are compared after the documented differences (docs/migrating-from-openmmlab.md):

- tuples are lists in Ato;
- ``_delete_`` markers MMEngine leaves in its result (nothing to delete, or inside a list)
  are removed by Ato;
- functions defined in a config are not config values (MMEngine keeps them when it reads
  a file in its lazy-import mode);
- where MMEngine's result holds a leaked ``{{_base_.x}}`` placeholder, Ato computes the
  value instead: the case counts as *better*, if Ato's result holds no placeholder;
- where MMEngine refuses a ``_base_`` chain because one file of it imports a module
  outside the standard library (its lazy-import mode cannot be mixed), Ato reads the
  import lazily and loads: also *better*.

Ato's result must never hold a placeholder (checked for every config).  A config that
MMEngine refuses counts as agreeing when Ato refuses it too.  Exit status 0 when every
config agrees (or is better), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import types
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.mmlab.interop_cases import normalise  # noqa: E402

# MMEngine's placeholder for `{{_base_.a.b}}` is `_a.b_` + 6 hex digits.
PLACEHOLDER = re.compile(r"(?<![\w.\-/])_[\w.]+?_[0-9a-f]{6}(?![0-9a-zA-Z\-/.])")


def _unpack(args: list[str], into: Path) -> list[Path]:
    roots = []
    for arg in args:
        path = Path(arg)
        if path.is_file() and path.suffix == ".whl":
            target = into / path.stem
            with zipfile.ZipFile(path) as wheel:
                wheel.extractall(target)
            path = target
        roots.append(path.resolve())
    return roots


def config_files(root: Path) -> list[Path]:
    files = []
    for configs in sorted(root.glob("*/.mim/configs")):
        for path in sorted(configs.rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml", ".json") and not path.name.startswith("metafile"):
                files.append(path)
    return files


def _documented(value):
    """MMEngine's result without what Ato leaves out on purpose: ``_delete_`` markers, and
    functions (MMEngine keeps them in its lazy-import mode; they are never data)."""
    if isinstance(value, dict):
        return {k: _documented(v) for k, v in value.items()
                if k != "_delete_" and not isinstance(v, types.FunctionType)}
    if isinstance(value, list):
        return [_documented(v) for v in value]
    return value


# MMEngine refuses a chain where one file imports a module outside the standard library
# (its lazy-import mode) and another does not; Ato reads such imports lazily in every file.
LAZY_MIX = "The configuration file type in the inheritance chain must match"

# Ato's own token for a placeholder in YAML/JSON, or a placeholder left as written.
ATO_PLACEHOLDER = re.compile(r"__ato_base_ref_|\{\{\s*_base_\.")


def placeholders(value, where: str = "", pattern=PLACEHOLDER) -> list[str]:
    """Key paths whose value (or key) is leaked placeholder text."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if pattern.search(str(k)):
                found.append(f"{where}{k} (key)")
            found += placeholders(v, f"{where}{k}.", pattern)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += placeholders(v, f"{where}{i}.", pattern)
    elif isinstance(value, str) and pattern.search(value):
        found.append(f"{where.rstrip('.')} = {value!r}")
    return found


def first_difference(a, b, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                return f"{where}{k}: only in Ato"
            if k not in b:
                return f"{where}{k}: only in MMEngine"
            if a[k] != b[k]:
                return first_difference(a[k], b[k], f"{where}{k}.")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{where}{i}.")
    return f"{where.rstrip('.')}: MMEngine {a!r:.120} / Ato {b!r:.120}"


def _mmengine(path: Path):
    from mmengine import Config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return normalise(Config.fromfile(str(path), import_custom_modules=False).to_dict())


def _ato(path: Path):
    from ato.adict import ADict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return normalise(ADict.from_mm_config(path).to_dict())


def compare(path: Path) -> tuple[str, str]:
    """``(verdict, detail)``; verdict is same, better, both-refuse or differs."""
    try:
        theirs = _mmengine(path)
    except Exception as e:  # MMEngine refuses: Ato must refuse too
        theirs_error = f"{type(e).__name__}: {str(e)[:200]}"
        try:
            ours = _ato(path)
        except Exception:
            return "both-refuse", theirs_error
        if LAZY_MIX in theirs_error and not placeholders(ours, pattern=ATO_PLACEHOLDER):
            return "better", f"MMEngine refuses a _base_ chain mixing its lazy-import mode: {theirs_error}"
        return "differs", f"MMEngine refuses ({theirs_error}), Ato loads"
    try:
        ours = _ato(path)
    except Exception as e:
        return "differs", f"Ato refuses: {type(e).__name__}: {str(e)[:300]}"
    leaked = placeholders(ours) + placeholders(ours, pattern=ATO_PLACEHOLDER)
    if leaked:
        return "differs", f"placeholder in Ato's result: {leaked[0]}"
    theirs = _documented(theirs)
    if ours == theirs:
        return "same", ""
    if placeholders(theirs):
        return "better", f"MMEngine leaks {placeholders(theirs)[0]}"
    return "differs", first_difference(theirs, ours)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", help="wheels or unpacked wheel folders")
    parser.add_argument("--show", type=int, default=40, help="differences to print per release")
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        roots = _unpack(args.sources, Path(tmp))
        sys.path[1:1] = [str(r) for r in roots]  # cross-package `pkg::` bases
        for root in roots:
            counts: dict[str, int] = {}
            shown = 0
            files = config_files(root)
            for path in files:
                verdict, detail = compare(path)
                counts[verdict] = counts.get(verdict, 0) + 1
                rel = os.path.relpath(path, root)
                if verdict == "differs":
                    failed += 1
                    if shown < args.show:
                        print(f"DIFFERS {rel}: {detail}", flush=True)
                        shown += 1
                elif verdict in ("better", "both-refuse"):
                    print(f"{verdict.upper()} {rel}: {detail}")
            summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("same", "better", "both-refuse", "differs"))
            print(f"{root.name}: {len(files)} configs: {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
