"""Score a trained model on a dataset and write the evaluation report.

Every case of DATA (a prepared dataset, or a raw 3D-IRCADb-01 / LiTS / MSD folder) is segmented with MODEL and
compared with its reference labels: liver and tumor Dice, IoU, accuracy, sensitivity, specificity, precision
and HD95 per case, mean ± sd over cases and pooled over all voxels; lesion-wise detection; confusion matrices.

REPORT receives report.json, cases.csv, lesions.csv, figures/*.png and report.html (one self-contained page).
It is written all at once: an interrupted run leaves no half report. The summary table is printed on standard
output and its last line is the path of report.html; progress goes to standard error.

example:
  python -m LiverResUNetLib evaluate --model run/model.pth --data dataset --out run/report
"""

import argparse
from pathlib import Path

from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "score a model on a dataset: JSON, CSV and HTML report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="MODEL", required=True, type=Path,
                        help="model file written by 'train' (weights + card)")
    parser.add_argument("--data", required=True, type=Path, metavar="DATASET|RAW",
                        help="prepared dataset folder (dataset.json) or a raw 3D-IRCADb-01, LiTS or MSD Task03 folder")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT",
                        help="report folder to create; an older evaluation report there is replaced")
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (cuda > mps > cpu; default auto)")
    parser.add_argument("--cases", nargs="+", metavar="ID",
                        help="evaluate only these case ids (e.g. 3Dircadb1.17); default: every case of DATA")


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.evaluation.model_evaluation import evaluate_model
    from LiverResUNetLib.evaluation.report import REPORT_HTML, summary_lines

    with ProgressReporter() as progress:
        report = evaluate_model(args.model, args.data, args.out, progress=progress, device=args.device,
                                case_ids=args.cases)
    for line in summary_lines(report["summary"]):
        print(line)
    trained_on = report["split_overlap"]["training"]
    if trained_on:
        print(f"WARNING: {len(trained_on)} evaluated case(s) were training cases: {', '.join(trained_on)}")
    print(Path(args.out).resolve() / REPORT_HTML)
    return 0
