"""Starting and ending the child process that runs the network, the way Slicer itself does.

Inside Slicer the child is ``PythonSlicer``: a launcher that sets up the environment and starts the real
interpreter (``python-real``) as *its* child. Ending the launcher alone leaves that interpreter running (holding
the CPU or the GPU after Cancel), so Cancel ends the whole tree, as SlicerMONAIAuto3DSeg does with psutil.
"""

import os
import subprocess
from typing import Any


def hidden_console_options(os_name: str = os.name) -> dict[str, Any]:
    """Extra ``subprocess.Popen`` keyword arguments so that no console window opens for the child on Windows
    (a window the user could close, ending the run); none elsewhere.

    This is the idiom of Slicer's own ``slicer.util.launchConsoleProcess`` (STARTUPINFO with
    STARTF_USESHOWWINDOW and SW_HIDE), plus CREATE_NO_WINDOW so that a console program such as PythonSlicer gets
    no console at all.
    """
    if os_name != "nt":
        return {}
    # subprocess has these on Windows only (typeshed declares them for win32); os_name says this runs there.
    info = subprocess.STARTUPINFO()  # type: ignore[attr-defined]
    info.dwFlags |= subprocess.STARTF_USESHOWWINDOW  # type: ignore[attr-defined]
    info.wShowWindow = subprocess.SW_HIDE  # type: ignore[attr-defined]
    return {"startupinfo": info, "creationflags": subprocess.CREATE_NO_WINDOW}  # type: ignore[attr-defined]


def kill_process_tree(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """End ``process`` (a ``subprocess.Popen``) and every process it started, and wait for them.

    The descendants are listed before anything is killed: once the launcher is gone, its children are
    re-parented and could no longer be found from it.
    """
    import psutil

    try:
        root = psutil.Process(process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout)
    psutil.wait_procs(tree, timeout=timeout)
