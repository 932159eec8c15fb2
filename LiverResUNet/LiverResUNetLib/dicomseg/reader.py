"""Read a DICOM Segmentation onto the grid of its CT as a label map (0 background, 1 liver, 2 liver tumor).

A SEG made anywhere (this project, Slicer, a PACS viewer, dcmqi) is accepted when it belongs to the CT: the
same series (when it names one) and frame of reference (when both have one), every frame on one of the
CT's slices with the CT's orientation, pixel size and matrix, every referenced instance one of the CT's.
Anything else is refused with the reason, never resampled. Segments are told apart by their codes (or
names, see ``codes.segment_role``); tumor is painted over liver. Only pydicom is needed (2.4 and 3.x).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from LiverResUNetLib.dicomseg.codes import segment_role
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
POSITION_TOLERANCE_MM = 0.01
ORIENTATION_TOLERANCE = 1e-4
SPACING_TOLERANCE = 1e-4


def is_seg_header(header: Dataset) -> bool:
    """True when a DICOM header is a Segmentation object."""
    return str(header.get("SOPClassUID", "")) == SEGMENTATION_STORAGE


def referenced_series_uids(seg: Dataset) -> list[str]:
    """The SeriesInstanceUIDs a SEG says it was derived from (may be empty)."""
    return [str(item.get("SeriesInstanceUID", "")) for item in seg.get("ReferencedSeriesSequence", [])
            if item.get("SeriesInstanceUID")]


def _first_item(group: Dataset | None, keyword: str) -> Dataset | None:
    sequence = group.get(keyword) if group is not None else None
    return sequence[0] if sequence else None


def _frame_attribute(seg: Dataset, frame_group: Dataset | None, sequence: str, keyword: str) -> Any:
    """A functional-group attribute of one frame: per-frame first, then shared."""
    for group in (frame_group, _first_item(seg, "SharedFunctionalGroupsSequence")):
        item = _first_item(group, sequence)
        if item is not None and keyword in item:
            return item.get(keyword)
    return None


def _code_value(item: Dataset | None, keyword: str) -> str:
    code = _first_item(item, keyword)
    return str(code.get("CodeValue", "")) if code is not None else ""


def _segment_roles(seg: Dataset, where: Path) -> dict[int, int]:
    """{segment number: LIVER or TUMOR} for the segments that are liver or liver tumor."""
    roles: dict[int, int] = {}
    found = []
    for item in seg.get("SegmentSequence", []):
        region = _code_value(item, "AnatomicRegionSequence") or _code_value(
            _first_item(item, "SegmentedPropertyTypeCodeSequence"), "SegmentedPropertyTypeModifierCodeSequence")
        role = segment_role(_code_value(item, "SegmentedPropertyTypeCodeSequence"), region,
                            str(item.get("SegmentLabel", "")))
        found.append(f"{item.get('SegmentNumber')} '{item.get('SegmentLabel', '')}'")
        if role is not None:
            roles[int(item.SegmentNumber)] = role
    if not roles:
        raise input_error(where, "no segment of this DICOM SEG is a liver or a liver tumor (segments: "
                                 f"{', '.join(found) or 'none'})")
    return roles


def _check_belongs(seg: Dataset, ct: Volume, where: Path) -> None:
    """Refuse a SEG of another series or frame of reference than ``ct``'s (when both say which)."""
    series = ct.metadata.get("series_uid")
    referenced = referenced_series_uids(seg)
    if series and referenced and series not in referenced:
        raise input_error(where, f"this DICOM SEG was made from series {', '.join(referenced)}, not from the CT "
                                 f"series {series}")
    ct_frame, seg_frame = ct.metadata.get("frame_of_reference_uid"), str(seg.get("FrameOfReferenceUID", ""))
    if ct_frame and seg_frame and ct_frame != seg_frame:
        raise input_error(where, f"this DICOM SEG is in frame of reference {seg_frame}, the CT in {ct_frame}")


