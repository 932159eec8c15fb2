"""Find the DICOM image series in a folder and read one of them as a Volume in Hounsfield units.

Folders from a PACS export, a CD or a dataset such as 3D-IRCADb hold files with or without extension,
nested folders, a DICOMDIR, text files and other objects (SEG, RTSTRUCT, scout views). Headers alone
(read without pixel data) group the image files by SeriesInstanceUID; only the chosen series' pixels
are decoded.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.dicom_pixels import check_complete, check_decodable, read_hounsfield
from LiverResUNetLib.io.slice_stack import SliceStack, listing_order, stack_slices
from LiverResUNetLib.volume import Volume

_PREAMBLE_LENGTH = 128
# Values longer than this (pixel data) are skipped while reading headers and read when accessed.
_DEFER_BYTES = 4096
# First bytes of a DICOM file written without preamble: the tag of a group 0002 or 0008 element.
_BARE_DATASET_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
# Attributes that tell series apart when an anonymiser emptied SeriesInstanceUID.
_SERIES_IDENTITY = ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesNumber", "SeriesDate", "SeriesTime",
                    "Modality", "SeriesDescription")

#: What the readers take: a folder, one file, or a list of files.
SeriesSource = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]


@dataclass
class SeriesInfo:
    """One image series found on disk, described from its headers (what a user picks a series by)."""

    series_uid: str
    modality: str
    description: str
    patient_name: str
    patient_id: str
    study_date: str
    files: list[Path]
    slice_count: int
    folder: Path

    def summary(self) -> str:
        """One line naming the series: UID, modality, description and number of files."""
        return f"{self.series_uid} {self.modality} '{self.description}' ({self.slice_count} files)"


def _text(header: Dataset, keyword: str) -> str:
    return str(header.get(keyword) or "").strip()


def instance_identity(header: Dataset) -> tuple[str, str]:
    """(SOPClassUID, SOPInstanceUID) of a file, from its file meta header where an anonymiser emptied them."""
    meta = getattr(header, "file_meta", None) or {}
    return (_text(header, "SOPClassUID") or str(meta.get("MediaStorageSOPClassUID") or "").strip(),
            _text(header, "SOPInstanceUID") or str(meta.get("MediaStorageSOPInstanceUID") or "").strip())


def _series_uid(header: Dataset) -> str:
    """SeriesInstanceUID, or a UID derived from the series' other identifying attributes when it is empty."""
    uid = _text(header, "SeriesInstanceUID")
    if uid:
        return uid
    return generate_uid(entropy_srcs=[_text(header, keyword) for keyword in _SERIES_IDENTITY])


def _read_header(path: Path) -> Dataset | None:
    """The header of a DICOM file (pixel data deferred, not loaded), or None when ``path`` is not DICOM.

    Raises:
        InputError: a file with the DICOM preamble whose header is damaged, or an image without pixel data
            (a file cut short).
    """
    if path.name.upper() == "DICOMDIR":
        return None
    try:
        with open(path, "rb") as stream:
            start = stream.read(_PREAMBLE_LENGTH + 4)
    except OSError as error:
        raise input_error(path, f"cannot be opened: {error.strerror}") from error
    has_preamble = start[_PREAMBLE_LENGTH:] == b"DICM"
    if not has_preamble and start[:2] not in _BARE_DATASET_STARTS:
        return None
    try:
        header = pydicom.dcmread(path, defer_size=_DEFER_BYTES, force=not has_preamble)
    except Exception as error:  # pydicom raises many types for a damaged header
        if has_preamble:
            raise input_error(path, f"corrupt DICOM file: {error}") from error
        return None
    if "SOPClassUID" not in header and "Modality" not in header:
        if has_preamble:
            raise input_error(path, "corrupt DICOM file: its header has no SOP Class UID and no Modality")
        return None
    image_class = str(getattr(header.get("SOPClassUID"), "name", "")).endswith("Image Storage")
    if (image_class or _is_image(header)) and "PixelData" not in header:
        raise input_error(path, "truncated or corrupt DICOM file: the image has no pixel data")
    return header


