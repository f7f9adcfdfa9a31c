"""The README and docs/ pages: every relative link points at a file that exists (and at a heading of it when it
names one, as GitHub slugs headings), and the README stays a page (in process, no network)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tests.support import ROOT

README_MAX_LINES = 200

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"(`+).+?\1")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str, *, blank_inline_code: bool = True) -> list[tuple[int, str]]:
    """(line number, line) outside fenced and indented code blocks, inline code blanked out unless told."""
    out, fenced, in_block, previous_blank = [], False, False, True
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        in_block = line.startswith("    ") and (previous_blank or in_block)  # an indented code block
        previous_blank = not line.strip()
        if fenced or in_block:
            continue
        out.append((number, _INLINE_CODE.sub("", line) if blank_inline_code else line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file; repeats get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), blank_inline_code=False):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """`file:line: target (why)` for each relative link of a markdown file that points nowhere."""
    problems = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...: not checked here
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.name}:{number}: {target}"
            if not dest.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where} (no heading #{anchor} in {dest.name})")
    return problems


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_is_a_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (ROOT / t.partition("#")[0]).resolve()
        for _, line in prose_lines((ROOT / "README.md").read_text(encoding="utf-8"))
        for t in _LINK.findall(line)
    }
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked] == []


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# The MLflow UI (`harness ui`)\n\n## Sweeps\n\n## Sweeps\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n"
        "[ok](other.md#the-mlflow-ui-harness-ui) [ok](other.md#sweeps-1) [ok](#top) [web](https://example.org/x)\n"
        "[gone](missing.md) [no anchor](other.md#tracking) ![figure](fig.png)\n"
        "`[in code](nowhere.md)`\n\n    [indented code](nowhere.md)\n\n"
        "```\n[fenced](nowhere.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md:4: missing.md (no such file)",
        "page.md:4: other.md#tracking (no heading #tracking in other.md)",
        "page.md:4: fig.png (no such file)",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    """`.ci/run` runs the line after its `# README test command:` comment; the README shows that same command."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = ci[ci.index("# README test command:") + 1].strip()
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert f"    {command}" in readme, f"README.md does not show .ci/run's test command: {command}"
