"""Real CT: leave one patient out over the two real 3D-IRCADb-01 patients, in both directions.

Accuracy is judged on real CT. This trains on one real patient and tests on the other (3Dircadb1.1 -> 1.7 and
1.7 -> 1.1), each with the default configuration (or --config / --set for an experiment), through the real
commands a user chains:
  1. `prepare` each patient of ../shared/data/3Dircadb1 (reused by later runs);
  2. `train --val-fraction 0 --max-minutes M --synthetic-cts LABEL_MAPS` on one patient (nnU-Net's fold "all": the
     last model is kept) and synthetic CTs from the 16 label maps without CT of ../shared/data (since 2026-12-07;
     --label-maps none: the real CT alone), with --phantoms N that patient plus N phantom patients (`phantom`, then
     `prepare`);
  3. `evaluate` that model on the other patient, and on the patient it was trained on ("fit": whether the
     network learnt real CT at all, apart from whether it generalises); the liver is also scored outside the
     other patient's reference tumors (whether the liver is found where no tumor confuses it).
Per direction and pooled over both: Dice, IoU, sensitivity, specificity of liver and tumor, lesion detection.
Pooled = the voxel counts of both test patients summed (metrics.summarise over the two evaluated cases).

Targets (issue 10): liver Dice >= 0.93 in both directions, tumor Dice >= 0.50 pooled over both. Each figure is
set beside its target (by how much it is missed) and beside the pretrained ceiling's on the same test patient, read
from benchmarks/output/ceiling/results.json where `ceiling_pyliverlesionseg.py` has made it (its training data: far
more patients than two, these two probably among them; a ceiling, not a like-for-like figure).
Nothing derived from the real data leaves benchmarks/output/ (git-ignored): the licence forbids it.

Usage (from the repository root; about 2 x (M + 2) minutes on 2 CPU cores):
    .venv/bin/python benchmarks/train_real.py [--minutes 20] [--tag NAME] [--config YAML] [--set KEY=VALUE ...]
        [--phantoms N] [--label-maps DIR|none]
Writes benchmarks/output/train_real/<tag>/results.json; exit status 1 when a target is missed.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "3Dircadb1"
LABEL_MAPS = REPO.parent / "shared" / "data" / "3Dircadb1-masks-only"
OUTPUT = REPO / "benchmarks" / "output" / "train_real"
CEILING_RESULTS = REPO / "benchmarks" / "output" / "ceiling" / "results.json"
PATIENTS = ("3Dircadb1.1", "3Dircadb1.7")
LIVER_TARGET, POOLED_TUMOR_TARGET = 0.93, 0.50
REPORTED = ("dice", "iou", "sensitivity", "specificity")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="--max-minutes of each `train` (default 20)")
    parser.add_argument("--tag", default="default", help="name of this run's folder under the output")
    parser.add_argument("--config", type=Path, help="training configuration file (default: the defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="passed to `train --set` (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--data", type=Path, default=REAL_DATA, help="folder holding the two patients")
    parser.add_argument("--label-maps", default=str(LABEL_MAPS), metavar="DIR",
                        help="label maps without CT, passed to train as --synthetic-cts (default: the 16 patients of "
                             "../shared/data/3Dircadb1-masks-only; none: the real CT alone)")
    parser.add_argument("--phantoms", type=int, default=0, metavar="N",
                        help="phantom patients (512 x 512) added to each training set (default 0: real CT only)")
    return parser.parse_args()


def command(*arguments: object) -> tuple[str, float]:
    """Run ``python -m LiverResUNetLib ...`` with its progress on our stderr; returns (stdout, seconds)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", *map(str, arguments)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, check=True)
    return result.stdout, time.monotonic() - started


def prepared(patient: str, data: Path) -> Path:
    """The prepared dataset of one real patient, made once."""
    dataset = OUTPUT / "prepared" / patient
    if not (dataset / "dataset.json").is_file():
        command("prepare", "--data", data / patient, "--out", dataset)
    return dataset


