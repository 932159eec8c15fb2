"""The suite's own runner: scripts/test.sh and the pytest configuration in pyproject.toml.

scripts/test.sh runs in a copy of its folder layout where the environment scripts and both Pythons are stand-ins
that exit with a chosen code, so what is checked is the script's own decision, not the test results.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def exiting_with(path, code):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexit {code}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def test_script(tmp_path):
    """Run a copy of scripts/test.sh whose first pass exits with ``first``, second (DICOM) pass with ``second`` and
    third (browser review) pass with ``third``."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    (tmp_path / "scripts" / "env.sh").write_text("")
    (tmp_path / "Testing").mkdir()
    (tmp_path / "Testing" / "test_dicom_thing.py").write_text("import pytest\npytestmark = pytest.mark.dicom\n")
    (tmp_path / "Testing" / "test_review_thing.py").write_text("import pytest\npytestmark = pytest.mark.review\n")

    def run(first, second, *arguments, third=0):
        exiting_with(tmp_path / ".venv" / "bin" / "python", first)
        second_python = exiting_with(tmp_path / "second-python", second)
        (tmp_path / "scripts" / "slicer_env.sh").write_text(
            f"export SLICER_ENV_PYTHON={second_python}\nexport PYDICOM_2_4_4_PATH={tmp_path}\n")
        third_python = exiting_with(tmp_path / "third-python", third)
        (tmp_path / "scripts" / "review_env.sh").write_text(f"export REVIEW_ENV_PYTHON={third_python}\n")
        return subprocess.run(["bash", str(tmp_path / "scripts" / "test.sh"), *arguments], capture_output=True,
                              text=True, timeout=60).returncode

    return run


def test_a_second_pass_that_collects_nothing_fails_the_whole_suite(test_script):
    assert test_script(0, 5) == 5, "without arguments every DICOM test must run"
    assert test_script(0, 5, "-k", "train") == 0, "arguments that select no DICOM test: the first pass decides"
    assert test_script(0, 0) == 0
    assert test_script(0, 1) == 1 and test_script(0, 1, "-k", "seg") == 1
    assert test_script(1, 0) == 1


def test_a_third_pass_that_collects_nothing_fails_the_whole_suite(test_script):
    assert test_script(0, 0, third=5) == 5, "without arguments every browser-review test must run"
    assert test_script(0, 0, "-k", "train", third=5) == 0
    assert test_script(0, 0, third=1) == 1 and test_script(1, 0, third=0) == 1


def test_pytest_prints_why_a_test_was_skipped(tmp_path):
    (tmp_path / "test_skipping.py").write_text("import pytest\n\ndef test_it():\n    pytest.skip('no scanner here')\n")
    finished = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir",
                               str(tmp_path), "-p", "no:cacheprovider", str(tmp_path / "test_skipping.py")],
                              capture_output=True, text=True, timeout=120)
    assert "SKIPPED [1]" in finished.stdout and "no scanner here" in finished.stdout, finished.stdout
