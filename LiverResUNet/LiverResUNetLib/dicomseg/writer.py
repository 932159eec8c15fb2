"""Write a label map (0 background, 1 liver, 2 liver tumor) as a DICOM Segmentation of its CT series.

The SEG shares the CT's patient and study, starts a new series, references the CT series and every CT
instance, and holds one binary frame per non-empty slice and segment on the CT's exact grid ("Liver" and
"Liver tumor" with the codes of Slicer's terminology). The algorithm is identified from the model card, or from
the :class:`~LiverResUNetLib.dicomseg.provenance.Provenance` of a reviewed segmentation (MANUAL when it names none).
Some series (all of 3D-IRCADb-01) have no FrameOfReferenceUID, which the Segmentation IOD requires: the SEG
then gets one derived from the study and series UIDs, the same every time, and the writer says so.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from LiverResUNetLib import __version__
from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.dicomseg.codes import SEGMENT_CODES, Code
from LiverResUNetLib.dicomseg.highdicom_import import import_highdicom
from LiverResUNetLib.dicomseg.provenance import (
    AUTOMATIC,
    MANUAL,
    MANUFACTURER,
    SEMIAUTOMATIC,
    Provenance,
    of_card,
)
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.dicom_series import instance_identity
from LiverResUNetLib.io.slice_stack import SliceStack
from LiverResUNetLib.volume import Volume

CONTENT_LABEL = "LIVER_TUMOR"
SEG_SERIES_NUMBER_OFFSET = 1000
SERIES_DESCRIPTION = "LiverResUNet liver and tumor"
# Patient and study attributes highdicom copies from the CT (type 2: present, possibly empty, in a SEG).
PATIENT_STUDY_ATTRIBUTES = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                            "StudyID", "StudyDate", "StudyTime")


def seg_series_description(card: dict[str, Any] | Provenance) -> str:
    """The SEG series' description, which names the model (or the algorithm, or a manual review): how a PACS query
    tells this model's SEGs apart."""
    return f"{SERIES_DESCRIPTION} ({_provenance(card).label})"


def _provenance(card: dict[str, Any] | Provenance) -> Provenance:
    return card if isinstance(card, Provenance) else of_card(card)


def derived_frame_of_reference(header: Dataset) -> str:
    """A FrameOfReferenceUID for a series that has none, derived from its study and series UIDs (stable)."""
    return generate_uid(entropy_srcs=["LiverResUNet frame of reference", str(header.get("StudyInstanceUID", "")),
                                      str(header.get("SeriesInstanceUID", ""))])


def derived_study_uid(header: Dataset) -> str:
    """A StudyInstanceUID for a series whose study UID was emptied, derived from the patient and study (stable)."""
    return generate_uid(entropy_srcs=["LiverResUNet study"] + [_text(header, keyword) for keyword in (
        "PatientID", "PatientName", "StudyDate", "StudyTime", "StudyID", "AccessionNumber")])


def _source_headers(stack: SliceStack, series_uid: str, where: str) -> tuple[list[Dataset], list[str]]:
    """Copies of the CT headers to reference, completed where highdicom needs what the files lack; the notes.

    An emptied SOPClassUID / SOPInstanceUID is taken from the file meta header, an emptied SeriesInstanceUID is
    the one the series reader derived; a missing StudyInstanceUID or FrameOfReferenceUID is derived from the
    other identifying attributes (stable, so every SEG of the series shares it).

    Raises:
        InputError: a slice has no SOPInstanceUID anywhere (it could not be referenced).
    """
    first = stack.headers[0]
    notes: list[str] = []
    completed = []
    study = _text(first, "StudyInstanceUID")
    if not study:
        study = derived_study_uid(first)
        notes.append(f"the CT series has no StudyInstanceUID: the SEG's study is {study}, derived from the patient "
                     "and study attributes")
    if not _text(first, "SeriesInstanceUID"):
        notes.append(f"the CT series has no SeriesInstanceUID: the SEG references it as {series_uid}, derived "
                     "from its other series attributes")
    frame_of_reference = _text(first, "FrameOfReferenceUID")
    if not frame_of_reference:
        frame_of_reference = derived_frame_of_reference(first)
        notes.append(f"the CT series has no FrameOfReferenceUID (the Segmentation IOD requires one): the SEG uses "
                     f"{frame_of_reference}, derived from the study and series UIDs (the same for every SEG of "
                     "this series)")
    absent = [keyword for keyword in PATIENT_STUDY_ATTRIBUTES if keyword not in first]
    if absent:
        notes.append(f"the CT series has no {', '.join(absent)}: the SEG leaves them empty")
    for header in stack.headers:
        sop_class, sop_instance = instance_identity(header)
        if not sop_class or not sop_instance:
            raise input_error(where, f"{Path(header.filename).name} has no SOP Class or SOP Instance UID, so a "
                                     "DICOM SEG cannot reference it")
        reference = copy.deepcopy(header)
        reference.SOPClassUID, reference.SOPInstanceUID = sop_class, sop_instance
        reference.StudyInstanceUID, reference.SeriesInstanceUID = study, series_uid
        reference.FrameOfReferenceUID = frame_of_reference
        for keyword in absent:
            setattr(reference, keyword, "")
        completed.append(reference)
    return completed, notes


