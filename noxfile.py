"""Every check of the project.  `nox -s tests` is what CI runs (through scripts/test.sh,
which also starts a throwaway PostgreSQL).  `nox -l` lists the sessions."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
DISTS = ["ato-core", "ato-formats", "ato-sql", "ato-hyperopt", "ato-mmlab", "ato-ui"]
# Pinned: `pip install torch==2.13.0` takes the CPU build on disk, never a CUDA download.
TORCH = "torch==2.13.0"
# hatchling: tests/integration/test_docs.py builds the plugin tutorial's package offline.
# playwright drives the system's Chromium in tests/ui (never `playwright install`); httpx2 is
# the HTTP client of Starlette's test client (httpx for a Starlette before 1.x, which warns
# that httpx is deprecated when httpx2 is absent).
TEST_DEPS = ["pytest>=8", "hypothesis>=6", "numpy", "scikit-learn", "hatchling", "playwright",
             "httpx2", "httpx"]
SUBSETS = {
    "core": ["ato-core"],
    "core+formats": ["ato-core", "ato-formats"],
    "core+sql": ["ato-core", "ato-sql"],
    "core+hyperopt": ["ato-core", "ato-hyperopt"],
    "core+mmlab": ["ato-core", "ato-formats", "ato-mmlab"],
    "core+ui": ["ato-core", "ato-ui"],
}


def install_ato(session: nox.Session, dists, editable: bool = True, extras=None) -> None:
    extras = extras or {}
    args = []
    for dist in dists:
        spec = f"./{dist}" + (f"[{extras[dist]}]" if dist in extras else "")
        args += ["-e", spec] if editable else [spec]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, every distribution installed editable (PostgreSQL tests run
    when ATO_TEST_POSTGRES_URL is set)."""
    session.install(TORCH)
    # ato-hyperopt[ray]: the Ray executor's tests start a local Ray instance (adds ~20 s of
    # install, measured cold; see docs/hyperopt.md#executors).
    install_ato(session, DISTS, extras={"ato-sql": "postgresql", "ato-hyperopt": "ray"})
    session.install(*TEST_DEPS)
    args, env = session.posargs or ["tests"], {"PYTHONDONTWRITEBYTECODE": "1"}
    # The quick run first (what a developer runs; under 10 minutes), then the tests marked
    # `processes` (real worker processes, torchrun, Ray, SIGKILL: seconds each). Exit code 5
    # ("no test selected") is fine for the second when the arguments name no such test.
    session.run("pytest", "-m", "not processes", "--durations=15", *args, env=env)
    session.run("pytest", "-m", "processes", "--durations=10", *args, env=env, success_codes=[0, 5])


@nox.session
@nox.parametrize("editable", [True, False], ids=["editable", "wheel"])
@nox.parametrize("subset", list(SUBSETS))
def subsets(session: nox.Session, subset: str, editable: bool) -> None:
    """Each subset of distributions in a fresh venv, as editable and as regular installs:
    its public imports work and absent features name the distribution to install."""
    install_ato(session, SUBSETS[subset], editable=editable)
    session.run("python", "tests/integration/subset_check.py", subset)


@nox.session
def plugin_example(session: nox.Session) -> None:
    """The third-party example plugin, pip-installed next to Ato: Ato loads and dumps its
    format, tracks to its JSON Lines backend and runs its search algorithm by name, without
    any change to Ato."""
    install_ato(session, ["ato-core", "ato-sql", "ato-hyperopt"], editable=False)
    session.install("./examples/ato-example-plugin")
    session.run("python", "tests/integration/plugin_example_check.py")


@nox.session
def torch_extra(session: nox.Session) -> None:
    """`pip install 'ato-hyperopt[torch]'` in a fresh venv runs DistributedHyperBand on two
    gloo ranks (the test builds that venv itself; minutes)."""
    install_ato(session, ["ato-core", "ato-hyperopt"])  # for tests/conftest.py
    session.install("pytest", "hatchling")
    session.run("pytest", "tests/hyperopt/test_torch_extra.py", env={"ATO_TEST_VENV": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's demo: Scope + CLI, HyperBand search, SQLite tracking, `ato runs`."""
    install_ato(session, DISTS)
    session.install("numpy", "scikit-learn")
    with session.chdir(session.create_tmp()):
        session.run("python", str(ROOT / "examples/demo/train.py"), *session.posargs)


@nox.session
def interop(session: nox.Session) -> None:
    """Compare with the reference tools themselves (mmengine, hydra-core) and print the
    pass count."""
    install_ato(session, ["ato-core", "ato-formats", "ato-mmlab"])
    session.install("mmengine", "hydra-core", "hydra-colorlog")
    session.run("python", "tests/mmlab/generate_expected.py", "--check")


OPENMMLAB_RELEASES = ["mmdet==3.3.0", "mmpretrain==1.2.0", "mmsegmentation==1.2.2", "mmyolo==0.6.0"]


@nox.session
def openmmlab_release(session: nox.Session) -> None:
    """Every config shipped by real OpenMMLab releases (MMDetection 3.3 and others), loaded
    with Ato and with mmengine and compared; prints the counts and each difference."""
    install_ato(session, ["ato-core", "ato-formats", "ato-mmlab"])
    session.install("mmengine==0.10.7", "setuptools")  # mmengine finds packages with pkg_resources
    wheels = Path(session.create_tmp()) / "openmmlab-wheels"
    session.run("python", "-m", "pip", "download", "--no-deps", "-d", str(wheels), *OPENMMLAB_RELEASES)
    session.run("python", "tests/mmlab/compare_release.py",
                *sorted(str(p) for p in wheels.glob("*.whl")), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Performance measurements; results go to benchmarks/results/."""
    install_ato(session, DISTS, extras={"ato-sql": "postgresql"})
    session.install("numpy", "playwright")
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)


@nox.session
def bench_peers(session: nox.Session) -> None:
    """The same config benchmarks with Hydra/OmegaConf and ml_collections installed, so
    their figures appear beside ours."""
    install_ato(session, DISTS)
    session.install("hydra-core", "omegaconf", "ml_collections")
    session.run("python", "benchmarks/bench_config.py", "--peers")


@nox.session
def bench_search(session: nox.Session) -> None:
    """Sample efficiency of the search algorithms, with Optuna beside them."""
    install_ato(session, DISTS)
    session.install("optuna")
    session.run("python", "benchmarks/bench_search.py", "--optuna", *session.posargs)


@nox.session
def bench_regret(session: nox.Session) -> None:
    """Regret at equal epoch budgets, continued trials, Optuna's samplers and pruners
    beside them (benchmarks/bench_regret.py; --quick for a short run)."""
    install_ato(session, DISTS)
    session.install("optuna")
    session.run("python", "benchmarks/bench_regret.py", *session.posargs)


@nox.session
def bench_studies(session: nox.Session) -> None:
    """Study coordination overhead per trial, with Optuna's RDB storage beside it (on
    PostgreSQL too when ATO_TEST_POSTGRES_URL or --pg URL is given)."""
    install_ato(session, DISTS, extras={"ato-sql": "postgresql"})
    session.install("optuna")
    session.run("python", "benchmarks/bench_studies.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Documentation checks: every hook documented, every code block of docs/ that is
    marked runnable runs."""
    install_ato(session, DISTS)
    session.install("pytest", "numpy", "hatchling")
    session.run("pytest", "tests/integration/test_docs.py", env={"ATO_DOCS_RUN": "1"})


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
