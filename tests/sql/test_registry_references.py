"""References, URIs and messages of the registry: version numbers out of any range, refs of
the wrong type, the URIs Ato prints (kind always named, project and name percent-encoded),
mistyped ``ato:`` config values, ``alias --delete REF``, suggestions for unknown projects
and names, the name rule's message, table widths, the list's size column and revivals.

On SQLite and PostgreSQL, with real files; the CLI as real subprocesses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest

from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry.core import Registry, RegistryWarning
from ato.terminal import display_width
from ato.tracking import open_finder
from ato.tracking.registry import RegistryError, parse_ref
from ato.tracking.uris import ConfigURIError, resolve_uri
from tests.sql.conftest import make_config
from tests.sql.registry_support import registry_env, write  # noqa: F401 (fixture)

HUGE = "99999999999999999999"  # beyond 64 bits: SQLite cannot bind it


def ato(*args, db=None, cwd=None):
    cmd = [sys.executable, "-m", "ato.cli", *args]
    if db is not None:
        cmd += ["--db", db]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def _logger(url, project="vision"):
    return SQLLogger(make_config(url, project=project), handle_signals=False)


@pytest.fixture
def models(db_url, tmp_path):
    """Model resnet-cls v1 (champion), v2 (latest) in project 'vision'."""
    with _logger(db_url) as lg:
        lg.log_model("resnet-cls", write(tmp_path / "1.pt", b"one"), aliases=["champion"])
        lg.log_model("resnet-cls", write(tmp_path / "2.pt", b"two"))
        lg.use_dataset("cifar10", write(tmp_path / "data" / "a.bin", b"a"))
    return db_url


# ------------------------------------------------------------------ 1. refs
@pytest.mark.parametrize("ref", [int(HUGE), HUGE, "v" + HUGE, 2**63, 2**31])
def test_a_version_number_beyond_any_column_is_no_version(models, ref):
    """A number no column can hold is 'has no version N' everywhere, as on PostgreSQL —
    never SQLite's OverflowError."""
    reg = Registry(models)
    number = str(ref).lstrip("v")
    for call in (lambda: reg.get("resnet-cls", ref, kind="model"),
                 lambda: reg.set_alias("resnet-cls", "prod", ref, kind="model"),
                 lambda: reg.delete_versions("resnet-cls", [ref], kind="model"),
                 lambda: reg.diff("cifar10", 1, ref, kind="dataset"),
                 lambda: open_finder(models).produced_by("resnet-cls", ref),
                 lambda: open_finder(models).downstream("cifar10", ref)):
        with pytest.raises(RegistryError, match=f"has no version {number} "):
            call()
    with pytest.raises(ConfigURIError, match=f"has no version {number}"):
        resolve_uri(f"ato://vision/resnet-cls@{ref}", models)


@pytest.mark.parametrize("ref, message", [
    (-1, "ref -1: version numbers are whole numbers from 1"),
    (0, "ref 0: version numbers are whole numbers from 1"),
    ("-1", "ref '-1': version numbers are whole numbers from 1"),
    ("v0", "ref 'v0': version numbers are whole numbers from 1"),
    ("3.0", "ref '3.0': version numbers are whole numbers from 1"),
    # neither a number (ASCII digits, optional 'v') nor an alias name: never looked up
    (" 3", "ref ' 3': version numbers are whole numbers from 1"),
    ("\u0663", "ref '\u0663': version numbers are whole numbers from 1"),
    ("+3", "ref '\\+3': version numbers are whole numbers from 1"),
    ("a b", "ref 'a b': version numbers are whole numbers from 1"),
    ("", "ref '': version numbers are whole numbers from 1"),
    (True, "ref True: a bool is not a version"),
    (3.0, "ref 3.0 has type float"),
    (b"3", "ref b'3' has type bytes"),
])
def test_a_ref_that_is_no_version_number_says_what_a_version_is(models, ref, message):
    """-1, True, 3.0 are not looked up as aliases: the error says versions are whole
    numbers from 1 (naming a float's type), in Registry, the finder and URIs alike."""
    reg = Registry(models)
    for call in (lambda: reg.get("resnet-cls", ref, kind="model"),
                 lambda: reg.delete_versions("resnet-cls", ref, kind="model"),
                 lambda: open_finder(models).produced_by("resnet-cls", ref)):
        with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(
                ")", r"\)").replace(".", r"\.")) as e:
            call()
        assert "alias" not in str(e.value).split(":")[0]
    assert parse_ref("v2beta") == "v2beta" and parse_ref("v007") == 7 and parse_ref(None) == "latest"


def test_cli_refs(models):
    """The CLI: a huge number is 'has no version', -1 says what a version is; exit 2."""
    for args in (("models", "show", "resnet-cls", HUGE),
                 ("models", "alias", "resnet-cls", "prod", HUGE),
                 ("models", "delete", "resnet-cls", HUGE),
                 ("data", "diff", "cifar10", "1", "v" + HUGE)):
        r = ato(*args, db=models)
        assert r.returncode == 2 and f"has no version {HUGE} " in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    r = ato("models", "show", "resnet-cls", "-1", db=models)
    assert r.returncode == 2 and "version numbers are whole numbers from 1" in r.stderr


