"""The module's "Export to DICOM": a segmentation of a CT loaded from Slicer's DICOM database goes back into that
database as a DICOM SEG of the CT's series.

Real MRML (slicer-core), the real CT series of Testing/Data and the real writers; the DICOM database is a stand-in
with the ``ctkDICOMDatabase`` methods the export calls, and QuantitativeReporting's exporter a stand-in with the
methods of its ``DICOMSegmentationExporter`` that writes what dcmqi wrote for this very series.
"""

import shutil
import tempfile

import numpy as np
import pydicom
import pytest
import slicer
import vtk

from LiverResUNetLib.dicomseg.reader import read_seg_labels
from LiverResUNetLib.dicomseg.writer import seg_series_description
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.dicom_series import find_series, read_series
from LiverResUNetLib.model.model_file import read_card
from LiverResUNetLib.scene.files import read_dicom_series_node
from LiverResUNetLib.scene.logic import SegmentLiverLogic
from LiverResUNetLib.scene.node_attributes import FINGERPRINT_ATTRIBUTE, INSTANCE_UIDS_ATTRIBUTE
from LiverResUNetLib.scene.segmentation_nodes import content_fingerprint, labels_to_segmentation
from LiverResUNetLib.scene.volume_nodes import node_to_volume
from LiverResUNetLib.volume import LIVER, TUMOR


class DicomDatabase:
    """``ctkDICOMDatabase`` as the export uses it: ``isOpen``, ``fileForInstance``, and ``insert`` with
    storeFile=True copying the file into the database's own folder."""

    def __init__(self, folder, files):
        self.isOpen, self.folder, self.stored = True, folder, []
        folder.mkdir()
        self.files = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): str(path) for path in files}

    def fileForInstance(self, uid):
        return self.files.get(uid, "")

    def insert(self, filePath, storeFile=True, generateThumbnail=True, createHierarchy=True,
               destinationDirectoryName=""):
        assert storeFile, "the SEG is written in a temporary folder: the database must keep a copy"
        stored = self.folder / f"{len(self.stored)}.dcm"
        shutil.copyfile(filePath, stored)
        self.files[str(pydicom.dcmread(stored, stop_before_pixels=True).SOPInstanceUID)] = str(stored)
        self.stored.append(stored)


@pytest.fixture
def loaded_ct(real_fixtures, tmp_path, monkeypatch):
    """The real 3-slice CT series as Slicer's DICOM module leaves it: a volume node carrying its instance UIDs,
    the series in the database, and a liver/tumor segmentation made on it. Temporary files go to tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    series = find_series(real_fixtures / "dcmqi-ct-3slice")[0]
    scene = slicer.vtkMRMLScene()
    volume = read_dicom_series_node(scene, series)
    uids = [str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in series.files]
    volume.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, " ".join(reversed(uids)))  # any order: the headers decide
    grid = node_to_volume(volume)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    labels[:, 100:300, 150:350] = LIVER
    labels[1:, 180:220, 200:260] = TUMOR
    segmentation = labels_to_segmentation(grid.with_array(labels), closed_surface=False)
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segmentation.SetAttribute(FINGERPRINT_ATTRIBUTE, content_fingerprint(segmentation))
    database = DicomDatabase(tmp_path / "database", series.files)
    return SegmentLiverLogic(scene), volume, segmentation, labels, database, series


def leftovers(tmp_path):
    return list((tmp_path / "temporary").iterdir())


def test_export_stores_a_seg_of_the_loaded_series_that_reads_back_identical(loaded_ct, tiny_model_path, tmp_path):
    logic, volume, segmentation, labels, database, series = loaded_ct
    exported = logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    assert exported.writer == "highdicom" and len(database.stored) == 1
    seg = pydicom.dcmread(database.stored[0])
    ct = read_series(series.files)
    assert seg.Modality == "SEG" and seg.SeriesInstanceUID == exported.series_uid
    assert seg.StudyInstanceUID == ct.metadata["study_uid"] and seg.PatientID == ct.metadata["patient_id"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.metadata["series_uid"]
    assert seg.SeriesDescription == seg_series_description(read_card(tiny_model_path))
    np.testing.assert_array_equal(read_seg_labels(database.stored[0], ct).array, labels)
    assert segment_algorithms(database.stored[0]) == [("AUTOMATIC", "LiverResUNet")] * 2
    assert leftovers(tmp_path) == [], "the temporary SEG file is removed once the database holds its copy"


def test_a_corrected_segmentation_is_exported_with_the_corrections(loaded_ct, tiny_model_path):
    logic, volume, segmentation, labels, database, series = loaded_ct
    corrected = labels.copy()
    corrected[0, 10:40, 10:40] = TUMOR
    ct_grid = node_to_volume(volume)
    segmentation.GetSegmentation().DeepCopy(
        labels_to_segmentation(ct_grid.with_array(corrected), False).GetSegmentation())
    logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    np.testing.assert_array_equal(read_seg_labels(database.stored[0], read_series(series.files)).array, corrected)
    assert segment_algorithms(database.stored[0]) == [("SEMIAUTOMATIC", "LiverResUNet")] * 2, \
        "corrected by a reader: no longer the algorithm's alone, though still made with it"


def segment_algorithms(path):
    """(SegmentAlgorithmType, SegmentAlgorithmName) of each segment of a SEG file, read back with highdicom."""
    import highdicom

    seg = highdicom.seg.segread(path)
    return [(description.SegmentAlgorithmType, description.SegmentAlgorithmName)
            for description in seg.SegmentSequence]


def segment_tag(segment, name):
    """A segment's tag as QuantitativeReporting reads it (``GetTag(name, vtk.mutable(""))``); None when unset."""
    value = vtk.reference("")
    return value.get() if segment.GetTag(name, value) else None


