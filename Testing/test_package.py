"""The pip-installed project: the `liverresunet` console command runs the same subcommands as the module."""

import subprocess
import sys
from pathlib import Path


def test_console_command_runs_a_subcommand(tmp_path):
    command = Path(sys.executable).parent / "liverresunet"
    result = subprocess.run([str(command), "phantom", "--out", str(tmp_path / "raw"), "--patients", "1",
                             "--size", "32", "--slices", "8"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "raw" / "3Dircadb1" / "3Dircadb1.1").is_dir()


def test_console_command_names_itself_in_its_help():
    command = Path(sys.executable).parent / "liverresunet"
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: liverresunet ")
