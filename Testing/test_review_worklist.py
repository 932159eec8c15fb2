"""The browser review's worklist without the browser: the folder layout, its refusals, and the states that
survive a restart."""

import json
from pathlib import Path

import numpy as np
import pytest

from LiverResUNetLib.app.review.worklist import (
    ACCEPTED,
    CORRECTED,
    TO_REVIEW,
    Worklist,
    WorklistStates,
    read_worklist,
)
from LiverResUNetLib.errors import InputError
from review_phantom import phantom, write_phantom_worklist


def make_worklist(folder: Path) -> Path:
    (folder / "b-dicom" / "ct").mkdir(parents=True)
    (folder / "b-dicom" / "segmentation.seg.nrrd").write_bytes(b"x")
    (folder / "a-image").mkdir()
    (folder / "a-image" / "ct.nii.gz").write_bytes(b"x")
    (folder / "a-image" / "segmentation.nii.gz").write_bytes(b"x")
    (folder / "a-image" / "notes.txt").write_text("not part of the case")
    return folder


def test_the_cases_are_the_sub_folders_with_their_ct_and_segmentation(tmp_path: Path) -> None:
    cases = read_worklist(make_worklist(tmp_path / "worklist"))
    assert [(case.name, case.ct.name, case.segmentation.name) for case in cases] == [
        ("a-image", "ct.nii.gz", "segmentation.nii.gz"), ("b-dicom", "ct", "segmentation.seg.nrrd")]


def test_a_bad_worklist_is_refused_naming_the_folder_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing: the worklist folder does not exist"):
        read_worklist(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: the worklist folder holds no case"):
        read_worklist(tmp_path / "empty")
    folder = make_worklist(tmp_path / "worklist")
    (folder / "a-image" / "segmentation.nii.gz").unlink()
    with pytest.raises(InputError, match=r"a-image: a worklist case needs exactly one segmentation .*found: none"):
        read_worklist(folder)
    (folder / "a-image" / "segmentation.nii.gz").write_bytes(b"x")
    (folder / "b-dicom" / "ct").rmdir()
    with pytest.raises(InputError, match=r"b-dicom: a worklist case needs exactly one CT"):
        read_worklist(folder)
    (folder / "b-dicom" / "ct.nrrd").write_bytes(b"x")
    (folder / "b-dicom" / "ct.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match=r"found: ct.nii.gz, ct.nrrd"):
        read_worklist(folder)


def test_the_states_are_kept_in_a_json_file_and_survive_a_restart(tmp_path: Path) -> None:
    cases = read_worklist(make_worklist(tmp_path / "worklist"))
    output = tmp_path / "reviewed"
    states = WorklistStates.load(output, cases)
    assert states.states == {"a-image": TO_REVIEW, "b-dicom": TO_REVIEW} and not states.path.exists()
    assert states.first_to_review() == "a-image"
    states.signed_off("a-image", edited=True)
    assert json.loads((output / "worklist.json").read_text())["states"]["a-image"] == CORRECTED
    again = WorklistStates.load(output, cases)  # a restart
    assert again.states == {"a-image": CORRECTED, "b-dicom": TO_REVIEW} and again.first_to_review() == "b-dicom"
    again.signed_off("b-dicom", edited=False)
    assert WorklistStates.load(output, cases).states == {"a-image": CORRECTED, "b-dicom": ACCEPTED}
    assert again.first_to_review() == "a-image", "all done: back to the first"
    with pytest.raises(ValueError, match="unknown worklist state"):
        again.set("a-image", "maybe")
    assert list(output.iterdir()) == [output / "worklist.json"], "written atomically: no temporary file left"


def test_a_damaged_state_file_is_refused(tmp_path: Path) -> None:
    cases = read_worklist(make_worklist(tmp_path / "worklist"))
    (tmp_path / "worklist.json").write_text('{"states": {"a-image": "done"}}')
    with pytest.raises(InputError, match="worklist.json: its states must be among"):
        WorklistStates.load(tmp_path, cases)
    (tmp_path / "worklist.json").write_text("{not json")
    with pytest.raises(InputError, match="worklist.json: not a worklist state file"):
        WorklistStates.load(tmp_path, cases)


def test_a_worklist_case_opens_for_review_into_its_own_output_folder(tmp_path: Path) -> None:
    import slicer

    worklist = Worklist.load(write_phantom_worklist(tmp_path / "worklist"), tmp_path / "reviewed")
    assert worklist.names == ["case-1", "case-2"] and worklist.neighbour("case-2", 1) == "case-1"
    case = worklist.open(slicer.vtkMRMLScene(), "case-2")
    assert case.output == tmp_path / "reviewed" / "case-2" and case.output.is_dir()
    assert np.array_equal(case.labels.array, phantom()[1].array)
    case.reject(2)
    case.accept()
    worklist.states.signed_off("case-2", case.edited)
    assert Worklist.load(tmp_path / "worklist", tmp_path / "reviewed").states.states == {
        "case-1": TO_REVIEW, "case-2": CORRECTED}
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="file: the output must be a folder"):
        Worklist.load(tmp_path / "worklist", tmp_path / "file")
