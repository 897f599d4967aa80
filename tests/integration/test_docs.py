"""Keep the documentation honest: every code block runs or says why not, every hook and
interface member is documented with its real signature, every link resolves, and the
plugin tutorial builds, pip-installs and runs exactly as written.

The marker convention is in docs/contributing.md.  Python blocks marked ``slow`` run only
with ``ATO_DOCS_RUN=1`` (``nox -s docs``); everything else runs in the default suite.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))
RUN_SLOW = os.environ.get("ATO_DOCS_RUN") == "1"

#: Pages whose authors had not marked their blocks yet when this checker arrived: their
#: checks run, but a failure is an expected failure.  Remove a page once it is marked.
NOT_YET_MARKED: set[str] = set()
#: Hook sections of docs/plugins.md written to another format for now (same treatment).
PENDING_SECTIONS: set[str] = set()

MARKER = re.compile(r"^<!--\s*([a-z-]+):\s*(.*?)\s*-->\s*$")
MARKERS = {"not-run", "file", "slow", "checked-by"}
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)")


@dataclass
class Block:
    page: str
    line: int          # 1-based line of the opening fence
    lang: str
    text: str
    marker: str | None
    argument: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str, text: str | None = None) -> list[Block]:
    """The fenced code blocks of ``page`` (CommonMark fences: ``` or ~~~, closed by the
    same character at least as long), each with the marker on the line above it."""
    lines = ((ROOT / page).read_text() if text is None else text).splitlines()
    out, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = len(match.group(1)), match.group(2), match.group(3).lower()
        start, body = i, []
        i += 1
        while i < len(lines):
            close = lines[i].strip()
            if close.startswith(fence[0] * len(fence)) and not close.strip(fence[0]):
                break
            line = lines[i]
            strip = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, strip):])
            i += 1
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        out.append(Block(page, start + 1, lang, "\n".join(body) + "\n",
                         marker.group(1) if marker else None,
                         marker.group(2) if marker else ""))
        i += 1
    return out


def tolerant(pages):
    """Parametrize over ``pages``, expecting failures on pages not marked yet."""
    return [pytest.param(p, marks=pytest.mark.xfail(reason="blocks not marked yet", strict=False))
            if p in NOT_YET_MARKED else p for p in pages]


def test_block_parser():
    """Fences of either kind and any length, nesting, indentation and markers."""
    text = textwrap.dedent("""\
        <!-- not-run: an illustration -->
        ~~~~markdown
        ```python
        inside()
        ```
        ~~~~
        text
        <!-- file: a/b.json -->
          ```json
          {"a": 1}
           {"b": 2}
          ```
        ```
        plain
        ````
        """)
    found = blocks("x.md", text)
    assert [(b.line, b.lang, b.marker, b.argument) for b in found] == [
        (2, "markdown", "not-run", "an illustration"), (9, "json", "file", "a/b.json"),
        (13, "", None, "")]
    assert found[0].text == "```python\ninside()\n```\n"
    assert found[1].text == '{"a": 1}\n {"b": 2}\n'
    assert found[2].text == "plain\n"


def test_every_page_has_blocks_parsed():
    """The parser sees the fences of a known page (guards against a silent no-op)."""
    kinds = [(b.lang, b.marker) for b in blocks("docs/plugins.md")]
    assert ("toml", "file") in kinds and ("python", None) in kinds


@pytest.mark.parametrize("page", tolerant(PAGES))
def test_every_block_runs_or_says_why_not(page):
    """Each block is run (unmarked Python), or carries a valid marker."""
    problems = marker_problems(blocks(page))
    assert not problems, "\n".join(problems)


def marker_problems(found: list[Block]) -> list[str]:
    """One line per block that is neither runnable nor validly marked."""
    problems = []
    for block in found:
        if block.marker is None:
            if block.lang not in ("python", "py"):
                problems.append(f"{block.where}: a ```{block.lang or '(no language)'} block "
                                f"must be marked (see docs/contributing.md)")
        elif block.marker not in MARKERS:
            problems.append(f"{block.where}: unknown marker {block.marker!r} "
                            f"(known: {', '.join(sorted(MARKERS))})")
        elif block.marker in ("not-run", "slow") and len(block.argument.split()) < 2:
            problems.append(f"{block.where}: '{block.marker}' needs a reason, got "
                            f"{block.argument!r}")
        elif block.marker == "slow" and block.lang not in ("python", "py"):
            problems.append(f"{block.where}: only Python blocks can be 'slow'")
        elif block.marker == "file" and (not block.argument or block.argument.startswith("/")
                                         or ".." in Path(block.argument).parts):
            problems.append(f"{block.where}: 'file' needs a relative path without '..', got "
                            f"{block.argument!r}")
        elif block.marker == "checked-by":
            problem = _check_test_reference(block.argument)
            if problem:
                problems.append(f"{block.where}: checked-by {block.argument}: {problem}")
    return problems


def test_marker_problems_are_each_reported():
    """The checker itself: each kind of unmarked or badly marked block is one line."""
    text = textwrap.dedent("""\
        ```bash
        ls
        ```
        <!-- not-run: x -->
        ```
        ```
        <!-- skip: because -->
        ```python
        ```
        <!-- file: ../up.txt -->
        ```
        ```
        <!-- checked-by: tests/integration/test_docs.py::test_nothing_like_this -->
        ```
        ```
        <!-- slow: needs a server -->
        ```bash
        ```
        <!-- not-run: a fragment of a view -->
        ```python
        ```
        """)
    assert marker_problems(blocks("p.md", text)) == [
        "p.md:1: a ```bash block must be marked (see docs/contributing.md)",
        "p.md:5: 'not-run' needs a reason, got 'x'",
        "p.md:8: unknown marker 'skip' (known: checked-by, file, not-run, slow)",
        "p.md:11: 'file' needs a relative path without '..', got '../up.txt'",
        "p.md:14: checked-by tests/integration/test_docs.py::test_nothing_like_this: "
        "tests/integration/test_docs.py has no test 'test_nothing_like_this'",
        "p.md:17: only Python blocks can be 'slow'",
    ]


def _check_test_reference(reference: str) -> str | None:
    path, _, name = reference.partition("::")
    if not path.startswith("tests/") or not (ROOT / path).is_file():
        return f"no test file {path!r}"
    function = name.split("::")[-1]
    if not function or not re.search(rf"^\s*def {re.escape(function)}\(",
                                     (ROOT / path).read_text(), re.M):
        return f"{path} has no test {function!r}"
    return None


def _runnable(page: str) -> list[Block]:
    return [b for b in blocks(page) if b.lang in ("python", "py")
            and (b.marker is None or (b.marker == "slow" and RUN_SLOW))]


def write_files(page: str, directory: Path) -> None:
    """Write the page's ``file:`` blocks under ``directory``."""
    for block in blocks(page):
        if block.marker == "file":
            target = directory / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)


