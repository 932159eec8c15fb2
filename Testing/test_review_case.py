"""The browser review's case, without the browser: inputs, the lesion list and its states, reject / add / paint /
erase as undoable edits, the recovery file after every edit, Save and Accept. Real MRML (slicer-core)."""

from pathlib import Path

import numpy as np
import pytest
import slicer

from LiverResUNetLib.app.review.case import ReviewCase
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.image_file import write_image
from LiverResUNetLib.lesion_review import grow_lesion, reject_lesion, review_summary
from LiverResUNetLib.scene.segmentation_nodes import oriented_image, segment_mask, segmentation_to_labels
from LiverResUNetLib.scene.volume_nodes import ijk_to_ras, node_to_volume
from LiverResUNetLib.volume import Volume
from review_phantom import MISSED_LESION_SEED_KJI, phantom


def write_inputs(folder: Path) -> tuple[Path, Path]:
    ct, labels = phantom()
    return write_image(ct, folder / "ct.nrrd"), write_image(labels, folder / "labels.nii.gz")


def open_case(folder: Path) -> ReviewCase:
    ct_path, labels_path = write_inputs(folder)
    return ReviewCase.open(slicer.vtkMRMLScene(), ct_path, labels_path, folder / "out")


def node_labels(case: ReviewCase) -> np.ndarray:
    return segmentation_to_labels(case.segmentation_node, node_to_volume(case.ct_node)).array


def stroke(case: ReviewCase, segment_id: str, voxels: tuple[slice, ...], value: int) -> None:
    """What the segment editor's paint (1) or erase (0) does to one segment of the node."""
    mask = segment_mask(case.segmentation_node, segment_id, case.labels).astype(np.uint8)
    mask[voxels] = value
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        oriented_image(case.labels, mask), case.segmentation_node, segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def test_open_lists_the_lesions_as_found(tmp_path: Path) -> None:
    case = open_case(tmp_path)
    rows = case.lesion_rows()
    assert [(row.number, row.state) for row in rows] == [(1, "found"), (2, "found")]
    assert rows[0].volume_ml == pytest.approx(480 * 0.00128)
    assert np.array_equal(node_labels(case), phantom()[1].array)
    assert not case.edited and not case.recovery_path.exists()


def test_reject_add_undo_redo_and_the_states(tmp_path: Path) -> None:
    case = open_case(tmp_path)
    ct, labels = phantom()
    case.reject(2)
    assert np.array_equal(node_labels(case), reject_lesion(labels, 2).array)
    k, j, i = MISSED_LESION_SEED_KJI
    case.add_lesion_at((ijk_to_ras(ct) @ [i, j, k, 1.0])[:3])
    expected = grow_lesion(ct, reject_lesion(labels, 2), MISSED_LESION_SEED_KJI).array
    assert np.array_equal(case.labels.array, expected) and np.array_equal(node_labels(case), expected)
    assert sorted(row.state for row in case.lesion_rows()) == ["added", "found"]
    case.undo()
    assert np.array_equal(node_labels(case), reject_lesion(labels, 2).array)
    case.undo()
    assert np.array_equal(node_labels(case), labels.array) and not case.edited
    assert case.undo() is None
    case.redo()
    assert np.array_equal(node_labels(case), reject_lesion(labels, 2).array)


def test_a_paint_stroke_is_taken_back_and_erasing_tumor_leaves_liver(tmp_path: Path) -> None:
    case = open_case(tmp_path)
    _, labels = phantom()
    stroke(case, "LiverTumor", (5, slice(12, 16), slice(22, 26)), 1)  # paint liver beside lesion 1 (i 10..21)
    edit = case.stroke_finished(erased_tumor=False)
    assert edit is not None and edit.indices.size == 16 and set(edit.before) == {1} and set(edit.after) == {2}
    assert [row.state for row in case.lesion_rows()] == ["edited", "found"]
    stroke(case, "LiverTumor", (9, slice(30, 32), slice(50, 52)), 1)  # a new lesion away from the others
    case.stroke_finished(erased_tumor=False)
    assert [row.state for row in case.lesion_rows()] == ["edited", "found", "added"]
    case.undo()
    stroke(case, "LiverTumor", (4, slice(10, 20), slice(10, 22)), 0)  # erase one slice of lesion 1
    case.stroke_finished(erased_tumor=True)
    assert np.all(case.labels.array[4, 10:20, 10:22] == 1) and np.all(node_labels(case)[4, 10:20, 10:22] == 1)
    changed = case.labels.array != labels.array
    assert np.count_nonzero(changed) == 16 + 120


