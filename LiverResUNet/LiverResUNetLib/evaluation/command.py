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
import datetime
import platform
from pathlib import Path

from LiverResUNetLib import __version__
from LiverResUNetLib.atomic import atomic_directory
from LiverResUNetLib.errors import input_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, metavar="MODEL",
                        help="model file written by 'train' (weights + card)")
    parser.add_argument("--data", required=True, type=Path, metavar="DATASET|RAW",
                        help="prepared dataset folder (dataset.json) or a raw 3D-IRCADb-01, LiTS or MSD Task03 folder")
    parser.add_argument("--out", required=True, type=Path, metavar="REPORT",
                        help="report folder to create; an older evaluation report there is replaced")
    parser.add_argument("--device", default="auto", help="cuda, mps, cpu or auto (cuda > mps > cpu; default auto)")
    parser.add_argument("--cases", nargs="+", metavar="ID",
                        help="evaluate only these case ids (e.g. 3Dircadb1.17); default: every case of DATA")


def _check_output_folder(out):
    """Refuse to replace a folder that is not an evaluation report: the report folder is replaced as a whole."""
    out = Path(out)
    if out.is_file():
        raise input_error(out, "is a file; --out must name a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise input_error(out, "exists and is not an evaluation report; choose a new or empty folder")


def _select_cases(sources, case_ids, data):
    if not case_ids:
        return sources
    by_id = {source.case_id: source for source in sources}
    unknown = [case_id for case_id in case_ids if case_id not in by_id]
    if unknown:
        raise input_error(data, f"no case {', '.join(unknown)} here; the cases are {', '.join(sorted(by_id))}")
    return [by_id[case_id] for case_id in case_ids]


def _display_arrays(image, reference, prediction):
    """CT and label arrays in canonical axial orientation [k, row, column] and the pixel size (row, column) mm."""
    from LiverResUNetLib.preprocessing.orientation import to_canonical

    canonical_image = to_canonical(image)
    arrays = [canonical_image.array] + [to_canonical(image.with_array(labels)).array
                                        for labels in (reference, prediction)]
    row_mm, column_mm = canonical_image.spacing[1], canonical_image.spacing[0]
    return arrays, (row_mm, column_mm)


def _case_progress(progress, index, total, case_id):
    """``progress`` for case ``index`` of ``total``: 0..1 maps onto its share of the run, messages name the case."""
    if progress is None:
        return lambda fraction, message: None
    return lambda fraction, message: progress((index + fraction) / total, f"{case_id}: {message}")


def evaluate_model(model_path, data, out, progress=None, device="auto", case_ids=None):
    """Segment every case of ``data`` with the model, score it and write the report folder ``out``.

    Returns the report dict written to ``out/report.json``. ``progress(fraction, message)`` is called as cases
    are done; ``case_ids`` restricts the evaluation to those cases.
    """
    import numpy as np
    import torch

    from LiverResUNetLib.datasets.cases import discover_cases
    from LiverResUNetLib.evaluation.metrics import case_metrics, summarise
    from LiverResUNetLib.evaluation.report import FIGURES, split_overlap, write_case_figures, write_report
    from LiverResUNetLib.inference.predictor import pick_device, predict_volume
    from LiverResUNetLib.model.model_file import load_model

    _check_output_folder(out)
    device = pick_device(device)
    sources = _select_cases(discover_cases(data), case_ids, data)
    model = load_model(model_path, device=device)
    card, window = model.card, model.preprocessing.window
    overlap = split_overlap((card.get("training") or {}).get("split"), [source.case_id for source in sources])
    cases = []
    with atomic_directory(out) as folder:
        for index, source in enumerate(sources):
            step = _case_progress(progress, index, len(sources), source.case_id)
            step(0.0, "loading")
            case = source.load()
            if not case.image.same_grid(case.label):
                raise input_error(source.source, "the label map is not on the image's voxel grid")
            prediction = predict_volume(case.image, model, device=device,
                                        progress=lambda fraction, message: step(0.9 * fraction, message)).array
            reference = np.asarray(case.label.array)
            scores = case_metrics(prediction, reference, case.image.spacing)
            arrays, pixel_spacing = _display_arrays(case.image, reference, prediction)
            figures = write_case_figures(folder / FIGURES, case.case_id, *arrays, window, pixel_spacing)
            cases.append(dict(scores, case_id=case.case_id, source=str(case.source), note=source.note,
                              figures=figures, in_training_set=case.case_id in overlap["training"]))
            step(1.0, f"liver Dice {_format(scores['liver']['dice'])}, "
                      f"tumor Dice {'tumor-free' if scores['tumor_free'] else _format(scores['tumor']['dice'])}")
        report = write_report(folder, {
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "software": f"LiverResUNet {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
                        f"Python {platform.python_version()}",
            "model": {"path": str(Path(model_path).resolve()), "card": card},
            "data": str(Path(data).resolve()),
            "split_overlap": overlap,
            "cases": cases,
            "summary": summarise(cases),
        })
    return report


def _format(value):
    return "undefined" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.cli import print_progress
    from LiverResUNetLib.evaluation.report import REPORT_HTML, summary_lines

    report = evaluate_model(args.model, args.data, args.out, progress=print_progress, device=args.device,
                            case_ids=args.cases)
    for line in summary_lines(report["summary"]):
        print(line)
    trained_on = report["split_overlap"]["training"]
    if trained_on:
        print(f"WARNING: {len(trained_on)} evaluated case(s) were training cases: {', '.join(trained_on)}")
    print(Path(args.out).resolve() / REPORT_HTML)
    return 0
