"""Every ```python block in docs/*.md runs: the blocks of one file in order, in one
namespace. A block preceded by an HTML comment ``<!-- no-run: reason -->`` is skipped; the
reason is visible in the page's source. Every page is marked slow (its fits take 4-10 s on one
core) except those in FAST, so pages added later are slow until measured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
BLOCK = re.compile(r"(<!--\s*no-run:[^>]*-->\s*)?```python\n(.*?)```", flags=re.S)
FAST = {"results.md"}  # under 1 s


def runnable_blocks(path: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(path.read_text()) if not skip]


PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("page", [pytest.param(p, id=p.name, marks=[] if p.name in FAST
                                               else [pytest.mark.slow])
                                  for p in PAGES])
def test_doc_examples_run(page: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    blocks = runnable_blocks(page)
    assert blocks, f"{page.name}: every block is marked no-run"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)


def test_no_run_marks_give_a_reason() -> None:
    for page in PAGES:
        for mark in re.findall(r"<!--\s*no-run:([^>]*)-->", page.read_text()):
            assert mark.strip(), f"{page.name}: a no-run mark without a reason"