def test_the_summary_and_rows_follow_every_edit(tmp_path: Path) -> None:
    """They are measured once per edit and kept: after each edit, undo and redo they are those of the labels."""
    case = open_case(tmp_path)
    edits = (lambda: case.reject(2), case.undo, case.redo,
             lambda: (stroke(case, "LiverTumor", (9, slice(30, 32), slice(50, 52)), 1),
                      case.stroke_finished(erased_tumor=False)),
             case.undo)
    counts = []
    for edit in edits:
        edit()
        assert case.summary() == review_summary(case.labels)
        assert [row.number for row in case.lesion_rows()] == [lesion.number for lesion in case.summary().lesions]
        counts.append(case.summary().tumor_count)
    assert counts == [1, 2, 1, 2, 1]


def test_every_edit_goes_to_the_recovery_file_and_a_new_session_resumes_it(tmp_path: Path) -> None:
    case = open_case(tmp_path)
    case.reject(2)
    assert case.recovery_path.is_file()
    again = ReviewCase.open(slicer.vtkMRMLScene(), tmp_path / "ct.nrrd", tmp_path / "labels.nii.gz", tmp_path / "out")
    assert again.recovery_available()
    again.resume()
    assert np.array_equal(node_labels(again), case.labels.array)
    again.undo()
    assert not again.edited
    elsewhere = ReviewCase.open(slicer.vtkMRMLScene(), tmp_path / "ct.nrrd", tmp_path / "labels.nii.gz",
                                tmp_path / "elsewhere")
    assert not elsewhere.recovery_available()
    (tmp_path / "labels.nii.gz").unlink()
    write_image(reject_lesion(phantom()[1], 1), tmp_path / "labels.nii.gz")  # another segmentation: not this case
    assert not ReviewCase.open(slicer.vtkMRMLScene(), tmp_path / "ct.nrrd", tmp_path / "labels.nii.gz",
                               tmp_path / "out").recovery_available()


def test_save_writes_the_edited_segmentation_and_accept_signs_it_off(tmp_path: Path) -> None:
    case = open_case(tmp_path)
    case.reject(2)
    saved = case.accept()
    node = slicer.vtkMRMLSegmentationNode()
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(saved.segmentation))
    assert storage.ReadData(node)
    read = segmentation_to_labels(node, case.ct)
    assert np.array_equal(read.array, reject_lesion(phantom()[1], 2).array)
    assert (tmp_path / "out" / "accepted.json").is_file() and case.accepted
    assert saved.dicom_seg is None and "the CT is an image file" in str(saved), "says why no DICOM SEG is written"
    assert not (tmp_path / "out" / "segmentation.dcm").exists()


@pytest.mark.dicom
@pytest.mark.parametrize("edit", [True, False], ids=["edited", "untouched"])
def test_a_dicom_ct_is_also_saved_as_a_dicom_seg_of_its_series(tmp_path: Path, edit: bool,
                                                                tiny_model_path: Path) -> None:
    import highdicom

    from LiverResUNetLib.dicomseg.reader import read_seg_labels
    from LiverResUNetLib.io.dicom_series import find_series, read_series
    from review_fixture import CT_FOLDER, fixture_labels, write_fixture_segmentation

    case = ReviewCase.open(slicer.vtkMRMLScene(), CT_FOLDER, write_fixture_segmentation(tmp_path), tmp_path / "out",
                           tiny_model_path)  # the model that made the segmentation: the SEG's algorithm
    expected = reject_lesion(fixture_labels(), 2) if edit else fixture_labels()
    if edit:
        case.reject(2)
    saved = case.save()
    assert saved.dicom_seg == tmp_path / "out" / "segmentation.dcm" and str(saved.dicom_seg) in str(saved)
    ct = read_series(find_series(CT_FOLDER)[0].files)
    assert np.array_equal(read_seg_labels(saved.dicom_seg, ct).array, expected.array)
    assert np.array_equal(read_seg_labels(saved.dicom_seg, ct).array, case.labels.array)
    seg = highdicom.seg.segread(str(saved.dicom_seg))
    [referenced] = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == ct.metadata["series_uid"] == find_series(CT_FOLDER)[0].series_uid
    assert seg.SeriesInstanceUID != referenced.SeriesInstanceUID, "a new series"
    kinds = {str(segment.SegmentAlgorithmType) for segment in seg.SegmentSequence}
    assert kinds == ({"SEMIAUTOMATIC"} if edit else {"AUTOMATIC"})


