"""Style (ruff) and types (mypy), configured in pyproject.toml, checked like any other behaviour."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_tool(*arguments):
    return subprocess.run([sys.executable, "-m", *arguments], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = run_tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_error_in_the_core():
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
