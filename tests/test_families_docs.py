"""Every Python block of docs/families.md runs, and the numbers its comments quote from R are
the numbers it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[1] / "docs" / "families.md"


@pytest.mark.slow
def test_docs_families_blocks_run_and_print_the_quoted_numbers():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102
        quoted = re.findall(r"print\(round\([^\n]*\)\)\s*#[^\n:]*: ([-\d., ]+)", block)
        printed = out.getvalue().split("\n")
        for line, numbers in zip(printed, quoted, strict=False):
            assert line.split() == [v.strip() for v in numbers.strip().split(",")]