def test_bad_inputs_are_refused_before_anything_is_shown(tmp_path: Path) -> None:
    ct_path, labels_path = write_inputs(tmp_path)
    scene = slicer.vtkMRMLScene()
    with pytest.raises(InputError, match="missing.nrrd: does not exist"):
        ReviewCase.open(scene, tmp_path / "missing.nrrd", labels_path, tmp_path / "out")
    wrong = write_image(Volume(np.full((3, 4, 5), 7, np.uint8)), tmp_path / "wrong.nii.gz")
    with pytest.raises(InputError, match="wrong.nii.gz: the label map's grid"):
        ReviewCase.open(scene, ct_path, wrong, tmp_path / "out")
    with pytest.raises(InputError, match="give --segmentation, or --model"):
        ReviewCase.open(scene, ct_path, None, tmp_path / "out")


def test_without_a_segmentation_the_model_segments_the_ct_first(tmp_path: Path, tiny_model_path: Path) -> None:
    ct_path, _ = write_inputs(tmp_path)
    reported: list[str] = []
    case = ReviewCase.open(slicer.vtkMRMLScene(), ct_path, None, tmp_path / "out", tiny_model_path,
                           progress=lambda fraction, message: reported.append(message))
    assert case.labels.shape == phantom()[0].shape and set(np.unique(case.labels.array)) <= {0, 1, 2}
    assert np.array_equal(node_labels(case), case.labels.array) and reported[-1] == "done"
    assert case.scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 1


def test_a_reviewed_case_becomes_a_training_case(tmp_path: Path) -> None:
    from LiverResUNetLib.datasets.discovery import discover_cases

    case = open_case(tmp_path)
    case.reject(2)
    folder = case.save_training_case(tmp_path / "dataset", "reviewed.1")
    [source] = discover_cases(folder)
    saved = source.load()
    assert saved.case_id == "reviewed.1" and np.array_equal(saved.label.array, reject_lesion(phantom()[1], 2).array)
    assert np.array_equal(saved.image.array, phantom()[0].array)


@pytest.mark.parametrize("edit", [True, False], ids=["edited", "untouched"])
def test_without_a_model_the_seg_names_the_input_segs_algorithm_or_a_manual_review(tmp_path: Path,
                                                                                     edit: bool) -> None:
    import highdicom

    from LiverResUNetLib.dicomseg.writer import SERIES_DESCRIPTION, write_seg
    from LiverResUNetLib.io.dicom_series import find_series, read_series_headers
    from review_fixture import CT_FOLDER, fixture_labels, write_fixture_segmentation

    def saved_seg(segmentation: Path, output: Path) -> highdicom.seg.Segmentation:
        case = ReviewCase.open(slicer.vtkMRMLScene(), CT_FOLDER, segmentation, output)
        if edit:
            case.reject(1)
        return highdicom.seg.segread(str(case.save().dicom_seg))

    manual = saved_seg(write_fixture_segmentation(tmp_path), tmp_path / "manual")  # a label map: no provenance
    assert {str(segment.SegmentAlgorithmType) for segment in manual.SegmentSequence} == {"MANUAL"}
    assert not any("SegmentAlgorithmName" in segment or "SegmentationAlgorithmIdentificationSequence" in segment
                   for segment in manual.SegmentSequence), "no algorithm it cannot be shown to come from"
    assert manual.SeriesDescription == f"{SERIES_DESCRIPTION} (manual review)"
    assert manual.DeviceSerialNumber == "manual review" and manual.ContentDescription.endswith("manual review")

    stack, series_uid, _ = read_series_headers(find_series(CT_FOLDER)[0].files)
    card = {"software": {"liverresunet": "9.9"}, "name": "the model that made the input SEG"}
    write_seg(fixture_labels(), stack, series_uid, card, tmp_path / "input.dcm")
    model_made = highdicom.seg.segread(str(tmp_path / "input.dcm"))
    carried = saved_seg(tmp_path / "input.dcm", tmp_path / "carried")
    [identification] = carried.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence
    [source] = model_made.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence
    assert (identification.AlgorithmName, identification.AlgorithmVersion) == (source.AlgorithmName,
                                                                              source.AlgorithmVersion)
    assert identification.AlgorithmVersion.startswith("9.9 model ")
    assert carried.SeriesDescription == model_made.SeriesDescription, "still this model's: segment skips it"
    assert carried.DeviceSerialNumber == model_made.DeviceSerialNumber
    kinds = {str(segment.SegmentAlgorithmType) for segment in carried.SegmentSequence}
    assert kinds == ({"SEMIAUTOMATIC"} if edit else {"AUTOMATIC"})
    if edit:  # a corrected SEG saved again untouched stays corrected
        edit = False
        again = saved_seg(tmp_path / "carried" / "segmentation.dcm", tmp_path / "again")
        assert {str(segment.SegmentAlgorithmType) for segment in again.SegmentSequence} == {"SEMIAUTOMATIC"}
