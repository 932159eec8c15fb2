"""The prediction of one CT in a child process: the caller's thread never waits, and Cancel ends it at once.

Slicer's GUI thread must stay free while the network runs (a frozen window cannot be cancelled), and a
network call cannot be interrupted from inside. So, as SlicerTotalSegmentator does, the CT is written to a
temporary folder and the ``predict`` command runs on it in another Python process (Slicer's PythonSlicer);
the caller polls it from a timer, reads its progress lines, and kills it on Cancel. Nothing here imports MRML.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import typing
from collections.abc import Mapping
from pathlib import Path

from LiverResUNetLib.inference.child_process import hidden_console_options, kill_process_tree
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.progress import read_progress_line

if typing.TYPE_CHECKING:
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions
    from LiverResUNetLib.volume import Volume

# The folder holding the LiverResUNetLib package: ``python -m LiverResUNetLib`` run there finds it.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
# Lines of the child's output kept for the error message when it fails.
KEPT_LINES = 20


class PredictionFailed(RuntimeError):
    """The child process ended with an error; the message holds its last lines of output."""


class BackgroundPrediction:
    """``predict`` on a CT Volume in a child process, started at construction.

    Args:
        volume: the CT Volume (HU) to label.
        model_path: the model file.
        device: "auto", "cuda", "mps" or "cpu".
        postprocess: ``PostprocessOptions`` or None for the defaults.
        batch_size: slices per network batch; None: the predictor's choice.
        python: the Python executable of the child (Slicer: PythonSlicer); default: this one.
        env: the child's environment; default: this process's.
    """

    def __init__(self, volume: Volume, model_path: str | Path, device: str = "auto",
                 postprocess: PostprocessOptions | None = None, batch_size: int | None = None,
                 python: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="LiverResUNet-"))
        self.output = self.folder / "labels.nrrd"
        self.fraction, self.message = 0.0, "starting the prediction"
        self._lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        try:
            # Raw, not compressed: this runs on Slicer's GUI thread, and the child reads the file at once.
            write_image(volume, self.folder / "input.nrrd", compress=False)
            command = [python or sys.executable, "-m", "LiverResUNetLib", "predict", "--model", str(model_path),
                       "--input", str(self.folder / "input.nrrd"), "--output", str(self.output),
                       "--device", device]
            if postprocess is not None:
                command += ["--postprocessing", json.dumps(postprocess.to_dict())]
            if batch_size is not None:
                command += ["--batch-size", str(batch_size)]
            self.process = subprocess.Popen(command, cwd=PACKAGE_PARENT, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                            errors="replace", **hidden_console_options())
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        for line in self.process.stdout or ():  # a pipe: never None
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def poll(self) -> bool:
        """Take in the output so far; True once the child has ended and all its output is read."""
        finished = False
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                finished = True
                break
            self._lines = (self._lines + [line])[-KEPT_LINES:]
            update = read_progress_line(line)
            if update:
                self.fraction, self.message = update
        if finished:
            self._queue.put(None)  # a later poll still sees the end
            self.process.wait()
        return finished

    def labels(self) -> Volume:
        """The label Volume, once :meth:`poll` said the child ended; PredictionFailed if it failed."""
        if self.process.returncode != 0:
            raise PredictionFailed("the prediction failed (exit code {}):\n{}".format(
                self.process.returncode, "\n".join(self._lines)))
        return read_image(self.output)

    def cancel(self) -> None:
        """End the child and every process it started (PythonSlicer's real interpreter) now, if still running,
        and remove the temporary folder."""
        if self.process.poll() is None:
            kill_process_tree(self.process)
        self.close()

    def close(self) -> None:
        """Remove the temporary folder (the input copy and the labels)."""
        shutil.rmtree(self.folder, ignore_errors=True)