def _text(header: Dataset, keyword: str) -> str:
    return str(header.get(keyword) or "").strip()


def _code(highdicom: ModuleType, code: Code) -> Any:
    return highdicom.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _segment_descriptions(highdicom: ModuleType, provenance: Provenance, edited: bool) -> list[Any]:
    kind = provenance.algorithm_type(edited)
    algorithm = None if provenance.algorithm is None else highdicom.AlgorithmIdentificationSequence(
        name=provenance.algorithm, family=_code(highdicom, provenance.family), version=provenance.version)
    return [highdicom.seg.SegmentDescription(
        segment_number=codes.label, segment_label=codes.name,
        segmented_property_category=_code(highdicom, codes.category),
        segmented_property_type=_code(highdicom, codes.type),
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues[kind], algorithm_identification=algorithm,
        anatomic_regions=[_code(highdicom, codes.region)] if codes.region else None)
        for codes in SEGMENT_CODES]


def build_seg(labels: Volume, stack: SliceStack, series_uid: str, card: dict[str, Any] | Provenance,
              edited: bool = False) -> tuple[Dataset, list[str]]:
    """The SEG dataset of ``labels`` (a 0/1/2 Volume on the grid of ``stack``) and notes on what was done.

    Args:
        labels: the label map, indexed like the CT read from ``stack`` (``dicom_series.read_series``).
        stack: the CT series' ``slice_stack.SliceStack`` (``dicom_series.read_series_headers``).
        series_uid: the CT series' UID as ``read_series_headers`` gives it (derived where the files lack it).
        card: the model card (algorithm name and version, model identity), or the provenance of a reviewed
            segmentation that no model file describes (``provenance.of_seg``, ``provenance.MANUAL_PROVENANCE``).
        edited: a reader corrected the network's result: the segments are SEMIAUTOMATIC (still naming the
            model as their algorithm), not AUTOMATIC; MANUAL stays MANUAL.

    Raises:
        InputError: the label map is not on the series' grid, holds other values than 0/1/2, or highdicom
            cannot be used here (see ``highdicom_import``).
    """
    highdicom = import_highdicom()
    first = stack.headers[0]
    where = first.get("SeriesInstanceUID", "the CT series")
    if not stack.grid().same_grid(labels, tolerance=1e-3):
        raise input_error(where, f"the label map ({labels.shape}) is not on the grid of the CT series "
                                 f"({len(stack.headers)} slices of {first.Rows} x {first.Columns})")
    values = np.unique(labels.array)
    if not set(values.tolist()) <= {0, 1, 2}:
        raise input_error(where, f"the label map holds values {values.tolist()}; only 0, 1 and 2 are segments")
    headers, notes = _source_headers(stack, series_uid, where)
    provenance = _provenance(card)
    kind = provenance.algorithm_type(edited)
    made = {AUTOMATIC: "automatic", SEMIAUTOMATIC: "corrected by a reader", MANUAL: "manual review"}[kind]
    seg = highdicom.seg.Segmentation(
        source_images=headers, pixel_array=np.asarray(labels.array, dtype=np.uint8),
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(highdicom, provenance, edited), series_instance_uid=generate_uid(),
        series_number=(int(first.get("SeriesNumber") or 0) % 1000) + SEG_SERIES_NUMBER_OFFSET,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name="LiverResUNet 2D ResUNet", software_versions=__version__,
        device_serial_number=provenance.device_serial_number, content_label=CONTENT_LABEL,
        content_description=f"Liver and liver tumor, {made}", omit_empty_frames=True)
    seg.SeriesDescription = seg_series_description(provenance)
    return seg, notes


def write_seg(labels: Volume, stack: SliceStack, series_uid: str, card: dict[str, Any] | Provenance,
              path: str | Path, edited: bool = False) -> list[str]:
    """Write :func:`build_seg`'s SEG to ``path`` in one atomic step; returns the notes on what was done."""
    seg, notes = build_seg(labels, stack, series_uid, card, edited)
    with atomic_path(path) as temporary:
        seg.save_as(str(temporary))
    return notes
