"""DICOM SEG as a reference: a folder of CT series with SEG objects is a dataset for evaluate and prepare."""

import shutil

import numpy as np
import pytest

from LiverResUNetLib.cli import main
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.prepare import add_case, prepare_dataset
from LiverResUNetLib.dicomseg.writer import write_seg
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.evaluation.model_evaluation import evaluate_model
from LiverResUNetLib.io.dicom_series import read_series_headers
from LiverResUNetLib.phantom.ircadb_writer import write_cohort
from LiverResUNetLib.volume import TUMOR


def figures(value, name=""):
    """Every number (and None) in a nested report entry by its path; NIfTI keeps spacing in float32, hence approx."""
    if isinstance(value, list):
        value = dict(enumerate(value))
    if isinstance(value, dict):
        return {path: item for key in value for path, item in figures(value[key], f"{name}/{key}").items()}
    return {name: value}


def assert_same_figures(actual, expected):
    actual, expected = figures(actual), figures(expected)
    assert actual.keys() == expected.keys()
    for path, value in expected.items():
        if isinstance(value, float):
            assert actual[path] == pytest.approx(value, rel=1e-6), path
        else:
            assert actual[path] == value, path


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory):
    """A phantom patient stored unzipped (its CT series in PATIENT_DICOM) and its case read from the masks."""
    root = write_cohort(tmp_path_factory.mktemp("phantom"), [2], size=48, seed=3, slices=24)
    patient = root / "3Dircadb1.2"
    [source] = discover_cases(patient)
    case = source.load()
    assert (case.label.array == TUMOR).any()
    return patient / "PATIENT_DICOM", case


@pytest.fixture(scope="module")
def seg_folder(phantom_case, tmp_path_factory):
    """The phantom's CT series and a DICOM SEG of its reference labels, side by side (a PACS export)."""
    series, case = phantom_case
    folder = tmp_path_factory.mktemp("pacs_export") / "patient"
    shutil.copytree(series, folder / "CT")
    stack, series_uid, _ = read_series_headers(folder / "CT")
    write_seg(case.label, stack, series_uid, {"software": {"liverresunet": "test"}}, folder / "reference_seg.dcm")
    return folder


def test_a_seg_reference_gives_the_same_evaluation_as_the_same_labels_in_nifti(phantom_case, seg_folder, tmp_path,
                                                                               tiny_model_path):
    _, case = phantom_case
    nifti = add_case(tmp_path / "nifti", case)
    from_seg = evaluate_model(tiny_model_path, seg_folder, tmp_path / "seg_report", device="cpu")
    from_nifti = evaluate_model(tiny_model_path, nifti, tmp_path / "nifti_report", device="cpu")
    [seg_case], [nifti_case] = from_seg["cases"], from_nifti["cases"]
    assert seg_case["source"].endswith("reference_seg.dcm")
    assert seg_case["liver"]["dice"] is not None and seg_case["lesions"]["reference_lesions"] > 0
    for key in ("liver", "tumor", "lesions", "confusion_matrix", "tumor_free"):
        assert_same_figures(seg_case[key], nifti_case[key])
    assert_same_figures(from_seg["summary"], from_nifti["summary"])


def test_prepare_makes_training_cases_of_ct_series_with_seg_objects(phantom_case, seg_folder, tmp_path):
    _, case = phantom_case
    out = prepare_dataset(seg_folder, tmp_path / "dataset")
    [prepared] = [source.load() for source in discover_cases(out)]
    assert prepared.image.same_grid(case.image, tolerance=1e-4)
    np.testing.assert_array_equal(prepared.image.array, case.image.array)
    np.testing.assert_array_equal(prepared.label.array, case.label.array)


def test_a_seg_of_a_series_not_in_the_folder_is_refused_by_name(seg_folder, tmp_path, capsys):
    folder = tmp_path / "only_the_seg"
    folder.mkdir()
    shutil.copy(seg_folder / "reference_seg.dcm", folder)
    assert main(["prepare", "--data", str(folder), "--out", str(tmp_path / "dataset")]) == 2
    error = capsys.readouterr().err
    assert "reference_seg.dcm: this DICOM SEG was made from series" in error and "which is not a CT series" in error
    assert not (tmp_path / "dataset").exists()


def test_compare_with_a_dicom_seg_reference_in_the_logic(seg_folder, phantom_case, real_fixtures):
    import slicer

    from LiverResUNetLib.io.dicom_series import find_series, instance_identity
    from LiverResUNetLib.scene.files import read_dicom_series_node
    from LiverResUNetLib.scene.logic import SegmentLiverLogic
    from LiverResUNetLib.scene.node_attributes import INSTANCE_UIDS_ATTRIBUTE
    from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation

    _, case = phantom_case
    scene = slicer.vtkMRMLScene()
    [series] = find_series(seg_folder / "CT")
    volume = read_dicom_series_node(scene, series)
    stack, _, _ = read_series_headers(seg_folder / "CT")  # Slicer's DICOM module names the instances in this order
    volume.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, " ".join(instance_identity(h)[1] for h in stack.headers))
    logic = SegmentLiverLogic(scene)
    shifted = labels_to_segmentation(case.label.with_array(np.roll(case.label.array, 2, axis=2)), closed_surface=False)
    scene.AddNode(shifted)
    reference = labels_to_segmentation(case.label, closed_surface=False)
    scene.AddNode(reference)
    from_node = logic.compareWithReference(shifted, reference, volume)
    from_seg = logic.compareWithReference(shifted, seg_folder / "reference_seg.dcm", volume)
    assert 0 < from_seg["liver"]["dice"] < 1
    assert_same_figures(from_seg, from_node)
    loaded = logic.loadDicomSegReference(seg_folder / "reference_seg.dcm", volume)
    assert scene.IsNodePresent(loaded) and loaded.GetName() == "reference_seg reference"
    assert_same_figures(logic.compareWithReference(shifted, loaded, volume), from_node)

    [other_series] = [s for s in find_series(real_fixtures / "dcmqi-ct-3slice") if s.modality == "CT"]
    other = read_dicom_series_node(scene, other_series)
    with pytest.raises(InputError, match="reference_seg.dcm: .*another geometry|reference_seg.dcm: .*not lie on"):
        logic.compareWithReference(shifted, seg_folder / "reference_seg.dcm", other)
