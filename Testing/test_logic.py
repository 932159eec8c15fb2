"""The module's GUI-free logic end to end on real MRML (slicer-core) with a real (tiny, untrained) network.

DICOM folder -> volume node -> process -> segmentation node whose exported label map equals the core's
prediction voxel for voxel on flipped, permuted and oblique grids; cancel and errors leave the scene as it was;
a segmentation edited by the radiologist is never overwritten.
"""

import numpy as np
import pytest
import slicer

from dicom_factory import phantom_hu, rotation, write_series
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.errors import Cancelled, InputError
from LiverResUNetLib.inference.postprocessing import PostprocessOptions
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.io.dicom_series import find_series, read_series
from LiverResUNetLib.model.model_file import load_model, read_card
from LiverResUNetLib.scene.files import read_dicom_series_node
from LiverResUNetLib.scene.logic import SegmentLiverLogic, SegmentOptions, describe_comparison, describe_model_card
from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation, segmentation_to_labels
from LiverResUNetLib.scene.volume_nodes import ijk_to_ras, node_to_volume, vtk_matrix
from LiverResUNetLib.volume import Volume
from scene_factory import add_volume_node

DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "oblique": rotation(20.0, 15.0),
}
RAW = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False,
                         min_tumor_mm3=0.0)


def ct_hu(shape=(6, 24, 28)):
    """Integer HU with liver-like and tumor-like values, so an untrained network still gives mixed labels."""
    return np.clip(phantom_hu(shape, low=-200, high=300), -1024, 3071).astype(np.int16)


def loaded_series(folder, scene, direction=np.eye(3), name="series"):
    write_series(folder, ct_hu(), direction=direction, series=name, description="CT abdomen")
    [series] = find_series(folder)
    return read_dicom_series_node(scene, series)


def node_ids(scene):
    return [scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())]


def raw_options(**changes):
    return SegmentOptions(postprocess=RAW, closedSurface=False, **changes)


@pytest.mark.parametrize("name", DIRECTIONS)
def test_result_equals_the_cores_prediction_voxel_for_voxel(tmp_path, tiny_model_path, name):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene, DIRECTIONS[name], name)
    segmentation = SegmentLiverLogic(scene).process(volume_node, tiny_model_path, "cpu", raw_options())
    exported = SegmentLiverLogic.labelVolume(segmentation, volume_node)
    expected = predict_volume(read_series(tmp_path), load_model(tiny_model_path), device="cpu", postprocess=RAW)
    assert exported.same_grid(expected, tolerance=1e-3)
    np.testing.assert_array_equal(exported.array, expected.array)
    assert len(np.unique(expected.array)) > 1, "a constant prediction would not test the geometry"


