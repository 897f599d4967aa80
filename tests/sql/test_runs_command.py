"""`ato runs list|show|best|diff`, run as a real command."""

import json
import subprocess
import sys

import pytest

from tests.sql.test_finder import log_run


def ato(*args):
    proc = subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True, text=True)
    return proc


@pytest.fixture
def db(db_url):
    log_run(db_url, metrics=[("acc", 0.5, 0), ("acc", 0.9, 1), ("loss", 2, 1)], tags=["a"],
            lr=0.1, model="resnet50")
    log_run(db_url, metrics=[("acc", 0.7, 0)], lr=0.01, model="resnet101", status="failed")
    return db_url


def test_list_with_metrics_and_where(db):
    """list shows latest/best/steps per metric and filters by typed config."""
    proc = ato("runs", "list", "--db", db, "--project", "proj", "--metrics", "acc")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:8] == ["id", "project", "status", "tags", "start", "acc", "latest", "acc"]
    assert lines[2].split()[0:3] == ["1", "proj", "completed"] and lines[2].split()[-3:] == ["0.9", "0.9", "2"]
    assert lines[-1] == "2 runs"
    proc = ato("runs", "list", "--db", db, "--where", "lr < 0.05", "--json")
    data = json.loads(proc.stdout)
    assert [r["config"]["model"] for r in data] == ["resnet101"]


