"""Lesion review on slicer-core's real MRML: a results-table row jumps the slice views to its lesion; Reject and
Add lesion change the segmentation node exactly as the core's reject / grow change the label map."""

import numpy as np
import pytest
import slicer

from LiverResUNetLib.lesion_review import SeedOutsideLiver, grow_lesion, reject_lesion, review_summary
from LiverResUNetLib.scene.lesion_review import LesionReviewLogic
from LiverResUNetLib.scene.logic import RESULTS_TABLE_ROLE
from LiverResUNetLib.scene.results_table import lesion_of_row, table_rows
from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation, segmentation_to_labels
from LiverResUNetLib.scene.volume_nodes import ijk_to_ras, lps_to_ras, node_to_volume
from LiverResUNetLib.volume import Volume
from review_phantom import MISSED_LESION_SEED_KJI, phantom
from scene_factory import add_volume_node

FLIPPED = np.diag([-1.0, 1.0, -1.0])


def review_scene(direction: np.ndarray | None = None):
    """A scene with the phantom CT, its segmentation and results table, and the three slice views."""
    scene = slicer.vtkMRMLScene()
    ct, labels = phantom(direction)
    ct_node = add_volume_node(ct, scene, "CT")
    segmentation = labels_to_segmentation(labels, closed_surface=False)
    scene.AddNode(segmentation)
    segmentation.CreateDefaultDisplayNodes()
    logic = LesionReviewLogic(scene)
    logic.replaceResultsTable(segmentation, ct_node, labels)
    views = []
    for name in ("Red", "Yellow", "Green"):
        view = slicer.vtkMRMLSliceNode()
        view.SetLayoutName(name)
        scene.AddNode(view)
        views.append(view)
    return scene, logic, ct_node, segmentation, labels, views


def centre(view: slicer.vtkMRMLSliceNode) -> np.ndarray:
    matrix = view.GetSliceToRAS()
    return np.array([matrix.GetElement(row, 3) for row in range(3)])


def exported(segmentation: slicer.vtkMRMLSegmentationNode, ct_node: slicer.vtkMRMLScalarVolumeNode) -> Volume:
    return segmentation_to_labels(segmentation, node_to_volume(ct_node))


def test_a_lesion_row_centres_every_slice_view_on_its_lesion() -> None:
    scene, logic, _, segmentation, labels, views = review_scene()
    lesions = review_summary(labels).lesions
    for row, lesion in ((2, lesions[0]), (3, lesions[1])):
        assert logic.jumpToRow(segmentation, row) == lesion.number
        for view in views:
            assert centre(view) == pytest.approx(lps_to_ras(lesion.centroid_lps), abs=0.05)


def test_the_liver_and_all_tumors_rows_leave_the_views_where_they_are() -> None:
    _, logic, _, segmentation, _, views = review_scene()
    before = [centre(view) for view in views]
    assert logic.jumpToRow(segmentation, 0) is None and logic.jumpToRow(segmentation, 1) is None
    assert logic.jumpToRow(segmentation, 99) is None
    assert all(np.array_equal(centre(view), old) for view, old in zip(views, before))


def test_jump_follows_the_segmentations_parent_transform() -> None:
    scene, logic, ct_node, segmentation, labels, views = review_scene()
    transform = slicer.vtkMRMLLinearTransformNode()
    scene.AddNode(transform)
    matrix = transform.GetMatrixTransformToParent()
    matrix.SetElement(0, 3, 100.0)
    transform.SetMatrixTransformToParent(matrix)
    segmentation.SetAndObserveTransformNodeID(transform.GetID())
    logic.jumpToRow(segmentation, 2)
    expected = np.array(lps_to_ras(review_summary(labels).lesions[0].centroid_lps)) + [100.0, 0.0, 0.0]
    assert centre(views[0]) == pytest.approx(expected, abs=0.05)


def test_reject_removes_exactly_the_cores_lesion_and_updates_the_table() -> None:
    _, logic, ct_node, segmentation, labels, _ = review_scene()
    old_table = segmentation.GetNodeReference(RESULTS_TABLE_ROLE)
    result = logic.rejectLesion(segmentation, ct_node, 2)
    assert np.array_equal(result.array, reject_lesion(labels, 2).array)
    assert np.array_equal(exported(segmentation, ct_node).array, result.array)
    table = segmentation.GetNodeReference(RESULTS_TABLE_ROLE)
    assert table is not old_table and old_table.GetScene() is None  # the old table left the scene
    assert [row[0] for row in table_rows(table)[1:]] == ["Liver", "Liver tumors (all)", "Liver tumor 1"]
    assert lesion_of_row(table, 3) is None


@pytest.mark.parametrize("direction", [None, FLIPPED], ids=["identity", "flipped"])
def test_add_lesion_grows_the_cores_lesion_from_a_click_in_ras(direction: np.ndarray | None) -> None:
    _, logic, ct_node, segmentation, labels, _ = review_scene(direction)
    ct, _ = phantom(direction)
    k, j, i = MISSED_LESION_SEED_KJI
    click_ras = (ijk_to_ras(ct) @ [i, j, k, 1.0])[:3]
    result = logic.addLesionAt(segmentation, ct_node, tuple(click_ras))
    expected = grow_lesion(ct, labels, MISSED_LESION_SEED_KJI)
    assert np.array_equal(result.array, expected.array)
    assert np.array_equal(exported(segmentation, ct_node).array, expected.array)
    assert lesion_of_row(segmentation.GetNodeReference(RESULTS_TABLE_ROLE), 4) is not None  # three lesion rows


def test_a_click_outside_the_liver_changes_nothing() -> None:
    _, logic, ct_node, segmentation, labels, _ = review_scene()
    table = segmentation.GetNodeReference(RESULTS_TABLE_ROLE)
    with pytest.raises(SeedOutsideLiver):
        logic.addLesionAt(segmentation, ct_node, tuple(lps_to_ras((-39.0, -29.0, 10.0))))
    assert np.array_equal(exported(segmentation, ct_node).array, labels.array)
    assert segmentation.GetNodeReference(RESULTS_TABLE_ROLE) is table
