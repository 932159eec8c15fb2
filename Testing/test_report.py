"""The report files: JSON, CSV, self-contained HTML with real PNG figures, split statement and warnings."""

import base64
import csv
import json
import re

import numpy as np
import pytest

from LiverResUNetLib.evaluation.figures import select_slices, slice_scores
from LiverResUNetLib.evaluation.metrics import case_metrics, summarise
from LiverResUNetLib.evaluation.report import FIGURES, split_overlap, summary_lines, write_case_figures, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPACING = (0.8, 0.8, 2.5)
HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "val_liver_dice": 0.5 + 0.1 * e, "val_tumor_dice": None if e == 1
            else 0.2 * e, "lr": 1e-3 / e} for e in range(1, 5)]
SPLIT = {"method": "patient-wise random", "train": ["p.1", "p.2"], "val": ["p.3"], "folds": None, "seed": 7}


def _phantom(tumor=True, shift=0):
    """A small CT with a bright ellipsoidal liver, its reference labels and a prediction shifted by ``shift``."""
    k, j, i = np.mgrid[:6, :48, :48]
    liver = ((j - 24) / 14.0) ** 2 + ((i - 20) / 16.0) ** 2 + ((k - 2.5) / 3.0) ** 2 < 1
    reference = liver.astype(np.uint8)
    if tumor:
        reference[((j - 24) ** 2 + (i - 22) ** 2 < 16) & (k >= 2) & (k <= 3)] = 2
    prediction = np.roll(reference, shift, axis=2)
    ct = np.where(liver, 60, -80).astype(np.int16) + np.where(reference == 2, -40, 0).astype(np.int16)
    return ct, reference, prediction


def _case(folder, case_id, tumor=True, shift=0, false_positive=False):
    ct, reference, prediction = _phantom(tumor, shift)
    if false_positive:
        prediction[3, 20:23, 30:33] = 2
    scores = case_metrics(prediction, reference, SPACING)
    figures = write_case_figures(folder / FIGURES, case_id, ct, reference, prediction, (-100, 400), (0.8, 0.8))
    return dict(scores, case_id=case_id, source=f"/data/{case_id}", figures=figures)


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    cases = [_case(folder, "p.1", shift=1), _case(folder, "p.4", shift=2), _case(folder, "p.5", tumor=False,
                                                                                 false_positive=True)]
    overlap = split_overlap(SPLIT, [case["case_id"] for case in cases])
    for case in cases:
        case["in_training_set"] = case["case_id"] in overlap["training"]
    card = {"training": {"history": HISTORY, "split": SPLIT}, "preprocessing": {"window": [-100, 400]}}
    report = write_report(folder, {"model": {"path": "/models/m.pt", "card": card}, "data": "/data",
                                   "cases": cases, "summary": summarise(cases), "split_overlap": overlap,
                                   "created": "2025-01-01T00:00:00", "software": "LiverResUNet test"})
    return folder, report


def test_report_files_exist_and_json_round_trips(report_folder):
    folder, report = report_folder
    for name in ("report.json", "cases.csv", "lesions.csv", "report.html", "figures/training_curves.png",
                 "figures/confusion_matrix.png", "figures/p.1_best_slice.png", "figures/p.5_worst_slice.png"):
        assert (folder / name).is_file(), name
    written = json.loads((folder / "report.json").read_text())
    assert written["summary"]["n_cases"] == 3
    assert written["split_overlap"]["training"] == ["p.1"]
    assert written["split_overlap"]["held_out"] == ["p.4", "p.5"]
    assert written["figures"]["training_curves"] == "figures/training_curves.png"
    assert written == json.loads(json.dumps(report))
    for png in (folder / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_csv_rows_leave_undefined_metrics_blank(report_folder):
    folder, _ = report_folder
    with open(folder / "cases.csv", newline="") as handle:
        rows = {row["case_id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"p.1", "p.4", "p.5"}
    assert rows["p.5"]["tumor_free"] == "True" and rows["p.5"]["tumor_dice"] == ""
    assert float(rows["p.1"]["tumor_dice"]) > float(rows["p.4"]["tumor_dice"])
    assert rows["p.1"]["in_training_set"] == "True"
    with open(folder / "lesions.csv", newline="") as handle:
        lesions = list(csv.DictReader(handle))
    false_positive = [row for row in lesions if row["case_id"] == "p.5"]
    assert len(false_positive) == 1 and false_positive[0]["false_positive"] == "True"
    assert float(false_positive[0]["volume_ml"]) == pytest.approx(9 * 0.8 * 0.8 * 2.5 / 1000)


def test_html_is_self_contained_states_the_split_and_warns_about_training_cases(report_folder):
    folder, _ = report_folder
    page = (folder / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 + 2 * 3
    assert all(base64.b64decode(data)[:8] == PNG_SIGNATURE for data in images)
    assert not re.search(r'src="(?!data:)', page)
    assert re.search(r"<strong>WARNING: 1 evaluated case\(s\) were in this model's TRAINING set \(p\.1\)", page)
    assert "patient-wise random" in page and "seed 7" in page
    assert "tumor-free: 9 false-positive voxels" in page


def test_no_warning_when_every_case_is_held_out(tmp_path):
    case = _case(tmp_path, "new.1", shift=1)
    card = {"training": {"history": [], "split": SPLIT}, "preprocessing": {"window": [-100, 400]}}
    report = write_report(tmp_path, {"model": {"path": "m.pt", "card": card}, "data": "d", "cases": [case],
                                     "summary": summarise([case]), "split_overlap": split_overlap(SPLIT, ["new.1"])})
    page = (tmp_path / "report.html").read_text()
    assert "WARNING" not in page and "no training curves" in page
    assert report["figures"]["training_curves"] is None


def test_unknown_split_is_said_plainly(tmp_path):
    case = _case(tmp_path, "x", shift=0)
    write_report(tmp_path, {"model": {"path": "m.pt", "card": {}}, "data": "d", "cases": [case],
                            "summary": summarise([case]), "split_overlap": split_overlap(None, ["x"])})
    assert "does not record how its data were split" in (tmp_path / "report.html").read_text()


def test_best_and_worst_slices_follow_the_per_slice_score():
    _, reference, prediction = _phantom(tumor=True, shift=0)
    prediction[0] = 0                 # a slice with reference liver and nothing predicted: score 0
    scores = slice_scores(prediction, reference)
    chosen = select_slices(prediction, reference)
    assert chosen["worst"] == (0, 0.0)
    assert chosen["best"][1] == pytest.approx(1.0) and chosen["best"][0] in (1, 2, 3, 4)
    assert scores[chosen["best"][0]] == max(scores.values())


def test_summary_lines_show_mean_sd_n_and_tumor_free_cases(report_folder):
    _, report = report_folder
    text = "\n".join(summary_lines(report["summary"]))
    assert re.search(r"tumor\s+Dice\s+\d\.\d{3} ± \d\.\d{3} \(n=2\)", text)
    assert "tumor-free cases: p.5" in text
