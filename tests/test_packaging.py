"""The grammar ships in the wheel: build it, install it elsewhere, parse a model from there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import semgalamm.syntax
from semgalamm.syntax import parse
syntax = parse("ability =~ 1*item[1] + item[2]; ability ~ (1 | school); y ~ 0 + item")
assert len(syntax.statements) == 3, syntax
print(semgalamm.syntax.__file__)
"""


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _build_wheel(wheels: Path) -> Path:
    """Build with the environment's setuptools; if that is too old for pyproject.toml, let pip
    build in isolation with the build requirements from its configured (local) index."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(ROOT)]
    first = subprocess.run([*command, "--no-build-isolation"], capture_output=True, text=True)
    if first.returncode != 0:
        second = subprocess.run(command, capture_output=True, text=True)
        assert second.returncode == 0, first.stderr[-2000:] + "\n" + second.stderr[-2000:]
    (wheel,) = wheels.glob("semgalamm-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_ships_the_grammar(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    wheel = _build_wheel(wheels)
    _run(sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel))
    assert (target / "semgalamm" / "grammar" / "semgalamm.lark").is_file()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    result = _run(sys.executable, "-c", SCRIPT, cwd=tmp_path, env=env)
    # the package came from the installed wheel, not from the source tree
    assert Path(result.stdout.strip()).is_relative_to(target)
