"""Which minimum lesion size (and tumor-probability filter) keeps the lesions a radiologist would count.

For each model and its test patient (e.g. the two models of a `train_real.py` run, each on the patient it did not
see), the CT is segmented once with every post-processing step but the size rule, then each candidate minimum
size (mm3) is applied (``postprocess`` with only ``min_tumor_mm3``: tumor components below it become liver) and
scored as `evaluate` scores it: lesion precision and recall, tumor Dice, pooled over the pairs.

Usage (from the repository root):
    .venv/bin/python benchmarks/lesion_filter.py --pair MODEL DATASET [--pair MODEL DATASET ...]
        [--sizes 0 10 50 100 200 500 1000]
Prints one JSON object: per size, the pooled figures. Nothing is written.
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.evaluation.metrics import case_metrics, summarise
from LiverResUNetLib.inference.postprocessing import PostprocessOptions, postprocess
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import load_model

SIZE_RULE_ONLY = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", required=True, metavar=("MODEL", "DATASET"),
                        type=Path, help="a model file and the prepared dataset it is tested on (repeatable)")
    parser.add_argument("--sizes", nargs="+", type=float, default=[0, 10, 50, 100, 200, 500, 1000],
                        help="candidate minimum lesion sizes in mm3")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    predictions = []
    for model_path, dataset in args.pair:
        model = load_model(model_path)
        for source in discover_cases(dataset):
            case = source.load()
            labels = predict_volume(case.image, model, device="cpu",
                                    postprocess=replace(PostprocessOptions(), min_tumor_mm3=0.0)).array
            predictions.append((labels, case.label.array, case.image.spacing))
    figures = {}
    for size in args.sizes:
        options = replace(SIZE_RULE_ONLY, min_tumor_mm3=size)
        pooled = summarise([case_metrics(postprocess(labels, spacing, options), reference, spacing)
                            for labels, reference, spacing in predictions])
        lesions = pooled["lesions"]
        figures[f"{size:g}"] = {"tumor_dice_pooled": pooled["global"]["tumor"]["dice"],
                                **{key: lesions[key] for key in ("precision", "recall", "detected",
                                                                 "reference_lesions", "false_positive")}}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
