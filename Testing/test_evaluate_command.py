"""The ``evaluate`` command end to end: a phantom cohort in the 3D-IRCADb-01 layout, a tiny real model file."""

import json
import subprocess
import sys

import numpy as np
import pytest

from LiverResUNetLib.cli import main
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.evaluation.model_evaluation import evaluate_model
from LiverResUNetLib.model.model_file import new_card, save_model
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.phantom.ircadb_writer import write_cohort
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

TRAIN_ID, HELD_OUT_ID = "3Dircadb1.1", "3Dircadb1.3"  # patient 3 is tumor-free in the phantom's scenarios
HISTORY = [{"epoch": 1, "train_loss": 1.2, "val_liver_dice": 0.3, "val_tumor_dice": 0.0, "lr": 1e-3},
           {"epoch": 2, "train_loss": 0.9, "val_liver_dice": 0.5, "val_tumor_dice": 0.1, "lr": 5e-4}]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("raw"), [1, 3], size=32, seed=3, slices=12)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    architecture = dict(default_architecture(), in_channels=1, base_width=4, depth=2, max_width=8)
    preprocessing = PreprocessingParams(input_size=32, context_slices=0)
    split = {"method": "patient-wise hold-out (test)", "train": [TRAIN_ID], "val": ["3Dircadb1.2"], "folds": None,
             "seed": 0}
    card = new_card(architecture, preprocessing, training={"history": HISTORY, "split": split})
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", build_network(architecture), card)


def test_evaluate_writes_the_report_and_prints_its_path_last(cohort, model_file, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model_file), "--data", str(cohort), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[-1] == str(out.resolve() / "report.html")
    assert any(line.startswith("liver ") and "Dice" in line for line in lines)
    assert f"WARNING: 1 evaluated case(s) were training cases: {TRAIN_ID}" in captured.out
    assert "%]" in captured.err and "%]" not in captured.out

    report = json.loads((out / "report.json").read_text())
    assert [case["case_id"] for case in report["cases"]] == [TRAIN_ID, HELD_OUT_ID]
    assert report["split_overlap"]["training"] == [TRAIN_ID]
    assert report["split_overlap"]["held_out"] == [HELD_OUT_ID]
    assert report["model"]["card"]["training"]["history"] == HISTORY
    by_id = {case["case_id"]: case for case in report["cases"]}
    assert by_id[HELD_OUT_ID]["tumor_free"] and by_id[HELD_OUT_ID]["tumor"]["dice"] is None
    assert not by_id[TRAIN_ID]["tumor_free"]
    # The scores are of the reference the dataset reader gives: its volumes match the labels read directly.
    for source in discover_cases(cohort):
        case = source.load()
        liver_ml = np.count_nonzero(case.label.array) * case.label.voxel_volume_ml()
        assert by_id[source.case_id]["liver"]["reference_ml"] == pytest.approx(liver_ml)
        assert np.array(by_id[source.case_id]["confusion_matrix"]).sum() == case.label.array.size
    page = (out / "report.html").read_text()
    assert "<strong>WARNING: 1 evaluated case(s) were in this model's TRAINING set" in page
    assert "patient-wise hold-out (test)" in page
    for case in report["cases"]:
        for drawn in case["figures"].values():
            assert (out / drawn["file"]).is_file()
    assert (out / "figures" / "training_curves.png").is_file()
    assert not list(tmp_path.glob(".*partial*"))


def test_cases_option_selects_cases_and_rejects_unknown_ids(cohort, model_file, tmp_path, capsys):
    report = evaluate_model(model_file, cohort, tmp_path / "one", case_ids=[HELD_OUT_ID])
    assert [case["case_id"] for case in report["cases"]] == [HELD_OUT_ID]
    assert report["split_overlap"]["training"] == []
    assert "WARNING" not in (tmp_path / "one" / "report.html").read_text()

    code = main(["evaluate", "--model", str(model_file), "--data", str(cohort), "--out", str(tmp_path / "two"),
                 "--cases", "3Dircadb1.99"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error == [f"error: {cohort}: no case 3Dircadb1.99 here; the cases are {TRAIN_ID}, "
                                   f"{HELD_OUT_ID}"]
    assert not (tmp_path / "two").exists()


def test_an_interrupted_evaluation_leaves_no_report(cohort, model_file, tmp_path):
    out = tmp_path / "report"

    def interrupt_on_second_case(fraction, message):
        if message.startswith(HELD_OUT_ID):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate_model(model_file, cohort, out, progress=interrupt_on_second_case)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_that_is_not_a_report(cohort, model_file, tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("keep me")
    code = main(["evaluate", "--model", str(model_file), "--data", str(cohort), "--out", str(precious)])
    assert code == 2
    assert "is not an evaluation report" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "keep me"


def test_bad_model_file_is_one_line_error(cohort, tmp_path):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a model")
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "evaluate", "--model", str(bogus),
                             "--data", str(cohort), "--out", str(tmp_path / "report")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {bogus}") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_device_is_refused_before_any_work(cohort, model_file, tmp_path, capsys):
    code = main(["evaluate", "--model", str(model_file), "--data", str(cohort), "--out", str(tmp_path / "report"),
                 "--device", "tpu"])
    assert code == 2 and "unknown device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "evaluate", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--model", "--data", "--out", "--device", "--cases"):
        assert option in result.stdout
    assert "report.html" in result.stdout
