"""Label map <-> segmentation node, with the segments a radiologist expects to see and edit.

A label Volume (0 background, 1 liver, 2 tumor) becomes the segments "Liver" and "Liver tumor", each with its
standard terminology entry (DICOM master list) and colour, sharing one binary-labelmap layer on the input's
grid, plus a closed-surface representation for the 3D view. Everything here works on nodes that are not (yet)
in a scene, so a result can be built completely before the scene sees any of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from LiverResUNetLib.dicomseg.codes import segment_role
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.scene.volume_nodes import ijk_to_ras, vtk_matrix
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

BINARY_LABELMAP = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
CLOSED_SURFACE = slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()


@dataclass(frozen=True)
class SegmentSpec:
    """How one label of the label map appears as a segment."""

    segment_id: str
    name: str
    label: int
    color: tuple[int, int, int]  # RGB 0-255
    terminology: str


LIVER_SEGMENT = SegmentSpec(
    "Liver", "Liver", LIVER, (221, 130, 101),
    "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^"
    "~Anatomic codes - DICOM master list~^^~^^")
# The master list gives "Neoplasm" no colour; this is the one it gives "Mass" in the same category.
TUMOR_SEGMENT = SegmentSpec(
    "LiverTumor", "Liver tumor", TUMOR, (144, 238, 144),
    "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Altered Structure"
    "~SCT^108369006^Neoplasm~^^~Anatomic codes - DICOM master list~SCT^10200004^Liver~^^")
SEGMENTS = (LIVER_SEGMENT, TUMOR_SEGMENT)

_SURFACE_RULES = ("vtkBinaryLabelmapToClosedSurfaceConversionRule", "vtkClosedSurfaceToBinaryLabelmapConversionRule",
                  "vtkClosedSurfaceToFractionalLabelmapConversionRule",
                  "vtkFractionalLabelmapToClosedSurfaceConversionRule")


def register_surface_converters() -> None:
    """Make closed surfaces computable outside the Slicer application.

    Inside Slicer the Segmentations module has registered these rules at start-up, so nothing is added (a
    registration at import would come first and be repeated by that module). Each vtkSegmentation copies the
    factory's rules when it is created: call this before creating one that needs surfaces.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    registered = {rule.GetClassName() for rule in factory.GetConverterRules()}
    for class_name in _SURFACE_RULES:
        if class_name not in registered:
            factory.RegisterConverterRule(getattr(slicer, class_name)())


def oriented_image(volume: Volume, array: np.ndarray | None = None) -> slicer.vtkOrientedImageData:
    """A vtkOrientedImageData on ``volume``'s grid holding ``array`` (default: no voxels, geometry only)."""
    image = slicer.vtkOrientedImageData()
    k, j, i = volume.shape
    image.SetExtent(0, i - 1, 0, j - 1, 0, k - 1)
    image.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras(volume)))
    if array is not None:
        scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
        # vtkImageData's own name for its scalars: QuantitativeReporting's SEG exporter takes a labelmap without an
        # "ImageScalars" array for an empty segment (and refuses to export a segmentation of only those).
        scalars.SetName("ImageScalars")
        image.GetPointData().SetScalars(scalars)
    return image


def labels_to_segmentation(labels: Volume, closed_surface: bool = True) -> slicer.vtkMRMLSegmentationNode:
    """A new segmentation node, outside any scene, holding a label Volume as segments.

    "Liver" (label 1) and "Liver tumor" (label 2) are both present, even when empty, so that the radiologist can
    paint into them; they do not overlap ("Liver" is the tissue around the tumors, the organ is both together,
    as the measurements count it). The reference geometry is the label map's grid.
    """
    register_surface_converters()
    segmentation_node = slicer.vtkMRMLSegmentationNode()
    layer = oriented_image(labels, np.asarray(labels.array, dtype=np.uint8))
    segmentation = segmentation_node.GetSegmentation()
    segmentation.SetSourceRepresentationName(BINARY_LABELMAP)
    segmentation.SetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
                                        slicer.vtkSegmentationConverter.SerializeImageGeometry(layer))
    for spec in SEGMENTS:
        segment = slicer.vtkSegment()
        segment.SetName(spec.name)
        segment.SetColor(*(channel / 255.0 for channel in spec.color))
        segment.SetTag(segment.GetTerminologyEntryTagName(), spec.terminology)
        segment.SetLabelValue(spec.label)
        segment.AddRepresentation(BINARY_LABELMAP, layer)  # one shared layer, told apart by label value
        segmentation.AddSegment(segment, spec.segment_id)
    if closed_surface:
        add_closed_surfaces(segmentation_node)
    return segmentation_node


def add_closed_surfaces(segmentation_node: slicer.vtkMRMLSegmentationNode) -> None:
    """Compute the 3D surfaces of a segmentation made by :func:`labels_to_segmentation`."""
    if not segmentation_node.GetSegmentation().CreateRepresentation(CLOSED_SURFACE):
        raise RuntimeError("the closed-surface representation could not be computed")


