"""The docs a user reads: the CLI reference is current, the README stays short, and every
relative link in the README or docs/ points at a file (and heading) that is there."""

from __future__ import annotations

import re
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

FENCED = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _cli_docs() -> ModuleType:
    """``scripts/cli_docs`` has no ``.py`` suffix, so it is loaded by path."""
    loader = SourceFileLoader("cli_docs", str(ROOT / "scripts" / "cli_docs"))
    module = ModuleType(loader.name)
    module.__file__ = loader.path
    loader.exec_module(module)
    return module


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _relative_links(page: Path) -> list[str]:
    text = INLINE_CODE.sub("", FENCED.sub("", page.read_text(encoding="utf-8")))
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as -."""
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_cli_reference_is_what_help_prints_now() -> None:
    """docs/cli.md is exactly what scripts/cli_docs renders from the current parser."""
    module = _cli_docs()
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == module.render(), "docs/cli.md is stale: run `make docs`"


def test_cli_reference_has_every_subcommand() -> None:
    """Every subcommand of the parser, the simulator's `sim` included, has its own section."""
    module = _cli_docs()
    text = module.render()
    for name in ("run", "resume", "validate", "status", "report", "approve", "worker", "sim"):
        assert f"## `orchestrator {name}`" in text


def test_readme_is_at_most_300_lines() -> None:
    """The README stays a pitch and a quick start; the depth lives in docs/."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


def test_every_relative_link_points_at_a_file_that_exists() -> None:
    """Relative links (and images) in README.md and docs/*.md name files of this repository."""
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in _pages()
        for target in _relative_links(page)
        if not (page.parent / target.partition("#")[0]).exists()
    ]
    assert broken == []


def test_every_link_into_a_page_names_one_of_its_headings() -> None:
    """A link such as failures.md#delivery-contract (or #resuming, on its own page) lands on a
    heading that exists."""
    broken = []
    for page in _pages():
        for target in _relative_links(page):
            path, _, anchor = target.partition("#")
            linked = page.parent / path if path else page
            if anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_link_check_sees_links() -> None:
    """The link pattern finds the README's links, so the check above is not vacuous."""
    targets = _relative_links(README)
    assert "docs/report.png" in targets
    assert any(t.startswith("docs/") and t.endswith(".md") for t in targets)
