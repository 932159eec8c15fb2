"""The browser review's case from a real PACS (Orthanc with its DICOMweb plugin), without the browser: the CT
retrieved from its series URL, the newest SEG of this project as the segmentation, Save's SEG stored back
(STOW-RS) and decoded from the server voxel by voxel; bad URLs refused with one line. Real MRML (slicer-core)."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
import slicer

from LiverResUNetLib.app.review.case import ReviewCase
from LiverResUNetLib.dicomseg.reader import read_seg_labels
from LiverResUNetLib.dicomseg.writer import SERIES_DESCRIPTION, write_seg
from LiverResUNetLib.dicomweb.connection import PASSWORD_VARIABLE, USER_VARIABLE
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.dicom_series import find_series, read_series, read_series_headers
from LiverResUNetLib.lesion_review import reject_lesion
from LiverResUNetLib.volume import Volume
from orthanc_server import PASSWORD, USER, free_port
from review_fixture import fixture_labels, write_pacs_ready_ct

CARD = {"name": "a model of the test"}


@pytest.fixture
def pacs(orthanc, monkeypatch):
    """The running Orthanc, with the credentials in the environment as a user would set them."""
    monkeypatch.setenv(USER_VARIABLE, USER)
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    return orthanc


@pytest.fixture
def ct_folder(tmp_path: Path) -> Path:
    return write_pacs_ready_ct(tmp_path / "ct")


def upload_ct(pacs, folder: Path) -> tuple[str, str, str]:
    """The CT of ``folder`` on the PACS: its series URL, study and series UIDs."""
    files = find_series(folder)[0].files
    pacs.upload(files)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID
    return f"{pacs.dicomweb}/studies/{study}/series/{series}", study, series


def upload_seg(pacs, folder: Path, labels: Volume, path: Path) -> None:
    """A SEG of this project made from ``labels`` on the CT of ``folder``, stored on the PACS."""
    stack, series_uid, _ = read_series_headers(find_series(folder)[0].files)
    write_seg(labels, stack, series_uid, CARD, path)
    pacs.upload([path])


def project_segs(pacs, study: str) -> list[str]:
    return [uid for modality, uid, description in pacs.series_of_study(study)
            if modality == "SEG" and description.startswith(SERIES_DESCRIPTION)]


def stored_labels(pacs, seg_uid: str, folder: Path, tmp_path: Path) -> tuple[np.ndarray, pydicom.Dataset]:
    """The SEG series ``seg_uid`` from the PACS, decoded onto the CT of ``folder``, and its header."""
    path = tmp_path / f"{seg_uid}.dcm"
    path.write_bytes(pacs.series_file(seg_uid))
    return read_seg_labels(path, read_series(folder)).array, pydicom.dcmread(path)


def test_a_series_url_is_reviewed_from_its_newest_seg_and_save_stores_the_edit_back(pacs, ct_folder: Path,
        tmp_path: Path) -> None:
    url, study, series = upload_ct(pacs, ct_folder)
    older = reject_lesion(fixture_labels(), 1)
    upload_seg(pacs, ct_folder, older, tmp_path / "older.dcm")
    upload_seg(pacs, ct_folder, fixture_labels(), tmp_path / "newer.dcm")
    before = set(project_segs(pacs, study))

    case = ReviewCase.open(slicer.vtkMRMLScene(), url, None, tmp_path / "out")
    assert np.array_equal(case.labels.array, fixture_labels().array), "the newest SEG, not the older one"
    assert [row.state for row in case.lesion_rows()] == ["found"] * 3
    case.reject(2)
    saved = case.save()
    assert f"stored in study {study} on {pacs.dicomweb}" in str(saved)
    [new] = set(project_segs(pacs, study)) - before
    labels, seg = stored_labels(pacs, new, ct_folder, tmp_path)
    expected = reject_lesion(fixture_labels(), 2).array
    assert np.array_equal(labels, expected) and np.array_equal(labels, case.labels.array)
    assert np.array_equal(read_seg_labels(saved.dicom_seg, read_series(ct_folder)).array, expected), "and --output"
    assert (tmp_path / "out" / "segmentation.seg.nrrd").is_file()
    [referenced] = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == series and seg.SeriesInstanceUID != series and seg.StudyInstanceUID == study
    assert {str(segment.SegmentAlgorithmType) for segment in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    assert "already stored in study" in str(case.accept()), "Save then Accept: one SEG on the server"
    assert set(project_segs(pacs, study)) - before == {new}

    again = ReviewCase.open(slicer.vtkMRMLScene(), url, None, tmp_path / "again")
    assert np.array_equal(again.labels.array, expected), "the reviewed SEG is now the newest"


def test_a_restart_on_the_same_url_offers_the_unsaved_edits(pacs, ct_folder: Path,
        tmp_path: Path) -> None:
    url, _, _ = upload_ct(pacs, ct_folder)
    upload_seg(pacs, ct_folder, fixture_labels(), tmp_path / "seg.dcm")
    case = ReviewCase.open(slicer.vtkMRMLScene(), url, None, tmp_path / "out")
    case.reject(1)
    again = ReviewCase.open(slicer.vtkMRMLScene(), url, None, tmp_path / "out")
    assert again.recovery_available(), "the same series and SEG: the same case, though fetched into a new folder"


def test_a_local_segmentation_overrides_the_server_and_without_any_the_url_is_refused(pacs, ct_folder: Path,
        tmp_path: Path) -> None:
    from LiverResUNetLib.io.image_file import write_image

    url, _, _ = upload_ct(pacs, ct_folder)
    with pytest.raises(InputError) as refused:
        ReviewCase.open(slicer.vtkMRMLScene(), url, None, tmp_path / "out")
    assert str(refused.value) == (f"{url}: the server holds no DICOM SEG of this project for this series: give "
                                  "--segmentation, or --model to segment it first")
    local = write_image(reject_lesion(fixture_labels(), 3), tmp_path / "local.nii.gz")
    case = ReviewCase.open(slicer.vtkMRMLScene(), url, local, tmp_path / "out")
    assert np.array_equal(case.labels.array, reject_lesion(fixture_labels(), 3).array)


def test_a_bad_url_or_an_unreachable_server_is_one_line_naming_it(pacs, ct_folder: Path,
        tmp_path: Path) -> None:
    url, study, series = upload_ct(pacs, ct_folder)
    unreachable = f"http://127.0.0.1:{free_port()}/dicom-web/studies/{study}/series/{series}"
    cases = {unreachable: "cannot reach the DICOMweb server",
             f"{pacs.dicomweb}/studies/{study}/series/1.2.3.4": "no such series on the server",
             pacs.dicomweb: "names no series"}
    for bad, reason in cases.items():
        with pytest.raises(InputError) as refused:
            ReviewCase.open(slicer.vtkMRMLScene(), bad, None, tmp_path / "out")
        message = str(refused.value)
        assert message.startswith(bad) and reason in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def phantom_ct(folder: Path) -> tuple[Path, Volume]:
    """A small phantom CT series of its own study, and labels on its grid: a liver block with one lesion."""
    from dicom_factory import phantom_hu, write_series

    write_series(folder, phantom_hu((5, 24, 28), seed=3), series=folder.name, patient_id=folder.name)
    labels = np.zeros((5, 24, 28), np.uint8)
    labels[1:4, 4:20, 4:24] = 1
    labels[2, 8:12, 8:12] = 2
    return folder, read_series(folder).with_array(labels)


def test_a_server_worklist_holds_the_ct_series_with_a_seg_of_this_project(pacs, ct_folder: Path,
                                                                          tmp_path: Path) -> None:
    from LiverResUNetLib.app.review.worklist import CORRECTED, TO_REVIEW, Worklist

    fixture_url, fixture_study, _ = upload_ct(pacs, ct_folder)
    with pytest.raises(InputError, match="the server holds no CT series with a DICOM SEG of this project"):
        Worklist.load(pacs.dicomweb, tmp_path / "reviewed")
    upload_seg(pacs, ct_folder, fixture_labels(), tmp_path / "fixture-seg.dcm")
    phantom_folder, phantom_labels = phantom_ct(tmp_path / "phantom")
    phantom_url, _, _ = upload_ct(pacs, phantom_folder)
    upload_seg(pacs, phantom_folder, phantom_labels, tmp_path / "phantom-seg.dcm")
    upload_ct(pacs, phantom_ct(tmp_path / "unsegmented")[0])  # no SEG: not on the worklist

    output = tmp_path / "reviewed"
    worklist = Worklist.load(pacs.dicomweb, output)
    assert sorted(str(case.ct) for case in worklist.cases) == sorted([fixture_url, phantom_url])
    assert set(worklist.states.states.values()) == {TO_REVIEW}
    fixture_name = next(case.name for case in worklist.cases if case.ct == fixture_url)
    case = worklist.open(slicer.vtkMRMLScene(), fixture_name)
    assert case.output == output / fixture_name and np.array_equal(case.labels.array, fixture_labels().array)
    case.reject(1)
    case.accept()
    worklist.states.signed_off(fixture_name, case.edited)
    [stored] = [uid for uid in project_segs(pacs, fixture_study)
                if np.array_equal(stored_labels(pacs, uid, ct_folder, tmp_path)[0], case.labels.array)]

    again = Worklist.load(pacs.dicomweb, output)  # a restart: the states kept, the phantom next
    assert again.states.states[fixture_name] == CORRECTED and again.states.first_to_review() != fixture_name
    other = again.open(slicer.vtkMRMLScene(), again.states.first_to_review())
    assert np.array_equal(other.labels.array, phantom_labels.array)

    for bad, reason in ((fixture_url, "a worklist is a whole server"),
                        (f"http://127.0.0.1:{free_port()}/dicom-web", "cannot reach the DICOMweb server")):
        with pytest.raises(InputError, match=reason):
            Worklist.load(bad, tmp_path / "elsewhere")
