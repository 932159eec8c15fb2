"""DataLoader workers started by "spawn" inside Slicer, where ``sys.executable`` is not a Python interpreter.

Slicer's application runs the trainer's commands in its embedded Python: ``sys.executable`` names the application,
and multiprocessing's "spawn" (the default on Windows and macOS) starts each worker with it; Slicer's launchers
start the real interpreter as a child, which does not get the pipe the worker must read (Slicer issue #7445). Here
a launcher script stands for the application, with Slicer's ``python-real`` beside it, and a fresh Python plays
Slicer's embedded one.
"""

import subprocess
import sys

import pytest

from LiverResUNetLib.training.workers import loader_workers, spawn_executable
from python_launcher import write_launcher, write_real_interpreter

TRAIN_WITH_WORKERS = """
import sys
application, options = sys.argv[1], sys.argv[2]
sys.executable = application  # as inside Slicer's application
import multiprocessing
multiprocessing.set_executable(application)  # what multiprocessing takes from sys.executable when imported
import torch
from LiverResUNetLib.training.workers import loader_workers
kwargs = loader_workers(2, start_method="spawn") if options == "project" else {
    "num_workers": 2, "multiprocessing_context": "spawn"}
dataset = torch.utils.data.TensorDataset(torch.arange(8))
loader = torch.utils.data.DataLoader(dataset, batch_size=4, timeout=120, **kwargs)
print(sorted(int(value) for (batch,) in loader for value in batch))
"""


@pytest.fixture
def slicer_bin(tmp_path):
    """A Slicer-like bin folder: the application (a launcher of this Python) and python-real beside it."""
    write_real_interpreter(tmp_path / "bin")
    return write_launcher(tmp_path / "bin", "SlicerApp-real")


def train_inside(application, options):
    return subprocess.run([str(application), "-c", TRAIN_WITH_WORKERS, str(application), options],
                          capture_output=True, text=True, timeout=300)


def test_spawned_workers_finish_inside_slicer(slicer_bin):
    finished = train_inside(slicer_bin, "project")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.strip().splitlines()[-1] == str(list(range(8)))


def test_spawned_workers_started_by_the_application_itself_fail(slicer_bin):
    """The defect the fix avoids, reproduced by the launcher: the plain DataLoader's workers never work."""
    finished = train_inside(slicer_bin, "plain")
    assert finished.returncode != 0 and "DataLoader worker" in finished.stderr, finished.stderr[-3000:]


def test_workers_use_python_real_beside_slicer_or_none_without_it(slicer_bin, tmp_path):
    assert spawn_executable(slicer_bin) == str(slicer_bin.with_name("python-real"))
    assert spawn_executable(slicer_bin.with_name("PythonSlicer")) == str(slicer_bin.with_name("python-real"))
    assert spawn_executable(sys.executable) == sys.executable
    assert spawn_executable(tmp_path / "Slicer") is None
    assert loader_workers(2, "spawn", tmp_path / "Slicer") == {"num_workers": 0}, "made in-process, not hung"
    assert loader_workers(2, "fork", tmp_path / "Slicer") == {"num_workers": 2}, "fork runs no executable"
    assert loader_workers(0, "spawn") == {"num_workers": 0}
