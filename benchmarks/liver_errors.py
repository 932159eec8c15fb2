"""Where a cascade's liver goes wrong on a patient, and how far removing distant false liver could take it.

For each model and prepared dataset (e.g. the models of `train_real.py` runs on their test patients), the CT is
segmented as `evaluate` segments it and its liver (liver ∪ tumor) compared with the reference: false and missed
voxels, the false ones farther than `--far` mm from the reference liver (another organ taken for liver, such as the
heart or the stomach) and how many of those lie above the reference liver's top slice (the heart, in a CT that shows
it), and the liver Dice if every distant false voxel were removed. That last figure is an oracle (it uses the
reference): no post-processing rule that removes distant false liver can score higher; what remains is the liver's
boundary and what the liver stage missed.

Usage (from the repository root):
    .venv/bin/python benchmarks/liver_errors.py --pair MODEL DATASET [--pair MODEL DATASET ...] [--far 10]
Prints one JSON line per model and case (voxel counts and mL). Nothing is written.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.evaluation.metrics import overlap_metrics
from LiverResUNetLib.inference.cascade import within
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.volume import voxel_volume_ml


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", required=True, metavar=("MODEL", "DATASET"),
                        type=Path, help="a model file and a prepared dataset it segments (repeatable)")
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
    for model_path, dataset in args.pair:
        model = load_model(model_path)
        for source in discover_cases(dataset):
            case = source.load()
            if not (case.label.array > 0).any():
                raise SystemExit(f"{dataset}: {case.case_id} has no reference liver to compare with")
            labels = predict_volume(case.image, model, device="cpu").array
            row = liver_errors(labels > 0, case.label.array > 0, case.image.spacing, args.far)
            print(json.dumps({"model": str(model_path), "case": case.case_id, "far_mm": args.far,
                              **{key: None if value is None else round(value, 4) for key, value in row.items()}}),
                  flush=True)


if __name__ == "__main__":
    main()