def _check_plane(seg: Dataset, frame_group: Dataset, ct: Volume, where: Path, number: int) -> None:
    rows, columns = int(seg.Rows), int(seg.Columns)
    if (rows, columns) != tuple(ct.shape[1:]):
        raise input_error(where, f"its frames are {rows} x {columns} pixels, the CT slices {ct.shape[1]} x "
                                 f"{ct.shape[2]}: another geometry")
    orientation = _frame_attribute(seg, frame_group, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _frame_attribute(seg, frame_group, "PixelMeasuresSequence", "PixelSpacing")
    if orientation is None or spacing is None:
        raise input_error(where, f"frame {number} has no plane orientation or pixel spacing")
    expected_orientation = np.concatenate([ct.direction[:, 0], ct.direction[:, 1]])
    if not np.allclose(np.asarray(orientation, dtype=float), expected_orientation, atol=ORIENTATION_TOLERANCE):
        raise input_error(where, f"frame {number} is oriented {list(map(float, orientation))}, the CT "
                                 f"{np.round(expected_orientation, 6).tolist()}: another geometry")
    # PixelSpacing is (between rows, between columns) = (dj, di).
    if not np.allclose(np.asarray(spacing, dtype=float), ct.pixel_spacing, atol=SPACING_TOLERANCE):
        raise input_error(where, f"frame {number} has pixels of {list(map(float, spacing))} mm, the CT "
                                 f"{list(ct.pixel_spacing)} mm: another geometry")


def _slice_index(seg: Dataset, frame_group: Dataset, ct: Volume, where: Path, number: int) -> int:
    """The CT slice a frame lies on, refusing a frame between or outside the CT's slices."""
    position = _frame_attribute(seg, frame_group, "PlanePositionSequence", "ImagePositionPatient")
    if position is None:
        raise input_error(where, f"frame {number} has no position")
    offset = np.asarray(position, dtype=float) - np.asarray(ct.origin)
    normal = ct.direction[:, 2]
    steps = float(offset @ normal) / ct.spacing[2]
    k = int(round(steps))
    off_grid = np.linalg.norm(offset - k * ct.spacing[2] * normal)
    if off_grid > POSITION_TOLERANCE_MM + 1e-3 * ct.spacing[2] or not 0 <= k < ct.shape[0]:
        raise input_error(where, f"frame {number} at {np.round(np.asarray(position, dtype=float), 3).tolist()} "
                                 f"does not lie on a slice of the CT ({ct.shape[0]} slices): a foreign frame or "
                                 "another geometry")
    return k


def _check_source(frame_group: Dataset, ct: Volume, k: int, where: Path, number: int) -> None:
    """Refuse a frame derived from an instance that is not the CT's slice at that place."""
    instances = ct.metadata.get("sop_instance_uids")
    derivation = _first_item(frame_group, "DerivationImageSequence")
    if not instances or derivation is None:
        return
    for source in derivation.get("SourceImageSequence", []):
        uid = str(source.get("ReferencedSOPInstanceUID", ""))
        if uid and uid != instances[k]:
            where_else = "another slice of the CT" if uid in instances else "an instance that is not in the CT series"
            raise input_error(where, f"frame {number} lies on CT slice {k + 1} but was derived from {where_else} "
                                     f"({uid}): missing or foreign frames")


def _frame_masks(seg: Dataset, where: Path) -> np.ndarray:
    """The frames as booleans ``[frame, row, column]``; fractional frames are inside above half the maximum."""
    kind = str(seg.get("SegmentationType", "")).upper()
    if kind not in ("BINARY", "FRACTIONAL"):
        raise input_error(where, f"segmentation type {kind or 'missing'} is not read here (BINARY or FRACTIONAL)")
    try:
        pixels = seg.pixel_array
    except Exception as error:  # decoders raise many types for truncated or corrupt pixel data
        raise input_error(where, f"its pixel data cannot be read: {error}") from error
    pixels = pixels.reshape((int(seg.get("NumberOfFrames") or 1), int(seg.Rows), int(seg.Columns)))
    if kind == "FRACTIONAL":
        return pixels > int(seg.get("MaximumFractionalValue") or 255) / 2
    return pixels != 0


def read_seg_labels(path: str | os.PathLike[str], ct: Volume) -> Volume:
    """The label map (uint8 Volume on ``ct``'s grid) of the DICOM SEG file ``path``.

    Args:
        path: a DICOM Segmentation file.
        ct: the CT Volume it must belong to; its metadata's series_uid, frame_of_reference_uid and
            sop_instance_uids (from ``dicom_series.read_series``) are checked when present.

    Raises:
        InputError: naming the file and the reason: not a readable SEG, another series or frame of reference,
            frames off the CT's slices or of another size, orientation or pixel size, frames derived from other
            instances, no liver or liver-tumor segment, unreadable pixel data.
    """
    path = Path(path)
    try:
        seg = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types for a damaged file
        raise input_error(path, f"cannot be read as DICOM: {error}") from error
    if not is_seg_header(seg):
        raise input_error(path, f"is not a DICOM SEG (its SOP class is {seg.get('SOPClassUID', 'missing')})")
    _check_belongs(seg, ct, path)
    roles = _segment_roles(seg, path)
    masks = _frame_masks(seg, path)
    groups = list(seg.get("PerFrameFunctionalGroupsSequence", []))
    if len(groups) != masks.shape[0]:
        raise input_error(path, f"it describes {len(groups)} frames but holds {masks.shape[0]}: missing frames")
    liver, tumor = np.zeros(ct.shape, dtype=bool), np.zeros(ct.shape, dtype=bool)
    for index, (group, mask) in enumerate(zip(groups, masks)):
        number = index + 1
        _check_plane(seg, group, ct, path, number)
        k = _slice_index(seg, group, ct, path, number)
        _check_source(group, ct, k, path, number)
        segment = _frame_attribute(seg, group, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        role = roles.get(int(segment)) if segment is not None else None
        if role == LIVER:
            liver[k] |= mask
        elif role == TUMOR:
            tumor[k] |= mask
    labels = np.zeros(ct.shape, dtype=np.uint8)
    labels[liver] = LIVER
    labels[tumor] = TUMOR
    return ct.with_array(labels, source=str(path))