@pytest.mark.parametrize("page", tolerant([p for p in PAGES if _runnable(p)]))
def test_python_blocks_run(page, tmp_path):
    """A page's unmarked Python blocks run in order as one script, in an empty directory
    holding the page's ``file:`` blocks; a failure names the doc line."""
    write_files(page, tmp_path)
    script, origin = [], {}
    for block in _runnable(page):
        script.append(f"# --- {block.where}")
        for offset, line in enumerate(block.text.splitlines(), 1):
            script.append(line)
            origin[len(script)] = f"{page}:{block.line + offset}"
    (tmp_path / "_page.py").write_text("\n".join(script) + "\n")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "_page.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        lines = [int(n) for n in re.findall(r'File ".*_page\.py", line (\d+)', proc.stderr)]
        where = origin.get(lines[-1], "?") if lines else "?"
        pytest.fail(f"{where}: the page's Python failed:\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- the hooks
def hook_signatures():
    from ato.plugins import hookspecs

    return [f"{name}{inspect.signature(getattr(hookspecs, name))}"
            for name in dir(hookspecs) if name.startswith("ato_")]


@pytest.mark.parametrize("hook", hook_signatures())
def test_plugin_hooks_are_documented(hook):
    """docs/plugins.md has a section headed by each hook's real signature."""
    assert f"### `{hook}`" in (DOCS / "plugins.md").read_text()


def test_the_hook_count_and_diagram_match_the_hookspecs():
    """docs/plugins.md says how many hooks there are and draws each in its diagram."""
    words = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
    hooks = [h.split("(")[0] for h in hook_signatures()]
    text = (DOCS / "plugins.md").read_text()
    assert f"goes through {words[len(hooks)]} [pluggy]" in text
    diagram = text.split("```\nimport ato.scope", 1)[1].split("```", 1)[0]
    assert sorted(re.findall(r"->\s+(ato_\w+)", diagram)) == sorted(hooks)


def render_member(interface, name: str) -> str:
    """How docs/plugins.md writes one interface member: ``name: type`` for an attribute,
    ``name(params) -> return`` for a method (without self/cls)."""
    annotations = interface.__dict__.get("__annotations__", {})
    if name in annotations:
        text = str(annotations[name])
        inner = re.fullmatch(r"(?:typing\.)?ClassVar\[(.*)\]", text)
        return f"{name}: {inner.group(1) if inner else text}"
    member = getattr(interface, name)
    signature = inspect.signature(member, eval_str=True,
                                  globals=vars(sys.modules[interface.__module__]))
    params = [p for n, p in signature.parameters.items() if n not in ("self", "cls")]
    rendered = str(signature.replace(parameters=params))
    return f"{name}{rendered}".replace("typing.", "")


def section(kind: str) -> str:
    from ato.plugins.manager import SEAMS

    text = (DOCS / "plugins.md").read_text()
    start = text.index(f"### `{SEAMS[kind][1]}()`")
    end = text.find("\n## ", start)
    following = text.find("\n### ", start + 1)
    ends = [e for e in (end, following) if e != -1]
    return text[start:min(ends) if ends else len(text)]


def _interface_kinds():
    from ato.plugins.interfaces import INTERFACES

    return [pytest.param(k, marks=pytest.mark.xfail(reason="section pending", strict=False))
            if k in PENDING_SECTIONS else k for k in INTERFACES]


@pytest.mark.parametrize("kind", _interface_kinds())
def test_hook_reference_matches_the_interfaces(kind):
    """Each member of each interface is listed, with its signature, in its hook's section,
    and the section lists no member the interface lacks."""
    from ato.plugins.interfaces import INTERFACES

    interface = INTERFACES[kind]
    names = set(interface.__dict__.get("__annotations__", {}))
    names |= {n for n, v in vars(interface).items() if not n.startswith("_") and
              (isinstance(v, (staticmethod, classmethod)) or inspect.isfunction(v))}
    text = section(kind)
    for name in sorted(names):
        assert f"- `{render_member(interface, name)}`" in text, (
            f"docs/plugins.md, {interface.__name__}: expected the bullet "
            f"- `{render_member(interface, name)}`")
    documented = set(re.findall(r"^- `(\w+)[(:]", text, re.M))
    assert documented <= names, f"documented but not in {interface.__name__}: {documented - names}"


def test_interface_signatures_render_as_written():
    """The renderer itself: a static method, a plain method and an attribute."""
    from ato.plugins.interfaces import Command, ConfigFormat, SearchAlgorithm

    assert render_member(ConfigFormat, "loads") == "loads(text: str, path: str, **kwargs) -> Any"
    assert render_member(ConfigFormat, "suffixes") == "suffixes: tuple[str, ...]"
    assert render_member(SearchAlgorithm, "main") == "main(func)"
    assert render_member(Command, "run") == "run(args) -> int"


# --------------------------------------------------------------------------- links, names
@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    """Every relative link of the README and docs points at an existing file."""
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (path.parent / target).exists(), f"{page} links to missing {target}"


@pytest.mark.parametrize("page", PAGES)
def test_docs_name_only_what_users_have(page):
    """No page refers to the project's internal notes, and every dotted ``ato.…`` name
    in backticks imports (for the distributions installed)."""
    text = (ROOT / page).read_text()
    for internal in ("SEED.md", "DESIGN.md", "SPEC.md", "STYLE.md"):
        assert internal not in text, f"{page} names {internal}, which users do not have"
    for dotted in sorted(set(re.findall(r"`(ato(?:\.[A-Za-z_]\w*)+)", text))):
        parts = dotted.split(".")
        try:
            importlib.import_module(".".join(parts[:2]))
        except ImportError:
            continue  # a distribution not installed here
        obj, i = None, len(parts)
        while i > 1:
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                i -= 1
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"{page} names {dotted}, which does not exist"
            obj = getattr(obj, attr)


def test_readme_starts_with_the_two_commands():
    """The README opens with the demo command and the test command that .ci/run calls."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block] == [
        "bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


# --------------------------------------------------------------------------- the tutorial
def _venv_with_this_ato(tmp_path: Path) -> Path:
    """A venv that sees this interpreter's packages (Ato as installed here, hatchling)
    and installs into its own site-packages; returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(here))
    (Path(purelib) / "_ato_outer_env.pth").write_text(lines)
    return python