class QuantitativeReportingExporter:
    """QuantitativeReporting's ``DICOMSegmentationExporter`` as its source defines it (QIICR/QuantitativeReporting,
    DICOMPlugins/DICOMSegmentationPlugin.py, the version that runs dcmqi's itkimage2segimage as a subprocess, read
    on 2026-12-06), up to the dcmqi call: every check it makes before writing is made here the same way, then the
    SEG dcmqi wrote for this very series is copied. What the real class does:

    - ``__init__(segmentationNode, contentCreatorName=None)``; ``cleanup()`` removes its temporary folder;
    - ``export(outputDirectory, segFileName, metadata, segmentIDs=None, skipEmpty=False)``: ``metadata`` updates
      the series attributes, missing ones get defaults; a segment is empty when its binary labelmap has no
      "ImageScalars" array or that array's range is (0, 0); some empty and not ``skipEmpty``:
      EmptySegmentsFoundError; all empty: NoNonEmptySegmentsFoundError;
    - each segment's "DICOM.SegmentAlgorithmType" tag (MANUAL when unset) must be MANUAL, SEMIAUTOMATIC or
      AUTOMATIC, and a non-manual one needs "DICOM.SegmentAlgorithmName" (ValueError otherwise);
    - the CT is the segmentation's reference-geometry volume (ValueError without one), its files those of its
      "DICOM.instanceUIDs" in ``slicer.dicomDatabase`` (ValueError when any is missing).
    """

    made = []

    class EmptySegmentsFoundError(ValueError):
        pass

    class NoNonEmptySegmentsFoundError(ValueError):
        pass

    def __init__(self, segmentationNode, contentCreatorName=None):
        self.segmentationNode, self.cleaned, self.calls = segmentationNode, False, []
        self.made.append(self)

    @staticmethod
    def is_segment_empty(segment):
        labelmap = segment.GetRepresentation(slicer.vtkSegmentationConverter.
                                             GetSegmentationBinaryLabelmapRepresentationName())
        scalars = labelmap.GetPointData().GetArray("ImageScalars")
        return scalars is None or scalars.GetValueRange() == (0, 0)

    def export(self, outputDirectory, segFileName, metadata, segmentIDs=None, skipEmpty=False):
        segmentation = self.segmentationNode.GetSegmentation()
        segment_ids = segmentIDs or [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
        non_empty = [segment_id for segment_id in segment_ids
                     if not self.is_segment_empty(segmentation.GetSegment(segment_id))]
        if not skipEmpty and non_empty and len(non_empty) != len(segment_ids):
            raise self.EmptySegmentsFoundError("Empty segments found in segmentation.")
        if not non_empty:
            raise self.NoNonEmptySegmentsFoundError("No non empty segments found.")
        tags = []
        for segment_id in non_empty:
            segment = segmentation.GetSegment(segment_id)
            algorithm_type = segment_tag(segment, "DICOM.SegmentAlgorithmType") or "MANUAL"
            algorithm_name = segment_tag(segment, "DICOM.SegmentAlgorithmName")
            if algorithm_type not in ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC"):
                raise ValueError(f"Segment {segment.GetName()} has invalid attribute for SegmentAlgorithmType.")
            if algorithm_type != "MANUAL" and not algorithm_name:
                raise ValueError(f"Segment {segment.GetName()} has missing SegmentAlgorithmName")
            tags.append((algorithm_type, algorithm_name))
        volume = self.segmentationNode.GetNodeReference(self.segmentationNode.GetReferenceImageGeometryReferenceRole())
        if not volume:
            raise ValueError("Referenced volume is not found for the segmentation.")
        uids = (volume.GetAttribute("DICOM.instanceUIDs") or "").split()
        if not uids:
            raise ValueError(f"VolumeNode {volume.GetName()} has no attribute DICOM.instanceUIDs")
        if not all(slicer.dicomDatabase.fileForInstance(uid) for uid in uids):
            raise ValueError("Referenced volume files were not found in the DICOM database")
        self.calls.append((metadata, skipEmpty, tags))
        shutil.copyfile(self.source, f"{outputDirectory}/{segFileName}")

    def cleanup(self):
        self.cleaned = True


def test_quantitative_reporting_exporter_is_used_when_installed(loaded_ct, tiny_model_path, tmp_path,
                                                                 real_fixtures, monkeypatch):
    logic, volume, segmentation, labels, database, series = loaded_ct
    monkeypatch.setattr(slicer, "dicomDatabase", database, raising=False)  # where the exporter finds the CT
    QuantitativeReportingExporter.source = real_fixtures / "dcmqi-ct-3slice" / "liver_seg.dcm"
    QuantitativeReportingExporter.made = []
    exported = logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path,
                                           QuantitativeReportingExporter)
    assert exported.writer == "QuantitativeReporting"
    (exporter,) = QuantitativeReportingExporter.made
    metadata, skip_empty, tags = exporter.calls[0]
    assert metadata == {"SeriesDescription": seg_series_description(read_card(tiny_model_path))}
    assert skip_empty, "an empty tumor segment must not stop the export with a question"
    assert tags == [("AUTOMATIC", "LiverResUNet")] * 2
    assert exporter.cleaned and leftovers(tmp_path) == []
    assert exported.series_uid == pydicom.dcmread(QuantitativeReportingExporter.source).SeriesInstanceUID
    assert len(database.stored) == 1

    segmentation.GetSegmentation().RemoveSegment("LiverTumor")
    logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path, QuantitativeReportingExporter)
    assert QuantitativeReportingExporter.made[-1].calls[0][2] == [("SEMIAUTOMATIC", "LiverResUNet")], \
        "an edited result is no longer the algorithm's alone"


