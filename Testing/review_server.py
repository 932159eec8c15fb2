"""``liverresunet review`` as a user starts it, for the browser tests and the latency benchmark: a child process
whose first stdout line is the page's URL; and the system Chromium driven by Playwright (no browser download)."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 180.0


@dataclass
class ReviewServer:
    """A running ``review`` command: its process, the URL it printed and when it was started."""

    process: subprocess.Popen
    url: str
    started: float

    @property
    def base(self) -> str:
        return self.url.split("/index.html")[0]

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would: no handler runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def review_command(*arguments: str | Path) -> list[str]:
    return [sys.executable, "-m", "LiverResUNetLib", "review", *map(str, arguments)]


def review_environment() -> dict[str, str]:
    """This checkout's code, and VTK's EGL window (off-screen, Mesa) without first trying an X display."""
    return {**os.environ, "VTK_DEFAULT_OPENGL_WINDOW": "vtkEGLRenderWindow",
            "PYTHONPATH": os.pathsep.join([str(REPO / "LiverResUNet"), str(REPO / "LiverResUNetTrainer")])}


def start_review(*arguments: str | Path, log: Path) -> ReviewServer:
    """Start ``review`` with ``arguments``; return once it printed its URL (its stderr goes to ``log``)."""
    started = time.monotonic()
    with open(log, "ab") as errors:
        process = subprocess.Popen(review_command(*arguments), stdout=subprocess.PIPE, stderr=errors, cwd=REPO,
                                   env=review_environment(), start_new_session=True)
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    if not url.startswith("http://"):
        process.wait(timeout=30)
        raise RuntimeError(f"review printed {url!r} instead of its URL (exit {process.returncode}); see {log}")
    server = ReviewServer(process, url, started)
    _wait_until_listening(server)
    return server


def _wait_until_listening(server: ReviewServer) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(server.url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            if server.process.poll() is not None:
                raise RuntimeError(f"review ended with exit code {server.process.returncode}")
            time.sleep(0.2)
    raise TimeoutError(f"review did not answer within {START_TIMEOUT_S} s")


def launch_chromium(playwright: Any, user_data_dir: Path) -> Any:
    """The Debian Chromium, headless, in a fresh profile; a 1600 x 900 page."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1600, "height": 900})
    return context
