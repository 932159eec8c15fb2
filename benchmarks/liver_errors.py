"""Where a cascade's liver goes wrong on a patient, and how far removing distant false liver could take it.

For each model and prepared dataset (e.g. the models of `train_real.py` runs on their test patients), the CT is
segmented as `evaluate` segments it and its liver (liver ∪ tumor) compared with the reference: false and missed
voxels, the false ones farther than `--far` mm from the reference liver (another organ taken for liver, such as the
heart or the stomach) and how many of those lie above the reference liver's top slice (the heart, in a CT that shows
it), and the liver Dice if every distant false voxel were removed. That last figure is an oracle (it uses the
reference): no post-processing rule that removes distant false liver can score higher; what remains is the liver's
boundary and what the liver stage missed.

Usage (from the repository root):
    .venv/bin/python benchmarks/liver_errors.py --pair MODEL DATASET [--pair ...] [--labels LABELS DATASET ...]
        [--far 10]
``--labels`` scores a stored label map instead (e.g. the pretrained ceiling's, `ceiling_pyliverlesionseg.py`)
against the one case of DATASET, on the same grid. Prints one JSON line per model or label map and case (mL).
Nothing is written.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from LiverResUNetLib.datasets.cases import Case
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.evaluation.metrics import overlap_metrics
from LiverResUNetLib.inference.cascade import within
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.volume import voxel_volume_ml


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("MODEL", "DATASET"),
                        type=Path, help="a model file and a prepared dataset it segments (repeatable)")
    parser.add_argument("--labels", nargs=2, action="append", default=[], metavar=("LABELS", "DATASET"),
                        type=Path, help="a stored label map and the prepared dataset of its one case (repeatable)")
    parser.add_argument("--far", type=float, default=10.0,
                        help="false liver farther than this (mm) from the reference liver counts as distant")
    return parser.parse_args()


def dice(found: np.ndarray, reference: np.ndarray) -> float | None:
    true = int(np.count_nonzero(found & reference))
    false, missed = int(np.count_nonzero(found)) - true, int(np.count_nonzero(reference)) - true
    return overlap_metrics(true, false, missed, 0)["dice"]


def liver_errors(found: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...], far_mm: float) -> dict:
    """The breakdown above for boolean liver masks ``[k, j, i]`` (``k`` toward the head) with ``spacing``
    ``(di, dj, dk)``."""
    false, missed = found & ~reference, reference & ~found
    distant = false & ~within(reference, false, spacing, far_mm)
    top = int(np.flatnonzero(reference.any(axis=(1, 2)))[-1])
    millilitres = voxel_volume_ml(spacing)
    return {"liver_dice": dice(found, reference), "reference_ml": float(reference.sum()) * millilitres,
            "false_ml": float(false.sum()) * millilitres, "missed_ml": float(missed.sum()) * millilitres,
            "distant_false_ml": float(distant.sum()) * millilitres,
            "distant_false_above_top_ml": float(distant[top + 1:].sum()) * millilitres,
            "liver_dice_without_distant_false": dice(found & ~distant, reference)}


def main() -> None:
    args = parse_arguments()
    if not args.pair and not args.labels:
        raise SystemExit("nothing to score: give --pair MODEL DATASET or --labels LABELS DATASET")
    for model_path, dataset in args.pair:
        model = load_model(model_path)
        for source in discover_cases(dataset):
            case = source.load()
            report(model_path, case, predict_volume(case.image, model, device="cpu").array, args.far)
    for labels_path, dataset in args.labels:
        cases = discover_cases(dataset)
        if len(cases) != 1:
            raise SystemExit(f"{dataset}: holds {len(cases)} cases; --labels needs a dataset of one")
        case = cases[0].load()
        labels = read_image(labels_path)
        if not labels.same_grid(case.label):
            raise SystemExit(f"{labels_path}: grid (shape {labels.shape}, voxel-to-patient mapping) is not the grid "
                             f"of {case.case_id} (shape {case.label.shape})")
        report(labels_path, case, labels.array, args.far)


def report(source: Path, case: Case, labels: np.ndarray, far_mm: float) -> None:
    """One JSON line: ``labels`` (found by or stored at ``source``) against ``case``'s reference."""
    if not (case.label.array > 0).any():
        raise SystemExit(f"{case.case_id} has no reference liver to compare with")
    row = liver_errors(labels > 0, case.label.array > 0, case.image.spacing, far_mm)
    print(json.dumps({"source": str(source), "case": case.case_id, "far_mm": far_mm,
                      **{key: None if value is None else round(value, 4) for key, value in row.items()}}),
          flush=True)


if __name__ == "__main__":
    main()