def test_quantitative_reporting_needs_the_ct_as_geometry_reference_else_highdicom_writes(loaded_ct, tiny_model_path):
    logic, volume, segmentation, labels, database, series = loaded_ct
    other = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "other")
    segmentation.SetNodeReferenceID(segmentation.GetReferenceImageGeometryReferenceRole(), other.GetID())
    QuantitativeReportingExporter.made = []
    exported = logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path,
                                           QuantitativeReportingExporter)
    assert exported.writer == "highdicom" and QuantitativeReportingExporter.made == []


def test_refusals_name_the_node_and_store_nothing(loaded_ct, tiny_model_path, tmp_path):
    logic, volume, segmentation, labels, database, series = loaded_ct
    uids = volume.GetAttribute(INSTANCE_UIDS_ATTRIBUTE)
    volume.RemoveAttribute(INSTANCE_UIDS_ATTRIBUTE)
    with pytest.raises(InputError, match=f"^{volume.GetName()}: was not loaded from the DICOM database"):
        logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    volume.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, uids)
    first = uids.split()[0]
    original = database.files.pop(first)
    with pytest.raises(InputError, match="1 of its 3 DICOM files are no longer in the DICOM database"):
        logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    database.files[first] = original
    transform = logic.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    segmentation.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(InputError, match="not under the same transform"):
        logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    segmentation.SetAndObserveTransformNodeID(None)
    database.isOpen = False
    with pytest.raises(InputError, match="DICOM database is not open"):
        logic.exportToDicomDatabase(segmentation, volume, database, tiny_model_path)
    assert database.stored == [] and leftovers(tmp_path) == []
