"""Progress shown to a person: the one reporter of every command, and the line format the Slicer module reads.

On a terminal :class:`ProgressReporter` redraws one bar in place, as tqdm does. Otherwise (a log file, a pipe,
the Slicer module reading the ``predict`` child's output) it writes plain lines ``[ 40%] message``, which
:func:`read_progress_line` turns back into (fraction, message) for Slicer's progress bar. A reporter is a
``callbacks.Progress``, so the core's long operations take it like any other callback.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
import types
from typing import TextIO

_PROGRESS_LINE = re.compile(r"^\[\s*(\d+)%\] (.*)$")


def progress_line(fraction: float, message: str) -> str:
    """The plain line of one update: ``[ 40%] message``."""
    return f"[{fraction:4.0%}] {message}"


def read_progress_line(line: str) -> tuple[float, str] | None:
    """(fraction, message) of a line written by :func:`progress_line`; None for any other line."""
    match = _PROGRESS_LINE.match(line)
    return (int(match.group(1)) / 100.0, match.group(2)) if match else None


class ProgressReporter:
    """``reporter(fraction, message)`` shows a long operation's progress on ``stream`` (default: standard error).

    Args:
        prefix: put before every line, e.g. the case being worked on.
        interval: plain lines only: at most one line per ``interval`` seconds (the first and the finished
            ones always show), so a log of a long training stays short.
        stream: where to write; a terminal gets the redrawn bar, anything else plain lines.

    On a terminal a finished line (100 %) stays and the next update starts a new one, so notes reported at
    100 % are not drawn over. :meth:`close` (or leaving a ``with`` block) ends the bar's line.
    """

    def __init__(self, prefix: str = "", interval: float = 0.0, stream: TextIO | None = None, width: int = 24):
        self.stream = stream or sys.stderr
        self.prefix, self.interval, self.width = prefix, interval, width
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self.last_shown: float | None = None
        self.drawn, self.finished = "", False

    def __call__(self, fraction: float, message: str) -> None:
        fraction = max(0.0, min(1.0, fraction))
        now = time.monotonic()
        if self.interactive:
            self._draw(fraction, message, now)
        elif self.last_shown is None or now - self.last_shown >= self.interval or fraction >= 1.0:
            self.stream.write(f"{self.prefix}{progress_line(fraction, message)}\n")
        else:
            return
        self.last_shown = now
        self.stream.flush()

    def _draw(self, fraction: float, message: str, now: float) -> None:
        if self.finished:
            self.stream.write("\n")
            self.drawn = ""
        filled = int(round(self.width * fraction))
        minutes, seconds = divmod(int(now - self.started), 60)
        line = (f"{self.prefix}[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%} "
                f"{minutes:02d}:{seconds:02d} {message}")[:shutil.get_terminal_size().columns - 1]
        self.stream.write("\r" + line.ljust(len(self.drawn)))
        self.drawn, self.finished = line, fraction >= 1.0

    def close(self) -> None:
        """End the bar's line on a terminal, so that what is printed next starts on a line of its own."""
        if self.interactive and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn, self.finished = "", False

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: types.TracebackType | None) -> None:
        self.close()
