"""The headless ``segment`` command: DICOM folders and image files in, .seg.nrrd / label maps and CSV out."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import slicer

from dicom_factory import phantom_hu, rotation, write_series
from LiverResUNetLib.app.segment_cases import expand_inputs
from LiverResUNetLib.cli import main
from LiverResUNetLib.inference.postprocessing import PostprocessOptions
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.scene.results_table import COLUMNS
from LiverResUNetLib.scene.segmentation_nodes import segmentation_to_labels

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh


def ct_hu(shape=(5, 20, 24)):
    return np.clip(phantom_hu(shape, low=-200, high=300), -1024, 3071).astype(np.int16)


@pytest.fixture
def dicom_folder(tmp_path):
    write_series(tmp_path / "patient 1", ct_hu(), direction=rotation(10.0, 5.0), description="CT abdomen")
    return tmp_path / "patient 1"


def segment(*args):
    return main(["segment", *map(str, args), "--device", "cpu"])


def read_seg_nrrd(path):
    node = slicer.vtkMRMLSegmentationNode()
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    return node


def test_one_dicom_series_gives_the_predicted_segmentation_and_its_table(tmp_path, dicom_folder, tiny_model_path,
                                                                          capsys):
    output, table = tmp_path / "out" / "liver.seg.nrrd", tmp_path / "out" / "results.csv"
    assert segment("--model", tiny_model_path, "--input", dicom_folder, "--output", output, "--table", table) == 0
    ct = read_series(dicom_folder)
    expected = predict_volume(ct, load_model(tiny_model_path), device="cpu", postprocess=PostprocessOptions())
    np.testing.assert_array_equal(segmentation_to_labels(read_seg_nrrd(output), ct).array, expected.array)
    with open(table, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == list(COLUMNS) and rows[1][0] == "Liver"
    summary = capsys.readouterr().out
    assert "patient_1" in summary and "1 of 1 cases segmented" in summary


def test_label_map_output_is_0_1_2_on_the_input_grid(tmp_path, dicom_folder, tiny_model_path):
    output = tmp_path / "liver.nii.gz"
    assert segment("--model", tiny_model_path, "--input", dicom_folder, "--output", output,
                   "--no-postprocessing") == 0
    ct = read_series(dicom_folder)
    raw = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False,
                             min_tumor_mm3=0.0)
    written = read_image(output)
    assert written.same_grid(ct, tolerance=1e-3)
    np.testing.assert_array_equal(written.array, predict_volume(ct, load_model(tiny_model_path), device="cpu",
                                                                postprocess=raw).array)


def test_batch_goes_on_after_a_failure_and_reports_it(tmp_path, dicom_folder, tiny_model_path, capsys):
    image = write_image(read_series(dicom_folder), tmp_path / "scan.nii.gz")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "readme.txt").write_text("no DICOM here")
    out = tmp_path / "results"
    code = segment("--model", tiny_model_path, "--input", dicom_folder, "--input", broken, "--input", image,
                   "--output", out, "--table", out, "--format", ".nrrd")
    assert code == 1
    assert sorted(path.name for path in out.iterdir()) == ["patient_1.csv", "patient_1.nrrd", "scan.csv",
                                                           "scan.nrrd"]
    captured = capsys.readouterr()
    assert "broken" in captured.out and "FAILED" in captured.out and "2 of 3 cases segmented, 1 failed" in captured.out
    assert "FAILED" in captured.err


def test_every_ct_series_of_a_folder_is_a_case_unless_one_is_chosen(tmp_path, tiny_model_path):
    write_series(tmp_path / "study" / "a", ct_hu(), series="a", description="arterial")
    write_series(tmp_path / "study" / "b", ct_hu(), series="b", description="portal venous")
    out = tmp_path / "out"
    assert segment("--model", tiny_model_path, "--input", tmp_path / "study", "--output", out) == 0
    assert sorted(path.name for path in out.iterdir()) == ["study_arterial.seg.nrrd", "study_portal_venous.seg.nrrd"]
    chosen = read_series(tmp_path / "study" / "b").metadata["series_uid"]
    single = tmp_path / "venous.seg.nrrd"
    assert segment("--model", tiny_model_path, "--input", tmp_path / "study", "--series-uid", chosen,
                   "--output", single) == 0
    assert single.is_file()


def test_a_generic_dicom_folder_is_named_after_its_patient_folder(tmp_path):
    write_series(tmp_path / "3Dircadb1.17" / "PATIENT_DICOM", ct_hu())
    write_series(tmp_path / "scan 2" / "DICOM", ct_hu())
    cases = expand_inputs([tmp_path / "3Dircadb1.17" / "PATIENT_DICOM", tmp_path / "scan 2" / "DICOM"])
    assert [case.name for case in cases] == ["3Dircadb1.17", "scan_2"]


@pytest.mark.parametrize("output, message", [("liver.vtk", "must end in"), ("several.seg.nrrd", "give a folder")])
def test_wrong_outputs_are_refused_before_any_work(tmp_path, dicom_folder, tiny_model_path, capsys, output,
                                                   message):
    inputs = ["--input", dicom_folder] + (["--input", dicom_folder] if output.startswith("several") else [])
    assert segment("--model", tiny_model_path, *inputs, "--output", tmp_path / output) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / output).exists()


def test_missing_model_is_one_clear_line(tmp_path, dicom_folder, capsys):
    assert segment("--model", tmp_path / "none.pth", "--input", dicom_folder, "--output", tmp_path / "x.seg.nrrd") == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none.pth'}: model file does not exist"


def test_help_needs_neither_torch_nor_mrml():
    code = ("import argparse, sys; from LiverResUNetLib.app import segment as c; "
            "c.add_arguments(argparse.ArgumentParser()); "
            "print(sorted(m for m in ('torch', 'slicer', 'vtk') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