def train(models, tmp_path, argument):
    """``python train.py ARGUMENT``: a Scope on the tracker ``models`` printing ``init``."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        from ato.scope import Scope
        scope = Scope(config={{'experiment': {{'sql': {{'db_path': {models!r}}}}}}})

        @scope
        def main(config):
            print('GOT', config.init)

        main()
    """))
    return subprocess.run([sys.executable, str(script), argument], capture_output=True,
                          text=True, timeout=120)


def test_config_value_with_a_huge_version_names_the_key(models, tmp_path):
    """As a config value: one line naming the key, exit status 2."""
    r = train(models, tmp_path, f"init=%ato://vision/resnet-cls@{HUGE}%")
    assert r.returncode == 2, r.stderr
    assert "config key 'init'" in r.stderr and f"has no version {HUGE}" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ 2. printed URIs
def test_printed_uris_name_the_kind_and_resolve_when_names_are_shared(db_url, tmp_path):
    """A dataset taking a model's name warns that unqualified URIs became ambiguous, and
    every URI Ato prints (RegistryVersion.uri, Version.uri, the CLI) names the kind, so it
    resolves to that very version."""
    with _logger(db_url) as lg:
        model = lg.log_model("resnet-cls", write(tmp_path / "m.pt", b"model"),
                             aliases=["champion"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = lg.use_dataset("resnet-cls", write(tmp_path / "d.bin", b"data"))
        again = lg.log_model("resnet-cls", write(tmp_path / "m2.pt", b"model 2"))
    shared = [w for w in caught if issubclass(w.category, RegistryWarning)]
    assert len(shared) == 1 and "ambiguous" in str(shared[0].message)
    assert "ato://vision/resnet-cls@REF?kind=model" in str(shared[0].message)
    assert model.uri == "ato://vision/resnet-cls@v1?kind=model"
    assert data.uri == "ato://vision/resnet-cls@v1?kind=dataset"
    assert Registry(db_url).get("resnet-cls", 2, kind="model").uri == again.uri
    assert open(resolve_uri(model.uri, db_url), "rb").read() == b"model"
    assert open(resolve_uri(data.uri, db_url), "rb").read() == b"data"
    r = ato("models", "show", "resnet-cls", "2", db=db_url)
    printed = r.stdout.split()[0]
    assert printed == "ato://vision/resnet-cls@v2?kind=model", r.stdout
    assert open(resolve_uri(printed, db_url), "rb").read() == b"model 2"
    # the unqualified form is refused, spelling out both choices
    with pytest.raises(ConfigURIError, match=r"ambiguous.*\?kind=dataset or .*\?kind=model"):
        resolve_uri("ato://vision/resnet-cls@champion", db_url)


@pytest.mark.parametrize("project", ["a/b", "my proj", "50%/x?y@z#"])
def test_printed_uris_percent_encode_the_project(db_url, tmp_path, project):
    """A project holding '/', a space or URI delimiters prints an encoded URI that
    resolves (it was 'no model or dataset named b/m in project a')."""
    with _logger(db_url, project=project) as lg:
        v = lg.log_model("m", write(tmp_path / "m.pt", b"weights"))
    assert " " not in v.uri and v.uri.count("/") == 3 and v.uri.count("@") == 1
    assert open(resolve_uri(v.uri, db_url), "rb").read() == b"weights"
    r = ato("models", "show", "m", "1", db=db_url)
    assert r.returncode == 0 and r.stdout.split()[0] == v.uri


def test_cli_hints_are_shell_quoted(db_url, tmp_path):
    """A name in two projects, one with a space: the --project hint is shell-quoted."""
    for project in ("my proj", "other"):
        with _logger(db_url, project=project) as lg:
            lg.log_model("m", write(tmp_path / f"{project}.pt", project.encode()))
    r = ato("models", "show", "m", db=db_url)
    assert r.returncode == 2
    assert "--project 'my proj' or --project other" in r.stderr, r.stderr


# ------------------------------------------------------------------ 3. mistyped ato:
@pytest.mark.parametrize("value", ["ato:/vision/resnet-cls", "ATO://vision/resnet-cls",
                                   "Ato://vision/resnet-cls", "ato:///vision/resnet-cls",
                                   "ato:vision/resnet-cls"])
def test_a_mistyped_ato_uri_in_a_config_is_an_error(models, tmp_path, value):
    """Wrong slashes or the scheme in another case: an error naming the key, the value
    and the right form, exit status 2 — not the literal string passed on."""
    r = train(models, tmp_path, f"init=%{value}%")
    assert r.returncode == 2 and "GOT" not in r.stdout, (r.stdout, r.stderr)
    assert f"config key 'init': {value!r} looks like an ato:// URI (a malformed one)" in r.stderr
    assert "did you mean ato://vision/resnet-cls?" in r.stderr
    with pytest.raises(ConfigURIError, match="malformed"):
        resolve_uri(value, models)


def test_text_that_merely_starts_with_ato_colon_and_a_space_stays_text(models):
    """'ato: note' (and 'ato:' alone) is prose, not a URI: passed on unchanged."""
    from ato.scope import Scope

    config = Scope(config={"experiment": {"sql": {"db_path": models}}, "a": "ato: note",
                           "b": ["ato:"]}).apply([])
    assert config.a == "ato: note" and config.b == ["ato:"]


# ------------------------------------------------------------------ 4. alias --delete REF
def test_alias_delete_with_a_ref_removes_only_when_it_matches(models):
    """`alias NAME ALIAS REF --delete` with REF other than what the alias points at is
    refused and removes nothing; with the right REF (or none) it removes it."""
    r = ato("models", "alias", "resnet-cls", "champion", "2", "--delete", db=models)
    assert r.returncode == 2 and "points at v1, not v2" in r.stderr, r.stderr
    assert Registry(models).get("resnet-cls", "champion", kind="model").version == 1
    r = ato("models", "alias", "resnet-cls", "champion", "v1", "--delete", db=models)
    assert r.returncode == 0 and "removed alias champion (was v1)" in r.stdout, r.stderr
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        Registry(models).get("resnet-cls", "champion", kind="model")


# ------------------------------------------------------------------ 5. suggestions
def test_unknown_projects_and_names_are_named_with_suggestions(models):
    r = ato("models", "list", "--project", "nope", db=models)
    assert r.returncode == 2 and "there is no project 'nope' (projects: 'vision')" in r.stderr
    r = ato("models", "show", "resnet-cls", "--project", "vison", db=models)
    assert r.returncode == 2 and "did you mean 'vision'?" in r.stderr, r.stderr
    r = ato("models", "show", "resnet-cl", db=models)
    assert r.returncode == 2 and "did you mean 'resnet-cls'?" in r.stderr, r.stderr
    with pytest.raises(ConfigURIError, match="there is no project 'visio'.*did you mean 'vision'"):
        resolve_uri("ato://visio/resnet-cls@1", models)
    with pytest.raises(RegistryError, match="did you mean 'cifar10'"):
        open_finder(models).runs_using("cifar1O", 1)
    # a project that exists but has no models is just empty
    with _logger(models, project="empty"):
        pass
    r = ato("models", "list", "--project", "empty", db=models)
    assert r.returncode == 0 and "0 models" in r.stdout


# ------------------------------------------------------------------ 6. the name rule
@pytest.mark.parametrize("name, bad", [("café", "'é' (U+00E9) at position 4"),
                                       ("모델", "'모' (U+BAA8) at position 1"),
                                       ("-x", "'-' (U+002D) at position 1, which cannot start"),
                                       ("a b", "' ' (U+0020) at position 2")])
def test_the_name_rule_says_ascii_and_names_the_character(db_url, tmp_path, name, bad):
    with _logger(db_url) as lg:
        with pytest.raises(RegistryError) as e:
            lg.log_model(name, write(tmp_path / "m.pt", b"m"))
    assert bad in str(e.value) and "ASCII letter or digit" in str(e.value)


# ------------------------------------------------------------------ 7. table widths
def test_tables_align_wide_file_names(db_url, tmp_path):
    """CJK file names take two columns: every row of the file table is padded to the
    same terminal width."""
    data = tmp_path / "uds"
    write(data / "한국어파일.txt", b"x")
    write(data / "b.txt", b"yy")
    with _logger(db_url) as lg:
        lg.use_dataset("uds", data)
    r = ato("data", "show", "uds", "1", db=db_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    table = lines[start:start + 4]
    digest_columns = {display_width(line[:line.rindex("  ")]) for line in table}
    assert len(digest_columns) == 1, table


# ------------------------------------------------------------------ 8. size and revival
def test_list_size_says_what_it_counts_and_revival_is_announced(db_url, tmp_path):
    """The list's size column counts pruned versions too, and says so; registering a
    deleted version's content again says that it is live again."""
    with _logger(db_url) as lg:
        lg.log_model("m", write(tmp_path / "1.pt", b"1" * 10))
        lg.log_model("m", write(tmp_path / "2.pt", b"2" * 20))
    Registry(db_url).delete_versions("m", [1], kind="model")
    r = ato("models", "list", db=db_url)
    assert "size (live+pruned)" in r.stdout and "30 B" in r.stdout, r.stdout
    with _logger(db_url) as lg:
        with pytest.warns(RegistryWarning) as caught:
            lg.log_model("m", tmp_path / "1.pt", step=99)
    said = [str(w.message) for w in caught]
    assert any("not applied: step=99" in m for m in said)
    assert any("this content is v1, which was pruned" in m and "live again" in m for m in said)
    assert ato("store", "gc", "--delete", "--grace", "0", db=db_url).returncode == 0
    Registry(db_url).delete_versions("m", [1], kind="model")
    assert ato("store", "gc", "--delete", "--grace", "0", db=db_url).returncode == 0
    assert Registry(db_url).get("m", 1, kind="model").state == "collected"
    with _logger(db_url) as lg:
        with pytest.warns(RegistryWarning, match="v1, which was collected.*stored again"):
            lg.log_model("m", tmp_path / "1.pt")
