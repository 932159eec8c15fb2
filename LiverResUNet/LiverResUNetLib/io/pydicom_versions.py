"""The few pydicom calls that differ between pydicom 2.4 (Slicer 5.10) and pydicom 3 (Slicer 5.12).

Everything else the readers and writers use is the same in both; these four are asked here, by feature.
"""

from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset


def decoder_available(uid: str) -> bool:
    """True when pydicom can decode pixel data of transfer syntax ``uid`` here (with the plugins installed)."""
    try:
        from pydicom.pixels import get_decoder  # pydicom 3
    except ImportError:
        return any(handler.supports_transfer_syntax(uid) and handler.is_available()
                   for handler in pydicom.config.pixel_data_handlers)
    try:
        return get_decoder(uid).is_available
    except NotImplementedError:
        return False


def read_encoding(dataset: Dataset) -> tuple[bool | None, bool | None]:
    """(implicit VR, little endian) the dataset was read with."""
    if hasattr(dataset, "original_encoding"):  # pydicom 3
        return dataset.original_encoding
    return dataset.is_implicit_VR, dataset.is_little_endian


def save_dicom_file(dataset: Dataset, path: str | Path) -> None:
    """Write ``dataset`` as a DICOM file (preamble, prefix and file meta information), as its file meta says."""
    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(path, enforce_file_format=True)
    else:
        dataset.is_little_endian = dataset.file_meta.TransferSyntaxUID.is_little_endian
        dataset.is_implicit_VR = dataset.file_meta.TransferSyntaxUID.is_implicit_VR
        dataset.save_as(path, write_like_original=False)


def element_as_read(dataset: Dataset, keyword: str) -> RawDataElement:
    """The element as it was read: a deferred value (e.g. pixel data) stays unread, its length and file offset
    known. The element must be present and not yet accessed (still raw), as a header's pixel data is."""
    element: object
    try:
        element = dataset.get_item(keyword, keep_deferred=True)  # pydicom 3
    except TypeError:  # pydicom 2.4: no keep_deferred, and its get_item would read a deferred value
        element = dataset._dict.get(pydicom.tag.Tag(keyword))
    if not isinstance(element, RawDataElement):
        raise ValueError(f"{keyword} is not a raw element of the dataset ({type(element).__name__})")
    return element
