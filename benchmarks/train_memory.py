"""Peak anonymous memory of `train` on 3 and on 12 phantom patients: does it grow with the number of cases?

"Done when" of issue 10: `train` on 12 cases uses at most 3 MB more peak anonymous memory per extra case than
on 3. Anonymous memory is what the process allocates for itself (RssAnon: numpy and torch arrays, Python
objects); the memory-mapped slice store is file-backed page cache, shared between processes and given back
under pressure, so it is not counted. The figures are read from /proc every 10 ms over the `train` process
and its children (DataLoader workers) while it runs; VmHWM (peak resident memory, file-backed pages included)
of the `train` process is reported beside them. Linux only.

A forked DataLoader worker shares the training process's pages copy-on-write, and RssAnon counts them in
both, so the RssAnon sum counts those shared pages twice, by an amount that varies from run to run with what
the training process writes while the worker lives. The figure the target is judged on is therefore the
largest sum of Pss_Anon (/proc/PID/smaps_rollup: each shared anonymous page divided between the processes
that share it, so the sum is the anonymous memory the tree really holds); for one process it equals RssAnon.
The RssAnon sum is reported beside it. ``--workers 0`` measures the training process alone.

Both runs use the same command, the default configuration with a short schedule (the batches, the network,
validation on the held-out patients: everything that takes memory; only the number of steps is cut). Every
phantom patient has the same number of slices (``--slices``), so that the difference measures the number of
cases, not the size of the largest one (reading and preprocessing one case, and validating on it, take memory
in proportion to its slices).

Usage (from the repository root; writes benchmarks/output/train_memory/):
    .venv/bin/python benchmarks/train_memory.py [--size 256] [--slices 100] [--small 3] [--large 12] [--workers N]
Exit status 1 when the target is missed.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "output" / "train_memory"
TARGET_MB_PER_CASE = 3.0


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="in-plane matrix of the phantom CTs (default 256)")
    parser.add_argument("--slices", type=int, default=100, help="slices of every phantom patient (default 100)")
    parser.add_argument("--small", type=int, default=3, help="patients of the small cohort (default 3)")
    parser.add_argument("--large", type=int, default=12, help="patients of the large cohort (default 12)")
    parser.add_argument("--steps", type=int, default=10, help="training steps of the one epoch (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="runtime.workers of `train` (default: its own, up to 4 leaving a core to training)")
    return parser.parse_args()


def make_dataset(patients, size, slices):
    """A prepared phantom dataset of ``patients`` patients (reused when an earlier run wrote the same one)."""
    from LiverResUNetLib.datasets.prepare import prepare_dataset
    from LiverResUNetLib.phantom.ircadb_writer import write_cohort

    folder = OUTPUT / f"{patients}_patients_{size}px_{slices}_slices"
    if (folder / "dataset" / "dataset.json").is_file():
        return folder / "dataset"
    raw = write_cohort(folder / "raw", patients, size=size, seed=0, slices=slices)
    return prepare_dataset(raw, folder / "dataset")


def proc_kb(pid, file, field):
    """A ``kB`` field of /proc/PID/<file> (``status`` or ``smaps_rollup``); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def process_tree(pid):
    """``pid`` and every descendant still running."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            children = []
        pending += [int(child) for child in children]
    return found


def measured_train(dataset, out, args):
    """Run `train` once; returns its peak Pss_Anon and RssAnon over the process tree, its VmHWM (MB), seconds."""
    command = [sys.executable, "-m", "LiverResUNetLib", "train", "--data", str(dataset), "--out", str(out),
               "--epochs", "1", "--steps-per-epoch", str(args.steps), "--threads", str(args.threads),
               "--device", "cpu", *([] if args.workers is None else ["--set", f"runtime.workers={args.workers}"])]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peaks = {"pss_anon": 0, "anon": 0, "hwm": 0}

    def sample():
        while process.poll() is None:
            tree = process_tree(process.pid)
            peaks["pss_anon"] = max(peaks["pss_anon"], sum(proc_kb(pid, "smaps_rollup", "Pss_Anon") for pid in tree))
            peaks["anon"] = max(peaks["anon"], sum(proc_kb(pid, "status", "RssAnon") for pid in tree))
            peaks["hwm"] = max(peaks["hwm"], proc_kb(process.pid, "status", "VmHWM"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    printed, _ = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"train failed with exit status {process.returncode}: {' '.join(command)}")
    return {"peak_pss_anon_mb": round(peaks["pss_anon"] / 1024, 1),
            "peak_rss_anon_mb": round(peaks["anon"] / 1024, 1), "peak_vm_hwm_mb": round(peaks["hwm"] / 1024, 1),
            "seconds": round(time.monotonic() - started, 1), "model": printed.strip().splitlines()[-1],
            "command": "python -m LiverResUNetLib " + " ".join(command[3:])}


def main():
    args = parse_arguments()
    runs = {}
    for patients in (args.small, args.large):
        dataset = make_dataset(patients, args.size, args.slices)
        out = OUTPUT / f"run_{patients}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        runs[patients] = {"slices": sum(case["slices"] for case in
                                        json.loads((dataset / "dataset.json").read_text())["cases"]),
                          **measured_train(dataset, out, args)}
        print(f"{patients} patients: {runs[patients]}", file=sys.stderr)
    small, large = runs[args.small], runs[args.large]
    per_case = (large["peak_pss_anon_mb"] - small["peak_pss_anon_mb"]) / (args.large - args.small)
    rss_per_case = (large["peak_rss_anon_mb"] - small["peak_rss_anon_mb"]) / (args.large - args.small)
    results = {"runs": runs, "mb_per_extra_case": round(per_case, 2),
               "rss_anon_mb_per_extra_case": round(rss_per_case, 2), "target_mb_per_case": TARGET_MB_PER_CASE,
               "machine": f"{args.threads} CPU threads", "workers": args.workers}
    (OUTPUT / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0 if per_case <= TARGET_MB_PER_CASE else 1


if __name__ == "__main__":
    sys.exit(main())