def phantom_cohort(patients: int) -> Path:
    """A prepared cohort of ``patients`` phantom patients at the real matrix (512 x 512), made once.

    Numbered from 101 (3Dircadb1.101, ...): case ids must not clash with the real patients'."""
    cohort = OUTPUT / "phantoms" / str(patients)
    if not (cohort / "prepared" / "dataset.json").is_file():
        shutil.rmtree(cohort, ignore_errors=True)
        command("phantom", "--out", cohort / "dicom", "--patients", patients, "--size", 512,
                "--first", 101)
        command("prepare", "--data", cohort / "dicom", "--out", cohort / "prepared")
    return cohort / "prepared"


def training_set(patient: str, args: argparse.Namespace, folder: Path) -> Path:
    """The real patient's prepared dataset, or with --phantoms one listing it and the phantom cases (by path)."""
    real = prepared(patient, args.data)
    if not args.phantoms:
        return real
    phantoms = phantom_cohort(args.phantoms)
    cases = []
    for dataset in (real, phantoms):
        description = json.loads((dataset / "dataset.json").read_text())
        cases += [{**case, "image": str(dataset / case["image"]), "label": str(dataset / case["label"])}
                  for case in description["cases"]]
    mixed = folder / f"{patient}_with_{args.phantoms}_phantoms"
    mixed.mkdir(parents=True, exist_ok=True)
    (mixed / "dataset.json").write_text(json.dumps({
        "name": mixed.name, "labels": {"0": "background", "1": "liver", "2": "liver tumor"}, "cases": cases},
        indent=2))
    return mixed


def scores(structure: dict) -> dict:
    return {metric: structure.get(metric) for metric in REPORTED}


def liver_outside_tumors(case: dict) -> tuple[float | None, float]:
    """From an evaluated case's confusion matrix (rows: reference, columns: prediction; 0 background, 1 liver,
    2 tumor): the liver Dice (liver and tumor labels together) over the voxels outside the reference tumors,
    and the reference tumors' share of the liver."""
    from LiverResUNetLib.evaluation.metrics import overlap_metrics

    background, liver, tumor = case["confusion_matrix"]
    tp, fp, fn = liver[1] + liver[2], sum(background) - background[0], liver[0]
    return overlap_metrics(tp, fp, fn, background[0])["dice"], sum(tumor) / (sum(liver) + sum(tumor))


def direction(train: str, test: str, args: argparse.Namespace, folder: Path) -> tuple[dict, dict]:
    """Train on ``train``, evaluate on ``test``; the figures of this direction and the evaluated case."""
    run = folder / f"{train}_to_{test}"
    shutil.rmtree(run, ignore_errors=True)
    training = ["train", "--data", training_set(train, args, folder), "--out", run / "run", "--val-fraction", "0",
                "--max-minutes", args.minutes, "--threads", args.threads, "--device", "cpu"]
    if args.label_maps != "none":
        training += ["--synthetic-cts", args.label_maps]
    if args.config:
        training += ["--config", args.config]
    for option in args.set:
        training += ["--set", option]
    printed, seconds = command(*training)
    model = Path(printed.strip().splitlines()[-1])
    command("evaluate", "--model", model, "--data", prepared(test, args.data), "--out", run / "report")
    command("evaluate", "--model", model, "--data", prepared(train, args.data), "--out", run / "fit")
    report = json.loads((run / "report" / "report.json").read_text())
    case = report["cases"][0]
    fit = json.loads((run / "fit" / "report.json").read_text())["cases"][0]
    liver_dice_outside_tumors, tumor_share = liver_outside_tumors(case)
    card = report["model"]["card"]
    history = card["training"]["history"]
    tumor_history = (card.get("tumor_stage") or {}).get("training", {}).get("history", [])
    return {
        "train": train, "test": test,
        "command": "python -m LiverResUNetLib " + " ".join(map(str, training)),
        "train_minutes": round(seconds / 60, 2),
        "epochs": len(history), "steps": sum(row["steps"] for row in history),
        "tumor_stage_steps": sum(row["steps"] for row in tumor_history) if tumor_history else None,
        "liver": scores(case["liver"]), "tumor": scores(case["tumor"]),
        "lesions": {key: case["lesions"][key] for key in ("reference_lesions", "detected", "missed",
                                                          "false_positive", "precision", "recall")},
        "report": str(run / "report" / "report.html"),
        "fit": {"liver_dice": fit["liver"]["dice"], "tumor_dice": fit["tumor"]["dice"]},
        "liver_dice_outside_tumors": liver_dice_outside_tumors,
        "tumor_share_of_liver": tumor_share,
    }, case


