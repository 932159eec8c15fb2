"""The one progress reporter: a bar redrawn in place on a terminal, plain lines elsewhere, read back by Slicer."""

import io

from LiverResUNetLib.progress import ProgressReporter, progress_line, read_progress_line


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    with ProgressReporter(stream=stream) as progress:
        progress(0.0, "reading")
        progress(0.404, "segmenting slices 1-16 of 40")
        progress(1.2, "done")
    assert stream.getvalue().splitlines() == ["[  0%] reading", "[ 40%] segmenting slices 1-16 of 40", "[100%] done"]


def test_plain_lines_carry_the_prefix_and_keep_to_the_interval(monkeypatch):
    clock = [0.0, 0.0, 1.0, 2.5, 3.0, 3.1]  # the reporter's start, then one reading per update
    monkeypatch.setattr("LiverResUNetLib.progress.time.monotonic", lambda: clock.pop(0) if clock else 60.0)
    stream = io.StringIO()
    progress = ProgressReporter("[1/2] liver: ", interval=2.0, stream=stream)
    for fraction, message in [(0.1, "a"), (0.2, "b"), (0.3, "c"), (0.4, "d"), (1.0, "e")]:
        progress(fraction, message)
    assert stream.getvalue().splitlines() == ["[1/2] liver: [ 10%] a", "[1/2] liver: [ 30%] c",
                                              "[1/2] liver: [100%] e"]


def test_slicer_reads_back_what_the_reporter_writes():
    assert read_progress_line(progress_line(0.25, "segmenting slices 1-16 of 64")) == \
        (0.25, "segmenting slices 1-16 of 64")
    assert read_progress_line("[100%] done") == (1.0, "done")
    assert read_progress_line("Traceback (most recent call last):") is None
    assert read_progress_line("[1/2] liver: [ 10%] a") is None


def test_a_terminal_gets_one_bar_redrawn_in_place_and_finished_lines_stay():
    stream = Terminal()
    with ProgressReporter(stream=stream, width=10) as progress:
        progress(0.5, "a long message")
        progress(0.6, "short")
        progress(1.0, "note: kept")
        progress(1.0, "done")
    text = stream.getvalue()
    lines = text.split("\n")
    assert len(lines) == 3 and lines[-1] == "", "one line per finished step, the bar's line ended at close"
    assert lines[0].startswith("\r[#####.....]  50% 00:00 a long message\r[######....]  60% 00:00 short ")
    assert lines[0].endswith("\r[##########] 100% 00:00 note: kept")
    assert lines[1] == "\r[##########] 100% 00:00 done"