def add_closed_surface(segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str) -> None:
    """Compute the 3D surface of one segment, the same one :func:`add_closed_surfaces` gives it.

    So that a caller that must stay responsive (the module's Apply) can stop between segments: VTK keeps Python's
    lock while it converts, so the conversion cannot move to a thread. The segment is converted on a copy in a
    segmentation of its own (with the same conversion parameters) and the surface added to the original.
    """
    segmentation = segmentation_node.GetSegmentation()
    single = slicer.vtkSegmentation()
    single.SetSourceRepresentationName(segmentation.GetSourceRepresentationName())
    single.CopyConversionParameters(segmentation)
    single.CopySegmentFromSegmentation(segmentation, segment_id)
    if not single.CreateRepresentation(CLOSED_SURFACE):
        raise RuntimeError(f"the closed-surface representation of {segment_id} could not be computed")
    surface = single.GetSegment(segment_id).GetRepresentation(CLOSED_SURFACE)
    segmentation.GetSegment(segment_id).AddRepresentation(CLOSED_SURFACE, surface)


def _terminology_codes(segment: slicer.vtkSegment) -> tuple[str, str]:
    """(type code, anatomic region code) of a segment's terminology entry; '' where absent."""
    tag = vtk.reference("")
    fields = tag.get().split("~") if segment.GetTag(segment.GetTerminologyEntryTagName(), tag) else []

    def code(index: int) -> str:
        parts = fields[index].split("^") if len(fields) > index else []
        return parts[1] if len(parts) > 2 else ""

    return code(2), code(5)


def segment_roles(segmentation_node: slicer.vtkMRMLSegmentationNode) -> tuple[list[str], list[str]]:
    """IDs of the segments that are liver and that are liver tumor (``dicomseg.codes.segment_role`` decides),
    so that segmentations made elsewhere with a generic terminology are understood too."""
    segmentation = segmentation_node.GetSegmentation()
    roles: dict[int, list[str]] = {LIVER: [], TUMOR: []}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        role = segment_role(*_terminology_codes(segment), segment.GetName())
        if role is not None:
            roles[role].append(segmentation.GetNthSegmentID(index))
    return roles[LIVER], roles[TUMOR]


def _merged_labelmap(segmentation_node: slicer.vtkMRMLSegmentationNode, segment_ids: Sequence[str],
                     label_values: Sequence[int], geometry: slicer.vtkOrientedImageData | None = None) -> np.ndarray:
    """Segments painted in order (later ones win) on ``geometry`` (default: the segmentation's reference
    geometry) as an array ``[k, j, i]``."""
    ids, values = vtk.vtkStringArray(), vtk.vtkIntArray()
    for segment_id, value in zip(segment_ids, label_values):
        ids.InsertNextValue(segment_id)
        values.InsertNextValue(value)
    merged = slicer.vtkOrientedImageData()
    if not segmentation_node.GenerateMergedLabelmapForAllSegments(
            merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, geometry, ids, values):
        raise input_error(segmentation_node.GetName(), "its segments could not be exported to a label map")
    i, j, k = merged.GetDimensions()
    return numpy_support.vtk_to_numpy(merged.GetPointData().GetScalars()).reshape(k, j, i)


def segment_mask(segmentation_node: slicer.vtkMRMLSegmentationNode, segment_id: str,
                 reference: Volume) -> np.ndarray:
    """One segment's voxels as a boolean array ``[k, j, i]`` on ``reference``'s grid (a copy)."""
    return _merged_labelmap(segmentation_node, [segment_id], [1], oriented_image(reference)) > 0


def segmentation_to_labels(segmentation_node: slicer.vtkMRMLSegmentationNode, reference: Volume) -> Volume:
    """The label Volume (uint8 0/1/2) of a segmentation on ``reference``'s grid: liver segments 1, tumor 2.

    Tumor is painted last, so a tumor drawn over the liver stays tumor.
    """
    liver, tumor = segment_roles(segmentation_node)
    if not liver and not tumor:
        raise input_error(segmentation_node.GetName(), 'no segment is a liver or a liver tumor (expected segments '
                                                       '"Liver" and "Liver tumor" or their terminology)')
    array = _merged_labelmap(segmentation_node, liver + tumor, [LIVER] * len(liver) + [TUMOR] * len(tumor),
                             oriented_image(reference))
    if array.shape != reference.shape:
        raise input_error(segmentation_node.GetName(), f"exported grid {array.shape} differs from the reference "
                                                       f"grid {reference.shape}")
    return reference.with_array(array.astype(np.uint8), source=segmentation_node.GetName())


def content_fingerprint(segmentation_node: slicer.vtkMRMLSegmentationNode) -> str:
    """A digest of every segment's ID and voxels on the reference grid: it changes with any edit."""
    digest = hashlib.sha256()
    segmentation = segmentation_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        digest.update(segment_id.encode() + b"\0")
        digest.update(np.packbits(_merged_labelmap(segmentation_node, [segment_id], [1]) > 0).tobytes())
    return digest.hexdigest()