def test_list_names_the_metrics_when_a_metrics_key_is_on_no_listed_run(db):
    """A misspelled --metrics key is said on stderr with the close names and the metrics
    the listed runs have; the listing is printed as asked (exit 0); a key some run has
    says nothing."""
    proc = ato("runs", "list", "--db", db, "--metrics", "acc,los")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ("ato runs list: no listed run has metric 'los' (--metrics) "
                                   "— did you mean 'loss'? (the listed runs have: acc, loss)")
    assert proc.stdout.splitlines()[-1] == "2 runs"
    proc = ato("runs", "list", "--db", db, "--metrics", "loss", "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    proc = ato("runs", "list", "--db", db, "--metrics", "loss", "--status", "failed")
    assert "no listed run has metric 'loss'" in proc.stderr and "have: acc)" in proc.stderr


def test_a_relative_sqlite_url_suggests_the_absolute_form_when_that_file_exists(db_url, tmp_path):
    """`--db sqlite:///tmp/x.db` is relative to the working directory; when /tmp/x.db
    exists the error names the four-slash URL."""
    if not db_url.startswith("sqlite:///"):
        pytest.skip("an SQLite path")
    log_run(db_url, metrics=[("acc", 0.5, 0)])
    absolute = db_url[len("sqlite:///"):]
    relative = "sqlite:///" + absolute.lstrip("/")
    proc = subprocess.run([sys.executable, "-m", "ato.cli", "runs", "list", "--db", relative],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.strip().endswith(f"{absolute} exists — did you mean sqlite:///{absolute}?"), \
        proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ato.cli", "runs", "list", "--db",
                           "sqlite:///no/such/x.db"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean" not in proc.stderr, proc.stderr


def test_best_show_diff(db):
    """best names the run; show details it; diff lists what differs."""
    proc = ato("runs", "best", "--db", db, "--project", "proj", "--metric", "acc", "--mode", "max")
    assert proc.stdout.startswith("best run for acc (max): 1  value 0.9")
    show = json.loads(ato("runs", "show", "1", "--db", db, "--json").stdout)
    assert show["metrics"]["acc"] == {"latest": 0.9, "latest_step": 1, "min": 0.5, "max": 0.9, "steps": 2}
    diff = json.loads(ato("runs", "diff", "1", "2", "--db", db, "--json").stdout)
    assert diff["config"] == {"lr": [0.1, 0.01], "model": ["resnet50", "resnet101"]}
    assert diff["same_structure"] is True and diff["status"] == ["completed", "failed"]
    assert diff["metrics"]["acc"]["max"] == [0.9, 0.7]
    text = ato("runs", "diff", "1", "2", "--db", db).stdout
    assert "structure identical" in text and "resnet101" in text


def test_errors_are_one_line(db):
    """A bad id or expression exits 2 with one clear line."""
    proc = ato("runs", "show", "99", "--db", db)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"no run with id 99 in {db}")
    proc = ato("runs", "list", "--db", db, "--where", "lr <<")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.processes  # many CLI subprocesses: seconds
def test_tag_passwords_masked_in_every_output(db_url):
    """A tag holding a URL with a password is shown as user:*** by list, show, diff and
    best, text and --json (as the dashboard shows it); the record keeps the tag."""
    secret = "postgresql://bob:hunter2@db/x"
    log_run(db_url, metrics=[("acc", 0.5, 0)], tags=[secret, "see mysql://al:pw1@h/d"], lr=0.1)
    log_run(db_url, metrics=[("acc", 0.7, 0)], tags=["plain"], lr=0.2)
    outputs = [ato("runs", *cmd, "--db", db_url, *j) for j in ((), ("--json",)) for cmd in
               (("list",), ("show", "1"), ("diff", "1", "2"), ("diff", "2", "1"),
                ("best", "--project", "proj", "--metric", "acc", "--mode", "min"))]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
        assert "hunter2" not in proc.stdout and "pw1" not in proc.stdout, proc.args
    assert "bob:***@db/x" in outputs[0].stdout and "al:***@h/d" in outputs[1].stdout
    assert json.loads(outputs[5].stdout)[0]["tags"] == ["postgresql://bob:***@db/x",
                                                        "see mysql://al:***@h/d"]
    from ato.tracking import open_finder

    assert open_finder(db_url).find_run(1).tags[0] == secret


@pytest.mark.parametrize("bad", ["99999999999999999999999", str(2**63), "0", "-1", "abc", "+3",
                                 " 3", "1_0", "\uff13", "03"])
@pytest.mark.processes  # many CLI subprocesses: seconds
def test_ids_no_database_holds_are_one_line(db, bad):
    """An id past 2^63 - 1 raised OverflowError (a traceback); every id argument is now
    checked like 0 and -1: one line naming it, exit 2."""
    for args in (("show", bad), ("diff", "1", bad), ("diff", bad, "1")):
        proc = ato("runs", *args, "--db", db)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.splitlines()[-1].endswith(
            f"{bad!r} is not a run id (run ids are whole numbers from 1 to {2**63 - 1})")
    assert ato("runs", "show", str(2**63 - 1), "--db", db).stderr.strip().endswith(
        f"no run with id {2**63 - 1} in {db}")


def test_a_tag_holding_a_comma_is_filtered_as_the_tables_quote_it(db_url):
    from ato.db_routers.sql.manager import SQLLogger
    from tests.sql.conftest import make_config

    for tags in (["a,b", "x"], ["a", "b"]):
        logger = SQLLogger(make_config(db_url))
        logger.run(tags=tags)
        logger.finish()

    def ids(spec):
        return [r["id"] for r in json.loads(ato("runs", "list", "--db", db_url, "--tags", spec,
                                                "--json").stdout)]

    assert ids('"a,b"') == ids('x,"a,b"') == [1]
    assert ids("a,b") == [2]
    proc = ato("runs", "list", "--db", db_url, "--tags", '"a,b')
    assert proc.returncode == 2 and "a quoted tag is not closed" in proc.stderr


def test_text_tables_clip_quote_and_align(db_url):
    """One 3,000-character value or 500-character tag made every row thousands wide; a tag
    'a,b' read as two; a wide character misaligned the columns; ü was written \\u00fc."""
    from ato.db_routers.sql.manager import SQLLogger
    from tests.sql.conftest import make_config

    first = SQLLogger(make_config(db_url, note="y" * 3000, name="漢字漢字", only_a=1,
                                  lst=["ü"]))
    first.run(tags=["a,b", "ü tag", "x" * 500])
    first.finish()
    second = SQLLogger(make_config(db_url, note="short", name="ab", only_b="<absent>",
                                   lst=["u"]))
    second.run(tags=["plain", ""])
    second.finish()
    listing = ato("runs", "list", "--db", db_url).stdout
    assert max(len(line) for line in listing.splitlines()) < 140
    assert '"a,b",ü tag,xxx' in listing and 'plain,""' in listing
    text = ato("runs", "diff", "1", "2", "--db", db_url).stdout
    assert '["ü"]' in text and "\\u00fc" not in text
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isalpha()}
    # the run-2 column starts at the same display column on every row
    import unicodedata

    def col(line, token):
        head = line[:line.rindex(token)]
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in head)

    assert col(rows["name"], "ab") == col(rows["only_a"], "<absent>") == col(rows["note"], "short")
    assert "…" in rows["note"] and len(rows["note"]) < 140
    d = json.loads(ato("runs", "diff", "1", "2", "--db", db_url, "--json").stdout)
    assert d["config"]["only_a"] == [1, None] and d["config"]["only_b"] == [None, "<absent>"]
    assert d["absent"] == {"only_a": [False, True], "only_b": [True, False]}
    assert d["config"]["note"][0] == "y" * 3000  # whole in --json
    # runs show: the value is the last column, so a long one is whole (a data path must
    # be readable) and the rule under the header stays short
    shown = ato("runs", "show", "1", "--db", db_url).stdout
    assert "y" * 3000 in shown
    assert max(len(line) for line in shown.splitlines() if set(line) <= {"-", " "}) < 140
