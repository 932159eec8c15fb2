"""Score a trained model on a dataset: segment every case, compare it with its reference, write the report.

:func:`evaluate_model` is what the ``evaluate`` command runs: liver and tumor Dice, IoU, accuracy, sensitivity,
specificity, precision and HD95 per case, mean ± sd over cases and pooled over all voxels; lesion-wise
detection; confusion matrices; figures. The report folder is written all at once: an interrupted run leaves
no half report.
"""

import datetime
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LiverResUNetLib import __version__
from LiverResUNetLib.atomic import atomic_directory
from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.datasets.cases import CaseSource
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.devices import pick_device
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.evaluation.metrics import case_metrics, summarise
from LiverResUNetLib.evaluation.report import FIGURES, split_overlap, write_case_figures, write_report
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.preprocessing.orientation import to_canonical
from LiverResUNetLib.volume import Volume


def _check_output_folder(out: str | Path) -> None:
    """Refuse to replace a folder that is not an evaluation report: the report folder is replaced as a whole."""
    out = Path(out)
    if out.is_file():
        raise input_error(out, "is a file; --out must name a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise input_error(out, "exists and is not an evaluation report; choose a new or empty folder")


def _select_cases(sources: list[CaseSource], case_ids: Sequence[str] | None,
                  data: str | Path) -> list[CaseSource]:
    if not case_ids:
        return sources
    by_id = {source.case_id: source for source in sources}
    unknown = [case_id for case_id in case_ids if case_id not in by_id]
    if unknown:
        raise input_error(data, f"no case {', '.join(unknown)} here; the cases are {', '.join(sorted(by_id))}")
    return [by_id[case_id] for case_id in case_ids]


def _display_arrays(image: Volume, reference: np.ndarray, prediction: np.ndarray
                    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[float, float]]:
    """CT and label arrays in canonical axial orientation [k, row, column] and the pixel size (row, column) mm."""
    canonical_image = to_canonical(image)
    arrays = (canonical_image.array, to_canonical(image.with_array(reference)).array,
              to_canonical(image.with_array(prediction)).array)
    row_mm, column_mm = canonical_image.spacing[1], canonical_image.spacing[0]
    return arrays, (row_mm, column_mm)


def _case_progress(progress: Progress | None, index: int, total: int, case_id: str) -> Progress:
    """``progress`` for case ``index`` of ``total``: 0..1 maps onto its share of the run, messages name the case."""
    if progress is None:
        return lambda fraction, message: None
    return lambda fraction, message: progress((index + fraction) / total, f"{case_id}: {message}")


def evaluate_model(model_path: str | Path, data: str | Path, out: str | Path, progress: Progress | None = None,
                   device: str = "auto", case_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Segment every case of ``data`` with the model, score it and write the report folder ``out``.

    Returns the report dict written to ``out/report.json``. ``progress(fraction, message)`` is called as cases
    are done; ``case_ids`` restricts the evaluation to those cases.
    """
    _check_output_folder(out)
    torch_device = pick_device(device)
    sources = _select_cases(discover_cases(data), case_ids, data)
    model = load_model(model_path, device=torch_device)
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
            prediction = predict_volume(case.image, model, device=torch_device,
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


def _format(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
