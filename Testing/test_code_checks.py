"""Style (ruff) and types (mypy), configured in pyproject.toml, checked like any other behaviour."""

import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def run_tool(*arguments):
    return subprocess.run([sys.executable, "-m", *arguments], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = run_tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_error_in_the_core():
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_checks_that_every_function_of_the_core_is_annotated():
    """The check above covers the whole core with untyped functions refused, and no module is let off."""
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert mypy["files"] == ["LiverResUNet/LiverResUNetLib"]
    assert mypy["disallow_untyped_defs"] is True and mypy["disallow_incomplete_defs"] is True
    let_off = [override["module"] for override in mypy.get("overrides", [])
               if override.get("disallow_untyped_defs") is False or override.get("disallow_incomplete_defs") is False]
    assert let_off == []
