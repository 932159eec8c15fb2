"""The few pydicom calls that differ between pydicom 2.4 (Slicer 5.10) and pydicom 3 (Slicer 5.12).

Everything else the readers and writers use is the same in both; these four are asked here, by feature.
"""

import pydicom


def decoder_available(uid):
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


def read_encoding(dataset):
    """(implicit VR, little endian) the dataset was read with."""
    if hasattr(dataset, "original_encoding"):  # pydicom 3
        return dataset.original_encoding
    return dataset.is_implicit_VR, dataset.is_little_endian


def save_dicom_file(dataset, path):
    """Write ``dataset`` as a DICOM file (preamble, prefix and file meta information), as its file meta says."""
    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(path, enforce_file_format=True)
    else:
        dataset.is_little_endian = dataset.file_meta.TransferSyntaxUID.is_little_endian
        dataset.is_implicit_VR = dataset.file_meta.TransferSyntaxUID.is_implicit_VR
        dataset.save_as(path, write_like_original=False)


def element_as_read(dataset, keyword):
    """The element as it was read: a deferred value (e.g. pixel data) stays unread, its length and file offset
    known."""
    try:
        return dataset.get_item(keyword, keep_deferred=True)  # pydicom 3
    except TypeError:  # pydicom 2.4: no keep_deferred, and its get_item would read a deferred value
        return dataset._dict.get(pydicom.tag.Tag(keyword))
