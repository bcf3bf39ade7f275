"""The README points, the pages under docs/ hold the detail: a short README, no dead relative link,
and no page under docs/ that the README does not link to."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
# [text](target) or [text](target "title") or [text](<target>); images ![alt](src) too
LINK = re.compile(r"\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def relative_links(md: Path) -> list[str]:
    """The relative link targets of a markdown file, without anchors; code blocks are skipped."""
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    targets = []
    for m in LINK.finditer(text):
        target = m.group(1).strip("<>")
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        target = target.split("#", 1)[0].split("?", 1)[0]
        if target:
            targets.append(target)
    return targets


def test_docs_pages_exist():
    assert PAGES, "docs/ holds no page"


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines, at most {MAX_README_LINES}: move detail to docs/"


@pytest.mark.parametrize("md", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(md: Path):
    dead = [t for t in relative_links(md) if not (md.parent / t).exists()]
    assert not dead, f"{md.relative_to(ROOT)}: links to missing files or folders: {dead}"


def test_every_page_is_linked_from_readme():
    linked = {(README.parent / t).resolve() for t in relative_links(README)}
    orphans = [str(p.relative_to(ROOT)) for p in PAGES if p.resolve() not in linked]
    assert not orphans, f"pages under docs/ that README.md does not link to: {orphans}"


def test_link_parser(tmp_path: Path):
    """The parser itself: anchors and external links are ignored, titles and <...> are handled."""
    sample = tmp_path / "sample.md"
    sample.write_text('[a](docs/x.md#sec) [b](https://e.org/y) [c](#top) [d](<p q.md>) '
                      '[e](f.md "title")\n```\n[g](in_code.md)\n```\n', encoding="utf-8")
    assert relative_links(sample) == ["docs/x.md", "p q.md", "f.md"]