def _console_session(block: Block) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` from a ``$ ``-prompted console block."""
    session: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(line)
    return session


def _matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` equals ``actual``, where a line ``...`` stands for any lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "..." else re.escape(line) + "\n"
                      for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def test_plugin_tutorial_installs_and_runs(tmp_path):
    """docs/plugins.md's tutorial, from its files alone: the package builds and
    pip-installs (no network: --no-deps --no-build-isolation), `ato plugins` and `ato
    convert` print what the page shows, and the page's Python uses the new format."""
    pytest.importorskip("hatchling", reason="the tutorial's build backend (nox installs it)")
    page = "docs/plugins.md"
    write_files(page, tmp_path)
    checked = [b for b in blocks(page) if b.marker == "checked-by"
               and b.argument.endswith("::test_plugin_tutorial_installs_and_runs")]
    console = next(b for b in checked if b.lang == "console")
    python_block = next(b for b in checked if b.lang == "python")
    python = _venv_with_this_ato(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.json").write_text('{"model": {"depth": 50}, "lr": 0.001}')
    (work / "dotted.json").write_text('{"a.b": 1}')  # a key the format cannot hold
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    env.pop("ATO_DISABLE_PLUGINS", None)
    env.pop("ATO_PREFER_PLUGINS", None)
    for command, expected in _console_session(console):
        argv = command.split()
        if argv[:2] == ["pip", "install"]:
            argv = [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", *argv[2:]]
            proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert proc.returncode == 0, f"{console.where}: {command}\n{proc.stderr}"
            continue
        assert argv[0] == "ato", command
        proc = subprocess.run([str(python), "-m", "ato.cli", *argv[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        actual = (proc.stdout + proc.stderr).replace(str(work), "/home/me").splitlines()
        assert proc.returncode == (2 if "error:" in "\n".join(expected) else 0), command
        assert _matches(expected, actual), (
            f"{console.where}: `{command}` printed\n" + "\n".join(actual))
    assert (work / "train.kv").read_text() == "model.depth = 50\nlr = 0.001\n"
    assert not (work / "o.kv").exists()  # the refused dump wrote nothing
    (work / "_block.py").write_text(python_block.text)
    proc = subprocess.run([str(python), "_block.py"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"{python_block.where}:\n{proc.stderr}"
    assert proc.stdout == "model.depth = 50\nmodel.name = %resnet%\nlr = 0.001\n"
    check = ("from ato_kv import plugin; from ato.plugins.manager import check_plugin; "
             "print(check_plugin(plugin))")
    proc = subprocess.run([str(python), "-c", check], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_console_matcher():
    """``...`` in a sample stands for any lines, including none."""
    assert _matches(["...", "b", "c"], ["a", "x", "b", "c"])
    assert _matches(["...", "b"], ["b"])
    assert not _matches(["...", "b", "c"], ["b", "x", "c"])
    assert not _matches(["b"], ["b", "c"])


def test_example_plugin_snippets_are_its_code():
    """Snippets of docs/plugins.md said to be the example plugin's code are, verbatim."""
    source = "\n".join(p.read_text() for p in
                       (ROOT / "examples/ato-example-plugin/src").rglob("*.py"))
    snippets = [b for b in blocks("docs/plugins.md") if b.marker == "checked-by"
                and b.argument.endswith("::test_example_plugin_snippets_are_its_code")]
    assert snippets
    for block in snippets:
        assert textwrap.dedent(block.text) in source, f"{block.where} is not in the example"


def test_readme_installation_table_matches_ato_plugins():
    """Each installed Ato distribution's README row names everything `ato plugins` shows it
    providing: suffixes, tracker schemes, search algorithms, commands, config sources."""
    from ato.plugins import manager

    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"^\| `(ato-[a-z]+)` \|(.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    missing = []
    for record in manager.plugin_records():
        if record.distribution not in manager.FIRST_PARTY or record.state != "loaded":
            continue
        assert record.distribution in rows, f"README has no row for {record.distribution}"
        for kind in manager.SEAMS:
            seam = manager._seam(kind)
            for plugin_name, keys in seam.served.get(record.name, []):
                names = keys if kind in manager._KEY_ATTR else [plugin_name]
                if kind == "command":
                    names = [f"ato {plugin_name}"]
                missing += [f"{record.distribution}: {name}" for name in names
                            if f"`{name}`" not in rows[record.distribution]]
    assert missing == [], f"README's installation table omits {missing}"
