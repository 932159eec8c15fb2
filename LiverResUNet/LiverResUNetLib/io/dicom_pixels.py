"""Decode the pixels of an ordered DICOM series into one Hounsfield-unit array.

The array is allocated once and filled slice by slice, so a 512 x 512 x 600 CT is held once (int16 when the
rescaled values are integers that fit, float32 otherwise), never as a list of slices or as float64.
Compressed transfer syntaxes that pydicom can decode here (JPEG lossless, JPEG-LS, JPEG 2000, RLE, deflate)
are read; any other is refused up front, by name, before anything is decoded.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.errors import Cancelled, input_error
from LiverResUNetLib.io.pydicom_versions import decoder_available, element_as_read, read_encoding

INT16_RANGE = (np.iinfo(np.int16).min, np.iinfo(np.int16).max)


def transfer_syntax(dataset: Dataset) -> UID:
    """The dataset's transfer syntax; files without a meta header get the encoding they were read with."""
    uid = dataset.file_meta.get("TransferSyntaxUID")
    if uid:
        return UID(uid)
    implicit, little_endian = read_encoding(dataset)
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian


def _describe(uid: UID) -> str:
    return f"'{uid.name}' ({uid})" if uid.name != str(uid) else str(uid)


def check_decodable(headers: Sequence[Dataset], where: str | Path) -> None:
    """Refuse, before reading any pixels, slices this reader cannot turn into one grey-level volume.

    Raises:
        InputError: a transfer syntax with no available decoder (named), colour or multi-frame images.
    """
    for header in headers:
        name = Path(header.filename).name
        if int(header.get("SamplesPerPixel") or 1) != 1:
            raise input_error(where, f"{name} is a colour image ({header.get('PhotometricInterpretation')}), "
                                     "not a grey-level CT slice")
        if int(header.get("NumberOfFrames") or 1) > 1:
            raise input_error(where, f"{name} is a multi-frame object ({header.NumberOfFrames} frames); only "
                                     "single-frame slice series are read")
    for uid in {transfer_syntax(h) for h in headers}:
        if not uid.is_compressed:
            continue
        if not decoder_available(uid):
            raise input_error(where, f"the pixel data is compressed with transfer syntax {_describe(uid)}, "
                                     "which cannot be decoded here; export the series uncompressed or as JPEG "
                                     "lossless / JPEG 2000 / RLE")


def _pixel_bytes_present(header: Dataset) -> int:
    """How many bytes of pixel data a header's file holds, without reading them (the file may be cut short)."""
    element = element_as_read(header, "PixelData")
    if element.value is not None:
        return len(element.value)
    return max(0, min(element.length, os.path.getsize(header.filename) - element.value_tell))


def check_complete(headers: Sequence[Dataset], where: str | Path) -> None:
    """Refuse, from the headers alone, uncompressed slices whose pixel data is shorter than their matrix.

    Raises:
        InputError: naming the first truncated file and how many bytes it holds.
    """
    for header in headers:
        if transfer_syntax(header).is_compressed:
            continue
        expected = int(header.Rows) * int(header.Columns) * (int(header.BitsAllocated) // 8)
        present = _pixel_bytes_present(header)
        if present < expected:
            raise input_error(where, f"{Path(header.filename).name} is truncated or corrupt: its pixel data has "
                                     f"{present} of the {expected} bytes expected")


def rescale(header: Dataset) -> tuple[float, float]:
    """(slope, intercept) of the modality LUT; absent values mean the stored values already are the unit."""
    slope, intercept = header.get("RescaleSlope"), header.get("RescaleIntercept")
    return (1.0 if slope in (None, "") else float(slope)), (0.0 if intercept in (None, "") else float(intercept))


def _integer_rescale(headers: Sequence[Dataset]) -> bool:
    return all(float(value).is_integer() for h in headers for value in rescale(h))


def _stored_values(path: Path, header: Dataset, where: str | Path) -> np.ndarray:
    """The stored pixel values of one slice, refusing truncated or undecodable pixel data by file name."""
    try:
        dataset = pydicom.dcmread(path, force=True)
    except Exception as error:  # pydicom raises many types for a damaged file
        raise input_error(where, f"{path.name} cannot be read: {error}") from error
    if "PixelData" not in dataset:
        raise input_error(where, f"{path.name} has no pixel data")
    uid = transfer_syntax(dataset)
    if not uid.is_compressed:
        expected = int(header.Rows) * int(header.Columns) * (int(header.BitsAllocated) // 8)
        if len(dataset.PixelData) < expected:
            raise input_error(where, f"{path.name} is truncated or corrupt: its pixel data has "
                                     f"{len(dataset.PixelData)} of the {expected} bytes expected")
    if not dataset.file_meta.get("TransferSyntaxUID"):
        dataset.file_meta.TransferSyntaxUID = uid
    try:
        return dataset.pixel_array
    except Exception as error:  # decoders raise many types for corrupt compressed data
        raise input_error(where, f"{path.name} is corrupt: its pixel data ({_describe(uid)}) cannot be decoded: "
                                 f"{error}") from error


def read_hounsfield(headers: Sequence[Dataset], where: str | Path, progress: Progress | None = None,
                    cancel: CancelCheck | None = None) -> np.ndarray:
    """Decode the ordered slices into one ``[k, j, i]`` array of rescaled values (HU for CT).

    Args:
        headers: the ordered headers of one series (see ``slice_stack.stack_slices``), checked by
            :func:`check_decodable`.
        where: the folder or file named in error messages.
        progress: optional ``progress(fraction, message)``.
        cancel: optional ``cancel() -> bool``; when it returns True, :class:`Cancelled` is raised.

    Returns:
        int16 when every slope and intercept is an integer and the values fit, float32 otherwise.
    """
    shape = (len(headers), int(headers[0].Rows), int(headers[0].Columns))
    integer = _integer_rescale(headers)
    volume = np.empty(shape, dtype=np.int16 if integer else np.float32)
    for index, header in enumerate(headers):
        if cancel is not None and cancel():
            raise Cancelled()
        path = Path(header.filename)
        stored = _stored_values(path, header, where)
        if stored.shape != shape[1:]:
            raise input_error(where, f"{path.name} decodes to {stored.shape[0]} x {stored.shape[1]} pixels, its "
                                     f"header says {shape[1]} x {shape[2]}")
        slope, intercept = rescale(header)
        if integer:
            values: np.ndarray = stored.astype(np.int32) * int(slope) + int(intercept)
            if volume.dtype == np.int16 and (values.min() < INT16_RANGE[0] or values.max() > INT16_RANGE[1]):
                volume = volume.astype(np.float32)
        else:
            values = stored * slope + intercept
        volume[index] = values
        if progress is not None:
            progress((index + 1) / len(headers), f"Reading slice {index + 1} of {len(headers)}")
    return volume
