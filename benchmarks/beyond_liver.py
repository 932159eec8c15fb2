"""How far a cascade's tumor stage should follow a tumor beyond the liver stage's liver (`tumor_stage.beyond_liver_mm`).

A tumor stage trained to follow tumors beyond the liver it is given (a liver stage may take a large dark tumor for
background) also follows what is dark beside the liver, such as the stomach. For each model and dataset (e.g. the
models of `train_real.py` runs, on their test and their training patient), the same networks segment the CT with
each candidate reach written into the card (`none`: as far as the tumor reaches), scored as `evaluate` scores them.
Paired: only the rule differs.

Usage (from the repository root):
    .venv/bin/python benchmarks/beyond_liver.py --pair MODEL DATASET [--pair MODEL DATASET ...] [--reach none 10 20]
Prints one JSON object: per pair and reach the liver and tumor Dice, and per reach the tumor Dice pooled over the
pairs. Nothing is written.
"""

import argparse
import dataclasses
import json
from pathlib import Path

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.evaluation.metrics import case_metrics, summarise
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import TUMOR_STAGE, LoadedModel, load_model


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", required=True, metavar=("MODEL", "DATASET"),
                        type=Path, help="a cascade's model file and a prepared dataset it segments (repeatable)")
    parser.add_argument("--reach", nargs="+", default=["none", "20"],
                        help="candidate reaches in mm beyond the liver stage's liver; none: unlimited")
    return parser.parse_args()


def with_reach(model: LoadedModel, reach: str) -> LoadedModel:
    """``model`` whose card follows tumors beyond the liver up to ``reach`` mm (``none``: as far as they reach)."""
    stage = {key: value for key, value in model.card[TUMOR_STAGE].items() if key != "beyond_liver_mm"}
    if reach != "none":
        stage["beyond_liver_mm"] = float(reach)
    return dataclasses.replace(model, card={**model.card, TUMOR_STAGE: stage})


def main() -> None:
    args = parse_arguments()
    rows, scored = [], {reach: [] for reach in args.reach}
    for model_path, dataset in args.pair:
        model = load_model(model_path)
        if not model.card[TUMOR_STAGE].get("tumors_beyond_liver"):
            raise SystemExit(f"{model_path}: its tumor stage does not follow tumors beyond the liver")
        for source in discover_cases(dataset):
            case = source.load()
            row = {"model": str(model_path), "case": case.case_id}
            for reach in args.reach:
                labels = predict_volume(case.image, with_reach(model, reach), device="cpu").array
                scores = case_metrics(labels, case.label.array, case.image.spacing)
                scored[reach].append(scores)
                row[reach] = {"liver_dice": scores["liver"]["dice"], "tumor_dice": scores["tumor"]["dice"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    pooled = {reach: summarise(cases)["global"]["tumor"]["dice"] for reach, cases in scored.items()}
    print(json.dumps({"pairs": rows, "tumor_dice_pooled": pooled}, indent=2))


if __name__ == "__main__":
    main()
