"""A launcher like Slicer's ``PythonSlicer``: a separate program that starts the real interpreter as its child.

Slicer's launcher (CTK's AppLauncher) sets up the environment, starts ``python-real`` with the same arguments
as a child process and waits for it, returning its exit code. Tests that used ``sys.executable`` in its place
could not see what differs: ending the launcher does not end the interpreter, and file descriptors or handles
given to the launcher do not reach the interpreter.
"""

import stat
import sys
from pathlib import Path

LAUNCHER = '''#!{python}
import subprocess
import sys

sys.exit(subprocess.call([{python!r}, *sys.argv[1:]]))
'''


def write_launcher(folder, name="PythonSlicer"):
    """An executable launcher ``folder/name`` that runs this test's Python as its child; returns its path."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LAUNCHER.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def write_real_interpreter(folder, name="python-real"):
    """``folder/name``: this test's Python under Slicer's name for its real interpreter (a shell ``exec``, so the
    same process and the same open files); returns its path."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def process_is_running(pid):
    """Whether ``pid`` is a process that still runs (a zombie, ended and waiting to be reaped, does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