def against_targets(results: list[dict], pooled_tumor_dice: float | None, ceiling_path: Path) -> dict:
    """Each target's figure, by how much it is missed (0 when met) and the pretrained ceiling's figure on the same
    test patient(s), or None where the ceiling has not been run (``ceiling_pyliverlesionseg.py``)."""
    ceiling = json.loads(ceiling_path.read_text()) if ceiling_path.is_file() else None
    ceiling_cases = {case["case_id"]: case for case in ceiling["cases"]} if ceiling else {}

    def row(figure: str, target: float, value: float | None, ceiling_value: float | None) -> dict:
        return {"figure": figure, "target": target, "value": value,
                "missed_by": max(target - (value or 0.0), 0.0), "ceiling": ceiling_value}

    rows = [row(f"liver Dice {run['train']} -> {run['test']}", LIVER_TARGET, run["liver"]["dice"],
                ceiling_cases[run["test"]]["liver"]["dice"] if run["test"] in ceiling_cases else None)
            for run in results]
    rows.append(row("tumor Dice pooled", POOLED_TUMOR_TARGET, pooled_tumor_dice,
                    ceiling["summary"]["global"]["tumor"]["dice"] if ceiling else None))
    source = {"results": str(ceiling_path), "created": ceiling["created"], "training_data": ceiling["training_data"]} \
        if ceiling else f"not run: no {ceiling_path} (bash benchmarks/ceiling_env.sh; .venv/bin/python " \
                        "benchmarks/ceiling_pyliverlesionseg.py)"
    return {"rows": rows, "ceiling": source}


def comparison_table(comparison: dict) -> str:
    """The rows of :func:`against_targets` as lines a reader scans: figure, target, by how much, the ceiling."""
    lines = []
    for row in comparison["rows"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
        verdict = "met" if row["missed_by"] == 0 else f"missed by {row['missed_by']:.3f}"
        ceiling = "not run" if row["ceiling"] is None else f"{row['ceiling']:.3f}"
        lines.append(f"{row['figure']}: {value} (target {row['target']:.2f}: {verdict}; pretrained ceiling {ceiling})")
    return "\n".join(lines)


def main() -> int:
    from LiverResUNetLib.evaluation.metrics import summarise

    args = parse_arguments()
    if args.label_maps != "none" and not Path(args.label_maps).is_dir():
        print(f"error: {args.label_maps}: no such folder of label maps (--label-maps none: real CT alone)",
              file=sys.stderr)
        return 2
    missing = [patient for patient in PATIENTS if not (args.data / patient).is_dir()]
    if missing:
        print(f"error: {args.data}: no {', '.join(missing)} (the real patients of ../shared/data)", file=sys.stderr)
        return 2
    folder = OUTPUT / args.tag
    folder.mkdir(parents=True, exist_ok=True)
    results, cases = [], []
    for train, test in (PATIENTS, PATIENTS[::-1]):
        figures, case = direction(train, test, args, folder)
        results.append(figures)
        cases.append(case)
        print(json.dumps(figures, indent=2), file=sys.stderr)
    pooled = summarise(cases)
    summary = {
        "tag": args.tag, "minutes": args.minutes, "config": str(args.config or "defaults"), "set": args.set,
        "phantoms": args.phantoms, "label_maps": args.label_maps,
        "directions": results,
        "pooled": {name: scores(pooled["global"][name]) for name in ("liver", "tumor")},
        "pooled_lesions": {key: pooled["lesions"][key] for key in ("reference_lesions", "detected", "missed",
                                                                   "false_positive", "detection_rate", "precision",
                                                                   "recall")},
        "targets": {"liver_dice_each_direction": LIVER_TARGET, "tumor_dice_pooled": POOLED_TUMOR_TARGET},
    }
    comparison = against_targets(results, summary["pooled"]["tumor"]["dice"], CEILING_RESULTS)
    summary["against_targets"] = comparison
    met = all(row["missed_by"] == 0 for row in comparison["rows"])
    summary["targets_met"] = met
    (folder / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(comparison_table(comparison), file=sys.stderr)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
