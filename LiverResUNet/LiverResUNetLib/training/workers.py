"""DataLoader worker processes that also start inside 3D Slicer.

Workers started by "spawn" (the default on Windows and macOS) or "forkserver" run multiprocessing's executable,
which is ``sys.executable``. Inside Slicer's application that is Slicer itself, not a Python: the workers never
start and training hangs (Slicer issue #7445). Passing through the ``PythonSlicer`` launcher does not work either,
since the pipe the worker must read is not handed on to the interpreter the launcher starts. Slicer's real
interpreter, ``python-real``, lies beside both and runs in the environment Slicer already set up, so it is made
the workers' executable (``multiprocessing.set_executable``, Python's documented way for embedded interpreters).
"""

import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Any

REAL_INTERPRETER = "python-real"


def spawn_executable(executable: str | None = None) -> str | None:
    """The interpreter that spawned workers can run: ``executable`` (default ``sys.executable``) when it is a
    Python (Slicer's own test: "python" in its name) and not the PythonSlicer launcher, else Slicer's
    ``python-real`` beside it; None when there is none."""
    path = Path(executable or sys.executable)
    name = path.name.lower()
    if "python" in name and not name.startswith("pythonslicer"):
        return str(path)
    beside = path.with_name(REAL_INTERPRETER + (".exe" if path.suffix.lower() == ".exe" else ""))
    return str(beside) if beside.is_file() else None


def loader_workers(workers: int, start_method: str | None = None, executable: str | None = None) -> dict[str, Any]:
    """``torch.utils.data.DataLoader`` keyword arguments for ``workers`` worker processes that can start here.

    Args:
        workers: worker processes asked for (0: batches made in this process).
        start_method: multiprocessing's start method; None: this platform's default.
        executable: the program ``sys.executable`` names (for tests); None: ``sys.executable``.

    Returns ``num_workers`` and, where workers are spawned, a ``multiprocessing_context`` whose executable is a
    Python. Where no Python can be found, the batches are made in this process (with a warning) rather than hang.
    """
    method = start_method or multiprocessing.get_context().get_start_method()
    if workers == 0 or method == "fork":
        return {"num_workers": workers}
    interpreter = spawn_executable(executable)
    if interpreter is None:
        logging.warning("DataLoader workers cannot be started by %s from %s (not a Python interpreter and no %s "
                        "beside it): the batches are made in the training process", method,
                        executable or sys.executable, REAL_INTERPRETER)
        return {"num_workers": 0}
    context = multiprocessing.get_context(method)
    context.set_executable(interpreter)
    return {"num_workers": workers, "multiprocessing_context": context}
