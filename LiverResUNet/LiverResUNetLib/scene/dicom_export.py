"""A segmentation of a CT loaded from Slicer's DICOM database, stored back into that database as a DICOM SEG.

Slicer's DICOM module then shows the SEG under the CT's study and can send it to the PACS. The CT's files are
found from the instance UIDs that Slicer's DICOM volume plugin records on the volume node it loads, through the
database's ``fileForInstance`` (``ctkDICOMDatabase``). Two writers: QuantitativeReporting's
``DICOMSegmentationExporter`` (what Slicer's own DICOM export uses) when that extension is installed and the
segmentation's geometry comes from the CT, otherwise ``dicomseg.writer`` (highdicom). Either writes into a
temporary folder; ``database.insert`` stores a copy in the database and the folder is removed: nothing is left
behind, and a failed export adds nothing to the database.
"""

from __future__ import annotations

import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from LiverResUNetLib.errors import input_error
from LiverResUNetLib.scene.node_attributes import INSTANCE_UIDS_ATTRIBUTE, is_unedited_result
from LiverResUNetLib.scene.segmentation_nodes import segment_roles, segmentation_to_labels
from LiverResUNetLib.volume import Volume

if typing.TYPE_CHECKING:
    import slicer

SEG_FILE_NAME = "LiverResUNet-SEG.dcm"
ALGORITHM_NAME_TAG, ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmName", "DICOM.SegmentAlgorithmType"


@dataclass
class DicomExport:
    """What an export stored: the SEG's series UID, the writer used and its notes (e.g. a derived frame of
    reference)."""

    series_uid: str
    writer: str
    notes: list[str]


class DicomDatabase(Protocol):
    """What is used of Slicer's ``ctkDICOMDatabase`` (``slicer.dicomDatabase``)."""

    @property
    def isOpen(self) -> bool: ...

    def fileForInstance(self, sopInstanceUID: str) -> str: ...

    def insert(self, filePath: str, storeFile: bool, generateThumbnail: bool) -> Any: ...


class SegmentationExporter(Protocol):
    """What is used of QuantitativeReporting's ``DICOMSegmentationExporter``."""

    def export(self, outputDirectory: str, segFileName: str, metadata: dict[str, Any], skipEmpty: bool = False
               ) -> Any: ...

    def cleanup(self) -> None: ...


#: QuantitativeReporting's exporter class: made from the segmentation node it exports.
ExporterClass = Callable[["slicer.vtkMRMLSegmentationNode"], SegmentationExporter]


