"""Keep the documentation honest: every hook has its section, every link resolves."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def hook_names():
    from ato.plugins import hookspecs

    return [name for name in dir(hookspecs) if name.startswith("ato_")]


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hooks_are_documented(hook):
    """docs/plugins.md has a section headed by each hook's signature."""
    assert f"### `{hook}()`" in (DOCS / "plugins.md").read_text()


@pytest.mark.parametrize("page", ["README.md"] + [f"docs/{p.name}" for p in DOCS.glob("*.md")])
def test_relative_links_resolve(page):
    """Every relative link of the README and docs points at an existing file."""
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (path.parent / target).exists(), f"{page} links to missing {target}"


def test_readme_starts_with_the_two_commands():
    """The README opens with the demo command and the test command that .ci/run calls."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block] == [
        "bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