def _is_image(header: Dataset) -> bool:
    return "Rows" in header and "Columns" in header


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden files and folders (e.g. unfinished atomic writes) left out."""
    found: list[Path] = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found.extend(Path(root) / name for name in sorted(names) if not name.startswith("."))
    return found


def _group(files: Iterable[Path], where: Path, strict: bool) -> tuple[dict[str, list[Dataset]], Counter[str]]:
    """Image headers grouped by series UID, and a count of non-image DICOM objects by modality.

    With ``strict`` (files the user listed) a file that is not DICOM is an error; in a folder it is skipped.
    """
    series: dict[str, list[Dataset]] = {}
    others: Counter[str] = Counter()
    for path in files:
        header = _read_header(path)
        if header is None:
            if strict:
                raise input_error(where, f"{path.name} is not a DICOM file")
            continue
        if _is_image(header):
            series.setdefault(_series_uid(header), []).append(header)
        else:
            others[_text(header, "Modality") or "unknown"] += 1
    return series, others


def _series_info(uid: str, headers: list[Dataset]) -> SeriesInfo:
    first = headers[0]
    files = [Path(h.filename) for h in listing_order(headers)]
    return SeriesInfo(series_uid=uid, modality=_text(first, "Modality"), description=_text(first, "SeriesDescription"),
                      patient_name=_text(first, "PatientName"), patient_id=_text(first, "PatientID"),
                      study_date=_text(first, "StudyDate"), files=files, slice_count=len(files),
                      folder=Path(os.path.commonpath([f.parent for f in files])))


def _sorted_infos(series: dict[str, list[Dataset]]) -> list[SeriesInfo]:
    infos = [_series_info(uid, headers) for uid, headers in series.items()]
    return sorted(infos, key=lambda s: (str(s.folder), s.modality, s.description, s.series_uid))


def find_series(folder: str | os.PathLike) -> list[SeriesInfo]:
    """Every DICOM image series below ``folder``, searched recursively.

    Files with or without extension are read by content; DICOMDIR, text and other non-DICOM files are skipped;
    non-image objects (RTSTRUCT, reports) are not listed. SEG objects and scout views are listed as series of
    their own. Each series' files are ordered along the slice normal.

    Raises:
        InputError: ``folder`` is not a folder, or a DICOM file in it is damaged (see ``_read_header``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise input_error(folder, "is not a folder" if folder.exists() else "does not exist")
    series, _ = _group(_files_under(folder), folder, strict=False)
    return _sorted_infos(series)


def _source_files(source: SeriesSource) -> tuple[list[Path], Path, bool]:
    """(files, where, strict) for a folder, one file or a list of files."""
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        if source.is_dir():
            return _files_under(source), source, False
        if not source.is_file():
            raise input_error(source, "does not exist")
        return [source], source, True
    files = [Path(f) for f in source]
    if not files:
        raise input_error("read_series", "no DICOM files were given")
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise input_error(missing[0], "does not exist")
    where = Path(os.path.commonpath([f.parent for f in files]))
    return files, where, True


def _choose(series: dict[str, list[Dataset]], others: Counter[str], where: Path, series_uid: str | None,
            modality: str | None) -> str:
    """The UID of the one series to read, or a refusal that says what was found and how to choose."""
    if not series:
        found = f" (only non-image DICOM objects: {dict(others)})" if others else ""
        raise input_error(where, f"no DICOM image files found{found}")
    infos = _sorted_infos(series)
    if series_uid is not None:
        chosen = [info for info in infos if info.series_uid == series_uid]
        if not chosen:
            raise input_error(where, f"no series with SeriesInstanceUID {series_uid}; found: "
                                     + "; ".join(info.summary() for info in infos))
        if modality and chosen[0].modality.upper() != modality.upper():
            raise input_error(where, f"series {series_uid} is {chosen[0].modality or 'of unknown modality'}, "
                                     f"not {modality}")
        return series_uid
    matching = [info for info in infos if not modality or info.modality.upper() == modality.upper()]
    if not matching:
        raise input_error(where, f"no {modality} series found; found: " + "; ".join(info.summary() for info in infos))
    if len(matching) > 1:
        raise input_error(where, f"{len(matching)} {modality or 'image'} series found; choose one by "
                                 "SeriesInstanceUID: " + "; ".join(info.summary() for info in matching))
    return matching[0].series_uid


def read_series_headers(source: SeriesSource, series_uid: str | None = None,
                        modality: str | None = "CT") -> tuple[SliceStack, str, Path]:
    """The headers (pixel data not read) of one DICOM series, checked and ordered along the slice normal.

    Args and refusals as :func:`read_series` (a transfer syntax that cannot be decoded included), except that
    no pixel is decoded (a file cut short is still refused): this is what a DICOM SEG writer needs to reference
    the series, and what checks a series that Slicer's reader decodes. Returns ``(stack, series_uid, where)``: the
    ``slice_stack.SliceStack``, the series' UID and the folder or file named in messages.
    """
    files, where, strict = _source_files(source)
    series, others = _group(files, where, strict)
    uid = _choose(series, others, where, series_uid, modality)
    check_decodable(series[uid], where)
    check_complete(series[uid], where)
    return stack_slices(series[uid], where), uid, where


def read_series(source: SeriesSource, series_uid: str | None = None, modality: str | None = "CT",
                progress: Progress | None = None, cancel: CancelCheck | None = None) -> Volume:
    """Read one DICOM series as a Volume in Hounsfield units (slope and intercept applied) with exact geometry.

    Args:
        source: a folder (searched recursively, non-DICOM files skipped), one file or a list of files.
        series_uid: the SeriesInstanceUID to read; needed when several series of ``modality`` are present.
        modality: the modality the series must have ("CT"); None accepts any (e.g. 3D-IRCADb mask series).
        progress: optional ``progress(fraction, message)`` called after each decoded slice.
        cancel: optional ``cancel() -> bool``; when it returns True, ``errors.Cancelled`` is raised.

    Returns:
        A Volume indexed ``[k, j, i]`` with k along the slice normal towards increasing position; int16 when
        the rescaled values are integers that fit, float32 otherwise. ``metadata`` holds series_uid, modality,
        description, patient_name, patient_id, study_date, source, and study_uid, frame_of_reference_uid
        ('' when absent) and sop_instance_uids (one per slice, in k order) to tie a DICOM SEG to it.

    Raises:
        InputError: naming the folder or file and the reason: no DICOM image, no series of ``modality``, several
            series and no ``series_uid``, unknown ``series_uid``, inconsistent slices, missing or duplicate
            slices, truncated or corrupt files, or a transfer syntax that cannot be decoded.
    """
    stack, uid, where = read_series_headers(source, series_uid, modality)
    array = read_hounsfield(stack.headers, where, progress, cancel)
    first = stack.headers[0]
    metadata = {"series_uid": uid, "modality": _text(first, "Modality"),
                "description": _text(first, "SeriesDescription"), "patient_name": _text(first, "PatientName"),
                "patient_id": _text(first, "PatientID"), "study_date": _text(first, "StudyDate"),
                "source": str(where), "study_uid": _text(first, "StudyInstanceUID"),
                "frame_of_reference_uid": _text(first, "FrameOfReferenceUID"),
                "sop_instance_uids": [instance_identity(header)[1] for header in stack.headers]}
    return Volume(array, stack.spacing, stack.origin, stack.direction, metadata)
