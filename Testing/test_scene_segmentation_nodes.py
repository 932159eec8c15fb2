"""Label Volume <-> segmentation node on real MRML: segments, terminology, colours, surfaces, .seg.nrrd."""

import numpy as np
import pytest
import slicer
import vtk

from dicom_factory import rotation
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.scene.files import write_segmentation
from LiverResUNetLib.scene.segmentation_nodes import (
    CLOSED_SURFACE,
    LIVER_SEGMENT,
    TUMOR_SEGMENT,
    content_fingerprint,
    labels_to_segmentation,
    segment_roles,
    segmentation_to_labels,
)
from LiverResUNetLib.volume import Volume

DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([1.0, -1.0, -1.0]),
    "permuted": np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    "oblique": rotation(-30.0, 20.0),
}


def label_volume(direction=np.eye(3), tumor=True):
    """A liver block with (optionally) two tumors, on an anisotropic, asymmetric grid."""
    labels = np.zeros((6, 14, 16), np.uint8)
    labels[1:5, 2:12, 3:14] = 1
    if tumor:
        labels[2:4, 4:7, 5:8] = 2
        labels[3, 9, 11] = 2
    return Volume(labels, (0.7, 0.9, 2.5), (-30.0, 12.0, 80.0), direction)


def tag(segment):
    value = vtk.reference("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), value)
    return value.get()


def test_segments_have_names_terminology_colours_and_surfaces():
    node = labels_to_segmentation(label_volume())
    segmentation = node.GetSegmentation()
    assert [segmentation.GetNthSegmentID(i) for i in range(2)] == ["Liver", "LiverTumor"]
    for spec in (LIVER_SEGMENT, TUMOR_SEGMENT):
        segment = segmentation.GetSegment(spec.segment_id)
        assert segment.GetName() == spec.name
        assert segment.GetLabelValue() == spec.label
        np.testing.assert_allclose(segment.GetColor(), np.array(spec.color) / 255.0)
        assert tag(segment) == spec.terminology
        assert segment.GetRepresentation(CLOSED_SURFACE).GetNumberOfPoints() > 0
    assert "SCT^10200004^Liver" in tag(segmentation.GetSegment("Liver"))
    assert "SCT^108369006^Neoplasm" in tag(segmentation.GetSegment("LiverTumor"))
    assert segmentation.GetNumberOfLayers() == 1


@pytest.mark.parametrize("name", DIRECTIONS)
def test_label_map_round_trip_is_voxel_exact(name):
    labels = label_volume(DIRECTIONS[name])
    back = segmentation_to_labels(labels_to_segmentation(labels, closed_surface=False), labels)
    assert back.same_grid(labels)
    np.testing.assert_array_equal(back.array, labels.array)
    assert back.array.dtype == np.uint8


def test_no_tumor_still_gives_an_empty_tumor_segment_to_paint_into():
    labels = label_volume(tumor=False)
    node = labels_to_segmentation(labels, closed_surface=False)
    assert node.GetSegmentation().GetSegment("LiverTumor") is not None
    np.testing.assert_array_equal(segmentation_to_labels(node, labels).array, labels.array)


def test_export_to_another_grid_resamples_by_position():
    labels = label_volume()
    flipped = Volume(labels.array[::-1, :, ::-1].copy(), labels.spacing,
                     labels.ijk_to_lps()[:3, :] @ [labels.shape[2] - 1, 0, labels.shape[0] - 1, 1],
                     labels.direction @ np.diag([-1.0, 1.0, -1.0]))
    back = segmentation_to_labels(labels_to_segmentation(labels, closed_surface=False), flipped)
    np.testing.assert_array_equal(back.array, flipped.array)


def test_seg_nrrd_round_trip_keeps_names_terminology_colours_and_voxels(tmp_path):
    labels = label_volume(DIRECTIONS["oblique"])
    path = write_segmentation(labels_to_segmentation(labels), tmp_path / "result.seg.nrrd", labels)
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    for spec in (LIVER_SEGMENT, TUMOR_SEGMENT):
        segment = segmentation.GetSegment(spec.segment_id)
        assert segment.GetName() == spec.name
        assert tag(segment) == spec.terminology
        np.testing.assert_allclose(segment.GetColor(), np.array(spec.color) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(segmentation_to_labels(node, labels).array, labels.array)


def named_segmentation(names):
    node = slicer.vtkMRMLSegmentationNode()
    for name in names:
        node.GetSegmentation().AddEmptySegment(name.replace(" ", "_"), name)
    return node


def test_segments_made_elsewhere_are_recognised_by_name():
    node = named_segmentation(["liver", "livertumor01", "liverkyst", "Lesion 2", "portalvein"])
    assert segment_roles(node) == (["liver"], ["livertumor01", "Lesion_2"])


def test_terminology_overrides_the_name():
    node = labels_to_segmentation(label_volume(), closed_surface=False)
    node.GetSegmentation().GetSegment("LiverTumor").SetName("Segment_2")
    node.GetSegmentation().GetSegment("Liver").SetName("organ")
    assert segment_roles(node) == (["Liver"], ["LiverTumor"])


def test_a_segmentation_without_liver_segments_is_refused():
    with pytest.raises(InputError, match="Bones: no segment is a liver"):
        node = named_segmentation(["spine", "rib"])
        node.SetName("Bones")
        segmentation_to_labels(node, label_volume())


def test_tumor_painted_over_the_liver_stays_tumor():
    labels = label_volume()
    liver_only = labels.with_array((labels.array > 0).astype(np.uint8))
    node = labels_to_segmentation(liver_only, closed_surface=False)
    tumor = labels_to_segmentation(labels.with_array((labels.array == 2).astype(np.uint8) * 2), False)
    node.GetSegmentation().GetSegment("LiverTumor").DeepCopy(tumor.GetSegmentation().GetSegment("LiverTumor"))
    np.testing.assert_array_equal(segmentation_to_labels(node, labels).array, labels.array)


def test_fingerprint_follows_content_not_the_scene():
    labels = label_volume()
    node = labels_to_segmentation(labels, closed_surface=False)
    written = content_fingerprint(node)
    scene = slicer.vtkMRMLScene()
    scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    assert content_fingerprint(node) == written
    edited = labels.with_array(labels.array.copy())
    edited.array[0, 0, 0] = 2
    node.GetSegmentation().DeepCopy(labels_to_segmentation(edited, closed_surface=False).GetSegmentation())
    assert content_fingerprint(node) != written


def test_a_neoplasm_of_another_organ_is_not_a_liver_tumor():
    node = labels_to_segmentation(label_volume(), closed_surface=False)
    segment = node.GetSegmentation().GetSegment("LiverTumor")
    segment.SetTag(segment.GetTerminologyEntryTagName(),
                   TUMOR_SEGMENT.terminology.replace("SCT^10200004^Liver", "SCT^64033007^Kidney"))
    assert segment_roles(node) == (["Liver"], [])
