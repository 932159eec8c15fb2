"""Train on phantom patients for at most 5 CPU minutes, then score held-out phantom patients.

The "Done when" of the trainer: liver Dice >= 0.95 and tumor Dice >= 0.75 on patients the model never saw.
Everything runs through the real commands, as a user would chain them:
  1. `phantom`-style cohorts in the 3D-IRCADb-01 layout (DICOM): training patients 1..N and held-out test
     patients N+1..N+M of the same seeded cohort (different anatomy, tumors and scenarios);
  2. `prepare` for each cohort;
  3. `train` on the training cohort (patient-wise split into train / validation) with --max-minutes;
  4. `evaluate` the best model on the held-out cohort (per-case and global Dice, lesion detection, HTML report).
The wall time of the whole `train` command (start-up, slice preparation, training and validation) is the
figure compared with the 5-minute budget.

Usage (from the repository root; writes benchmarks/output/train_phantoms/):
    .venv/bin/python benchmarks/train_phantoms.py [--minutes 4.5] [--size 256] [--train 12] [--test 24]
Exit status 1 when a target is missed.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "output" / "train_phantoms"
BUDGET_MINUTES = 5.0
TARGETS = {"liver": 0.95, "tumor": 0.75}
# The training options: a few CPU minutes on phantoms (the file says what it changes from the defaults, and why).
CONFIG = REPO / "LiverResUNetTrainer" / "Resources" / "phantom_cpu.yaml"


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.5,
                        help="--max-minutes of `train` (its whole wall time must stay under 5 minutes)")
    parser.add_argument("--size", type=int, default=256, help="in-plane matrix of the phantom CTs (default 256)")
    parser.add_argument("--train", type=int, default=12, help="training patients (split into train / validation)")
    parser.add_argument("--test", type=int, default=24,
                        help="held-out test patients (24: a per-case mean over a handful of tumor patients "
                             "swings by 0.1 with which patients they are)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (the training seed is 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    return parser.parse_args()


def command(*arguments):
    """Run ``python -m LiverResUNetLib ...`` with its progress on our stderr; returns (stdout, seconds)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", *map(str, arguments)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, check=True)
    return result.stdout, time.monotonic() - started


def make_cohort(name, numbers, size, seed):
    """Write phantom patients ``numbers`` in the 3D-IRCADb-01 layout and `prepare` them; returns the dataset.

    A cohort already prepared with the same parameters by an earlier run is reused.
    """
    from LiverResUNetLib.phantom.ircadb_writer import write_cohort

    dataset, stamp = OUTPUT / name / "dataset", OUTPUT / name / "cohort.json"
    parameters = json.dumps({"numbers": numbers, "size": size, "seed": seed})
    if (dataset / "dataset.json").is_file() and stamp.is_file() and stamp.read_text() == parameters:
        return dataset
    raw = write_cohort(OUTPUT / name / "raw", numbers, size=size, seed=seed)
    command("prepare", "--data", raw, "--out", dataset)
    stamp.write_text(parameters)
    return dataset


def main():
    args = parse_arguments()
    train_numbers = list(range(1, args.train + 1))
    test_numbers = list(range(args.train + 1, args.train + args.test + 1))
    print(f"phantom cohorts at {args.size} px: training patients {train_numbers}, held-out {test_numbers}",
          file=sys.stderr)
    train_data = make_cohort("train", train_numbers, args.size, args.seed)
    test_data = make_cohort("test", test_numbers, args.size, args.seed)

    run = OUTPUT / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    training_command = ["train", "--data", train_data, "--out", run, "--max-minutes", args.minutes,
                        "--threads", args.threads, "--device", "cpu", "--config", CONFIG]
    printed, train_seconds = command(*training_command)
    model = Path(printed.strip().splitlines()[-1])

    report_folder = OUTPUT / "report"
    command("evaluate", "--model", model, "--data", test_data, "--out", report_folder)
    report = json.loads((report_folder / "report.json").read_text())
    card = report["model"]["card"]
    results = summarise(report, card, train_seconds, args, training_command)
    (OUTPUT / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"HTML report: {report_folder / 'report.html'}", file=sys.stderr)
    passed = results["train_minutes"] <= BUDGET_MINUTES and all(
        (results["per_case_mean_dice"][name] or 0) >= target for name, target in TARGETS.items())
    return 0 if passed else 1


def summarise(report, card, train_seconds, args, training_command):
    """The benchmark's figures: time, validation Dice, held-out per-case and global Dice, per case."""
    summary, training = report["summary"], card["training"]
    cases = {case["case_id"]: {"liver_dice": case["liver"]["dice"],
                               "tumor_dice": None if case["tumor_free"] else case["tumor"]["dice"],
                               "tumor_free": case["tumor_free"]}
             for case in report["cases"]}
    return {
        "command": "python -m LiverResUNetLib " + " ".join(map(str, training_command)),
        "machine": f"{args.threads} CPU threads",
        "train_minutes": round(train_seconds / 60, 2),
        "epochs": training["epochs"],
        "steps": sum(row["steps"] for row in training["history"]),
        "split": training["split"],
        "validation": card["metrics"],
        "held_out_cases": cases,
        "per_case_mean_dice": {name: summary["per_case"][name]["dice"]["mean"] for name in ("liver", "tumor")},
        "per_case_sd_dice": {name: summary["per_case"][name]["dice"]["sd"] for name in ("liver", "tumor")},
        "global_dice": {name: summary["global"][name]["dice"] for name in ("liver", "tumor")},
        "lesions": {key: summary["lesions"][key] for key in ("reference_lesions", "detected", "missed",
                                                             "false_positive", "detection_rate")},
        "targets": TARGETS,
    }


if __name__ == "__main__":
    sys.exit(main())
