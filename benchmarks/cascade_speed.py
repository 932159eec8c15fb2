"""End-to-end ``segment`` time and peak memory of a trained model (a cascade, typically) on a real CT.

benchmarks/inference_speed.py times the network with random weights, where a cascade's liver stage finds no
liver and its tumor stage never runs; this one times what a user waits for with a trained model: ``segment``
of one CT (read, both stages, post-processing, segments, .seg.nrrd and table written), each run in a fresh
process, its peak resident memory read from the kernel's accounting of that process.

Usage (from the repository root; a model from ``train`` and a CT of 3D-IRCADb-01's size, e.g. a prepared case):
    .venv/bin/python benchmarks/cascade_speed.py --model RUN/model.pth --input CT [--runs 3]
Exit status 1 when the median run misses the CPU target (<= 10 s and <= 1.5 GB end to end).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS, TARGET_GB = 10.0, 1.5


def timed_segment(model: Path, ct: Path, output: Path) -> tuple[float, float]:
    """(wall seconds, peak resident GB) of one ``segment`` in a fresh process."""
    command = [sys.executable, "-m", "LiverResUNetLib", "segment", "--model", str(model), "--input", str(ct),
               "--output", str(output), "--device", "cpu"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"segment failed: {process.stderr.read().decode() if process.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024 ** 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model file from train (a cascade or not)")
    parser.add_argument("--input", type=Path, required=True, help="the CT: image file or DICOM folder")
    parser.add_argument("--runs", type=int, default=3, help="runs, each in a fresh process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = [timed_segment(args.model, args.input, Path(folder) / f"run{number}.seg.nrrd")
                for number in range(args.runs)]
    for number, (seconds, gigabytes) in enumerate(runs, start=1):
        print(f"run {number}: {seconds:.2f} s, peak {gigabytes:.2f} GB")
    seconds = statistics.median(run[0] for run in runs)
    gigabytes = statistics.median(run[1] for run in runs)
    met = seconds <= TARGET_SECONDS and gigabytes <= TARGET_GB
    print(f"median: {seconds:.2f} s, {gigabytes:.2f} GB: target (<= {TARGET_SECONDS:g} s, <= {TARGET_GB:g} GB) "
          f"{'met' if met else 'NOT MET'}; load average {os.getloadavg()[0]:.2f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
