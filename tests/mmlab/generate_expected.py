"""Compute the reference results with the real tools (mmengine, hydra-core) and write
them to tests/mmlab/expected/*.json; with --check, compare Ato's results with them instead
and print the pass count.  Run by ``nox -s interop``; needs both references installed
(``--mmengine-only`` writes expected/mmengine.json alone, with mmengine alone)."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.mmlab.interop_cases import (  # noqa: E402
    CORPORA,
    INTERPOLATION_CASES,
    MM_CASES,
    MM_ENV,
    OPENMMLAB,
    case_id,
    error_record,
    expected_file,
    hydra_cases,
    interpolation_case_id,
    interpolation_env,
    normalise,
    same_result,
    write_interpolation_case,
)


def mmengine_results() -> dict:
    from mmengine import Config

    os.environ.update(MM_ENV)
    out = {}
    for case in MM_CASES:
        cfg = Config.fromfile(str(OPENMMLAB / case), import_custom_modules=False)
        out[case] = normalise(cfg.to_dict())
    return out


def hydra_results() -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    out = {}
    for root, name, select in hydra_cases():
        overrides = []
        for key, value in select.items():
            text = "[" + ",".join(value) + "]" if isinstance(value, list) else value
            overrides.append(f"{key}={text}")
        GlobalHydra.instance().clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with initialize_config_dir(config_dir=str(CORPORA / root), version_base=None):
                try:
                    try:
                        cfg = compose(config_name=name, overrides=overrides)
                    except Exception as e:
                        if "Could not override" not in str(e):
                            raise
                        # Ato's `select` adds a group that the defaults list lacks, as
                        # Hydra's `+group=option` does.
                        cfg = compose(config_name=name, overrides=["+" + o for o in overrides])
                    out[case_id(root, name, select)] = normalise(
                        OmegaConf.to_container(cfg, resolve=False))
                except Exception as e:  # recorded: Ato must fail too
                    out[case_id(root, name, select)] = {"__error__": type(e).__name__}
    out.update(hydra_interpolation_results())
    return out


def hydra_interpolation_results() -> dict:
    """Each interpolation case composed by Hydra and resolved by OmegaConf."""
    import tempfile

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    out = {}
    with tempfile.TemporaryDirectory() as tmp, interpolation_env():
        for name in INTERPOLATION_CASES:
            root = write_interpolation_case(Path(tmp), name)
            GlobalHydra.instance().clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with initialize_config_dir(config_dir=str(root), version_base=None):
                    try:
                        cfg = compose(config_name="config")
                        value = normalise(OmegaConf.to_container(cfg, resolve=True))
                    except Exception as e:
                        value = error_record(e)
                        del value["classes"]
            out[interpolation_case_id(name)] = value
    return out


def ato_interpolation_results() -> dict:
    import tempfile

    from ato.adict import ADict

    out = {}
    with tempfile.TemporaryDirectory() as tmp, interpolation_env():
        for name in INTERPOLATION_CASES:
            root = write_interpolation_case(Path(tmp), name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    value = normalise(ADict.compose_hierarchy(root, resolve=True).to_dict())
                except Exception as e:
                    value = error_record(e)
            out[interpolation_case_id(name)] = value
    return out


def ato_results() -> tuple[dict, dict]:
    from ato.adict import ADict

    os.environ.update(MM_ENV)
    mm = {c: normalise(ADict.from_mm_config(OPENMMLAB / c).to_dict()) for c in MM_CASES}
    hy = {}
    for root, name, select in hydra_cases():
        try:
            hy[case_id(root, name, select)] = normalise(ADict.compose_hierarchy(
                CORPORA / root, config_filename=name, select=select).to_dict())
        except Exception as e:
            hy[case_id(root, name, select)] = {"__error__": type(e).__name__}
    hy.update(ato_interpolation_results())
    return mm, hy


def main() -> int:
    if "--check" in sys.argv:
        references = {"mmengine": mmengine_results(), "hydra": hydra_results()}
        mm, hy = ato_results()
        failed = 0
        for kind, ours in (("mmengine", mm), ("hydra", hy)):
            theirs = references[kind]
            passed = [k for k in theirs if same_result(theirs[k], ours.get(k))]
            for k in sorted(set(theirs) - set(passed)):
                print(f"DIFFERS {kind}: {k}")
            failed += len(theirs) - len(passed)
            print(f"interop {kind}: {len(passed)}/{len(theirs)} cases identical")
        return 1 if failed else 0
    expected_file("mmengine").parent.mkdir(exist_ok=True)
    expected_file("mmengine").write_text(json.dumps(mmengine_results(), indent=1, sort_keys=True))
    if "--mmengine-only" not in sys.argv:  # (no hydra-core needed)
        expected_file("hydra").write_text(json.dumps(hydra_results(), indent=1, sort_keys=True))
    print("wrote", expected_file("mmengine").parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