def source_files(volume_node: slicer.vtkMRMLScalarVolumeNode, database: DicomDatabase | None) -> list[str]:
    """The files of the DICOM series ``volume_node`` was loaded from, as ``database`` stores them.

    Raises:
        InputError: the volume was not loaded from the DICOM database, or some of its files are no longer there.
    """
    if database is None or not database.isOpen:
        raise input_error(volume_node.GetName(), "Slicer's DICOM database is not open (open the DICOM module)")
    uids = (volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if not uids:
        raise input_error(volume_node.GetName(), "was not loaded from the DICOM database, so a DICOM SEG cannot "
                                                 "reference it: load the CT series from the DICOM database")
    files = [database.fileForInstance(uid) for uid in uids]
    missing = sum(1 for path in files if not path or not Path(path).is_file())
    if missing:
        raise input_error(volume_node.GetName(), f"{missing} of its {len(files)} DICOM files are no longer in the "
                                                 "DICOM database")
    return files


def _check_same_space(segmentation_node: slicer.vtkMRMLSegmentationNode,
                      volume_node: slicer.vtkMRMLScalarVolumeNode) -> None:
    """A SEG is in the CT's own coordinates: refuse a segmentation placed under another transform."""
    if segmentation_node.GetTransformNodeID() != volume_node.GetTransformNodeID():
        raise input_error(segmentation_node.GetName(), f"is not under the same transform as {volume_node.GetName()}: "
                                                       "harden or remove the transforms before exporting")


def _stored_series_uid(database: DicomDatabase, path: Path) -> str:
    """Store a copy of ``path`` in ``database``; the SEG's SeriesInstanceUID."""
    import pydicom

    series_uid = str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
    database.insert(str(path), True, True)
    return series_uid


def export_with_highdicom(segmentation_node: slicer.vtkMRMLSegmentationNode,
                          volume_node: slicer.vtkMRMLScalarVolumeNode, card: dict[str, Any],
                          database: DicomDatabase) -> DicomExport:
    """Write the segmentation with ``dicomseg.writer`` on the CT series' own grid; store it in ``database``.

    Args:
        segmentation_node: holds the segments "Liver" and "Liver tumor" (or segments of that terminology).
        volume_node: the CT as Slicer's DICOM module loaded it.
        card: the model card (the SEG's algorithm identification and series description).
            The segments are SEMIAUTOMATIC once the result was edited (``node_attributes.is_unedited_result``).
        database: Slicer's ``ctkDICOMDatabase`` (``slicer.dicomDatabase``).
    """
    from LiverResUNetLib.dicomseg.writer import write_seg
    from LiverResUNetLib.io.dicom_series import read_series_headers

    _check_same_space(segmentation_node, volume_node)
    stack, series_uid, _ = read_series_headers(source_files(volume_node, database))
    shape = (len(stack.headers), int(stack.headers[0].Rows), int(stack.headers[0].Columns))
    grid = Volume(np.zeros(shape, dtype=np.uint8), stack.spacing, stack.origin, stack.direction)
    labels = segmentation_to_labels(segmentation_node, grid)
    with tempfile.TemporaryDirectory(prefix="LiverResUNet-SEG-") as folder:
        path = Path(folder) / SEG_FILE_NAME
        notes = write_seg(labels, stack, series_uid, card, path, edited=not is_unedited_result(segmentation_node))
        return DicomExport(_stored_series_uid(database, path), "highdicom", notes)


def export_with_quantitative_reporting(exporter_class: ExporterClass,
                                       segmentation_node: slicer.vtkMRMLSegmentationNode,
                                       volume_node: slicer.vtkMRMLScalarVolumeNode, card: dict[str, Any],
                                       database: DicomDatabase) -> DicomExport:
    """Write the segmentation with QuantitativeReporting's ``DICOMSegmentationExporter``; store it in ``database``.

    The exporter finds the CT through the segmentation's reference geometry node and its instance UIDs, and
    reads each segment's algorithm from the segment tags, which are set here: "AUTOMATIC" for a result this
    module wrote and nobody edited, "SEMIAUTOMATIC" once it was corrected. Empty segments are left out.
    """
    from LiverResUNetLib.dicomseg.provenance import ALGORITHM_NAME
    from LiverResUNetLib.dicomseg.writer import seg_series_description

    _check_same_space(segmentation_node, volume_node)
    source_files(volume_node, database)
    algorithm = "AUTOMATIC" if is_unedited_result(segmentation_node) else "SEMIAUTOMATIC"
    segmentation = segmentation_node.GetSegmentation()
    for segment_id in [segment_id for role in segment_roles(segmentation_node) for segment_id in role]:
        segment = segmentation.GetSegment(segment_id)
        segment.SetTag(ALGORITHM_NAME_TAG, ALGORITHM_NAME)
        segment.SetTag(ALGORITHM_TYPE_TAG, algorithm)
    exporter = exporter_class(segmentation_node)
    try:
        with tempfile.TemporaryDirectory(prefix="LiverResUNet-SEG-") as folder:
            exporter.export(folder, SEG_FILE_NAME, {"SeriesDescription": seg_series_description(card)},
                            skipEmpty=True)
            return DicomExport(_stored_series_uid(database, Path(folder) / SEG_FILE_NAME),
                               "QuantitativeReporting", [])
    finally:
        exporter.cleanup()


def export_to_dicom_database(segmentation_node: slicer.vtkMRMLSegmentationNode,
                             volume_node: slicer.vtkMRMLScalarVolumeNode, card: dict[str, Any],
                             database: DicomDatabase, exporter_class: ExporterClass | None = None) -> DicomExport:
    """Store the segmentation as a DICOM SEG of ``volume_node``'s series in Slicer's DICOM database.

    QuantitativeReporting's exporter (``exporter_class``; None when that extension is not installed) is used
    when the segmentation's geometry comes from ``volume_node``, as that exporter requires; highdicom otherwise.
    """
    reference = segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole())
    if exporter_class is not None and reference is not None and reference.GetID() == volume_node.GetID():
        return export_with_quantitative_reporting(exporter_class, segmentation_node, volume_node, card, database)
    return export_with_highdicom(segmentation_node, volume_node, card, database)