def test_result_has_segments_table_and_provenance(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    segmentation = logic.process(volume_node, tiny_model_path, "cpu")
    assert segmentation.GetName() == "CT abdomen liver segmentation"
    assert scene.GetNodeByID(segmentation.GetID()) is segmentation
    names = [segmentation.GetSegmentation().GetNthSegment(i).GetName() for i in range(2)]
    assert names == ["Liver", "Liver tumor"]
    assert segmentation.GetSegmentation().GetSegment("Liver").GetRepresentation("Closed surface") is not None
    assert segmentation.GetNodeReference(segmentation.GetReferenceImageGeometryReferenceRole()) is volume_node
    table = logic.resultsTable(segmentation)
    assert scene.GetNodeByID(table.GetID()) is table
    assert table.GetTable().GetValue(0, 0).ToString() == "Liver"
    assert segmentation.GetAttribute("LiverResUNet.Model") == str(tiny_model_path)


def test_progress_runs_from_zero_to_one(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    fractions = []
    SegmentLiverLogic(scene).process(volume_node, tiny_model_path, "cpu", raw_options(),
                                     progress=lambda fraction, message: fractions.append(fraction))
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


@pytest.mark.parametrize("cancel_at_call", [1, 3, -1])
def test_cancel_leaves_the_scene_as_it_was(tmp_path, tiny_model_path, cancel_at_call):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    calls = []
    logic.process(volume_node, tiny_model_path, "cpu", raw_options(), cancel=lambda: calls.append(1) and False)
    total = len(calls)
    stop_at = total if cancel_at_call == -1 else cancel_at_call  # -1: the very last check
    before = node_ids(scene)
    calls.clear()
    with pytest.raises(Cancelled):
        logic.process(volume_node, tiny_model_path, "cpu", raw_options(),
                      cancel=lambda: calls.append(1) or len(calls) >= stop_at)
    assert node_ids(scene) == before


def test_errors_leave_the_scene_as_it_was(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path / "ct", scene)
    logic = SegmentLiverLogic(scene)
    before = node_ids(scene)
    not_a_model = tmp_path / "notes.pth"
    not_a_model.write_text("not a model")
    for model in (not_a_model, tmp_path / "missing.pth"):
        with pytest.raises(InputError):
            logic.process(volume_node, model, "cpu", raw_options())
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    before = node_ids(scene)
    with pytest.raises(InputError, match="empty"):
        logic.process(empty, tiny_model_path, "cpu", raw_options())
    assert node_ids(scene) == before


def test_an_unedited_result_is_updated_in_place(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    first = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    old_table = logic.resultsTable(first)
    second = logic.process(volume_node, tiny_model_path, "cpu", raw_options(outputSegmentation=first))
    assert second is first
    assert scene.GetNodeByID(old_table.GetID()) is None
    assert scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 1


def edit(segmentation, reference):
    """What a radiologist's correction does: different voxels in the segments."""
    labels = segmentation_to_labels(segmentation, reference)
    labels.array[0] = 1
    segmentation.GetSegmentation().DeepCopy(labels_to_segmentation(labels, False).GetSegmentation())
    return labels


def test_an_edited_result_is_never_overwritten(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    first = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    corrected = edit(first, node_to_volume(volume_node))
    assert not logic.isOurUneditedResult(first)
    second = logic.process(volume_node, tiny_model_path, "cpu", raw_options(outputSegmentation=first))
    assert second is not first
    np.testing.assert_array_equal(logic.labelVolume(first, volume_node).array, corrected.array)
    assert logic.resultsTable(first) is not None  # the edited node keeps its table too


def test_replacing_an_edited_result_must_be_asked_for(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    first = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    predicted = logic.labelVolume(first, volume_node).array.copy()
    edit(first, node_to_volume(volume_node))
    again = logic.process(volume_node, tiny_model_path, "cpu",
                          raw_options(outputSegmentation=first, replaceEdited=True))
    assert again is first
    np.testing.assert_array_equal(logic.labelVolume(first, volume_node).array, predicted)


def test_a_segmentation_made_elsewhere_is_kept_and_an_empty_one_is_filled(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    manual = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "manual")
    manual.GetSegmentation().AddEmptySegment("liver", "liver")
    assert logic.process(volume_node, tiny_model_path, "cpu", raw_options(outputSegmentation=manual)) is not manual
    assert manual.GetSegmentation().GetNumberOfSegments() == 1
    empty = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "new")
    assert logic.process(volume_node, tiny_model_path, "cpu", raw_options(outputSegmentation=empty)) is empty


def test_result_follows_the_inputs_parent_transform(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(vtk_matrix([[0, -1, 0, 40.0], [1, 0, 0, -5.0], [0, 0, 1, 12.0], [0, 0, 0, 1]]))
    volume_node.SetAndObserveTransformNodeID(transform.GetID())
    logic = SegmentLiverLogic(scene)
    segmentation = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    assert segmentation.GetTransformNodeID() == transform.GetID()
    expected = predict_volume(read_series(tmp_path), load_model(tiny_model_path), device="cpu", postprocess=RAW)
    np.testing.assert_array_equal(logic.labelVolume(segmentation, volume_node).array, expected.array)
    geometry = segmentation.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    np.testing.assert_allclose(np.array(geometry.split(";")[:16], float).reshape(4, 4),
                               ijk_to_ras(node_to_volume(volume_node)), atol=1e-6)
    assert logic.isOurUneditedResult(segmentation)


def test_compare_with_reference_uses_the_evaluation_metrics(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path, scene)
    logic = SegmentLiverLogic(scene)
    segmentation = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    labels = logic.labelVolume(segmentation, volume_node)
    reference = labels_to_segmentation(labels, closed_surface=False)
    scene.AddNode(reference)
    same = logic.compareWithReference(segmentation, reference, volume_node)
    assert same["liver"]["dice"] == pytest.approx(1.0)
    assert np.trace(np.asarray(same["confusion_matrix"])) == labels.array.size
    shifted = labels.with_array(np.roll(labels.array, 3, axis=2))
    other = labels_to_segmentation(shifted, closed_surface=False)
    scene.AddNode(other)
    assert logic.compareWithReference(segmentation, other, volume_node)["liver"]["dice"] < 1.0
    text = describe_comparison(same)
    assert "Liver: Dice 1.000, HD95 0.0 mm" in text
    assert f"Lesions found: {same['lesions']['detected']} of {same['lesions']['reference_lesions']}" in text


def test_saved_corrected_case_is_a_training_case(tmp_path, tiny_model_path):
    scene = slicer.vtkMRMLScene()
    volume_node = loaded_series(tmp_path / "ct", scene)
    logic = SegmentLiverLogic(scene)
    segmentation = logic.process(volume_node, tiny_model_path, "cpu", raw_options())
    corrected = edit(segmentation, node_to_volume(volume_node))
    dataset = tmp_path / "dataset"
    assert logic.saveCorrectedCase(volume_node, segmentation, dataset, "clinic.1") == dataset
    logic.saveCorrectedCase(volume_node, segmentation, dataset, "clinic.2")
    logic.saveCorrectedCase(volume_node, segmentation, dataset, "clinic.1")
    sources = discover_cases(dataset)
    assert [source.case_id for source in sources] == ["clinic.2", "clinic.1"]
    case = sources[1].load()
    np.testing.assert_array_equal(case.label.array, corrected.array)
    np.testing.assert_array_equal(case.image.array, node_to_volume(volume_node).array)
    assert case.image.same_grid(node_to_volume(volume_node), tolerance=1e-4)


def test_saving_into_a_folder_that_is_not_a_dataset_is_refused(tmp_path):
    scene = slicer.vtkMRMLScene()
    ct = Volume(ct_hu())
    volume_node = add_volume_node(ct, scene, "CT")
    segmentation = labels_to_segmentation(ct.with_array(np.ones(ct.shape, np.uint8)), closed_surface=False)
    (tmp_path / "holiday.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="not a prepared dataset"):
        SegmentLiverLogic(scene).saveCorrectedCase(volume_node, segmentation, tmp_path, "x")
    assert [path.name for path in tmp_path.iterdir()] == ["holiday.jpg"]


def test_model_card_says_what_the_model_was_trained_on(tiny_model_path):
    card = read_card(tiny_model_path)
    assert "Untrained" in describe_model_card(card)
    card["training"] = {"data": "/data/ircadb", "epochs": 40, "split": {"train": ["a", "b", "c"], "val": ["d"]}}
    card["metrics"] = {"val_liver_dice": 0.9512, "val_tumor_dice": 0.6021, "epoch": 31}
    text = describe_model_card(card)
    assert "Trained on /data/ircadb (3 training, 1 validation cases), 40 epochs" in text
    assert "Validation Dice: liver 0.951, tumor 0.602" in text
    assert "window [-100.0, 400.0] HU" in text and "32 px" in text


def test_a_loaded_model_is_kept_while_the_file_is_unchanged(tiny_model_path):
    logic = SegmentLiverLogic(slicer.vtkMRMLScene())
    assert logic.loadModel(tiny_model_path) is logic.loadModel(tiny_model_path)
