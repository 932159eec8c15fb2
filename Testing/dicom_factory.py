"""Write real DICOM CT series with pydicom for the reader's edge cases (test-only helper).

Each series is a list of single-frame CT Image Storage files whose geometry comes from a known grid, so a test
can compare what the reader returns with what was written. Stored values are ``(hu - intercept) / slope``
in signed or unsigned 16-bit storage, natively or with a compressed transfer syntax. JPEG lossless (process 14,
selection value 1) has no encoder in pydicom; :func:`jpeg_lossless_sv1` is a minimal one for grey-level frames.
"""

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    RLELossless,
    generate_uid,
)

from LiverResUNetLib.io.pydicom_versions import save_dicom_file


def _uid(*parts):
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _huffman_code(category):
    """Canonical code of a difference category in a table giving all 17 categories a 5-bit code."""
    return format(category, "05b")


def jpeg_lossless_sv1(pixels, precision=16):
    """Encode a 2D array of unsigned samples as a JPEG lossless (process 14, first-order prediction) stream."""
    rows, columns = pixels.shape
    samples = pixels.astype(np.int64) & ((1 << precision) - 1)
    predicted = np.empty_like(samples)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:] = samples[0, :-1]
    predicted[1:, 0] = samples[:-1, 0]
    predicted[1:, 1:] = samples[1:, :-1]
    differences = (samples - predicted) % (1 << 16)
    differences = np.where(differences > 32768, differences - 65536, differences)
    bits = []
    for difference in differences.ravel().tolist():
        category = abs(difference).bit_length()
        bits.append(_huffman_code(category))
        if 0 < category < 16:
            extra = difference if difference > 0 else difference + (1 << category) - 1
            bits.append(format(extra, f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    entropy_coded = int(stream, 2).to_bytes(len(stream) // 8, "big").replace(b"\xff", b"\xff\x00")
    start_of_frame = (b"\xff\xc3\x00\x0b" + bytes([precision]) + rows.to_bytes(2, "big")
                      + columns.to_bytes(2, "big") + b"\x01\x01\x11\x00")
    huffman_table = b"\xff\xc4\x00\x24\x00" + bytes([0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    start_of_scan = b"\xff\xda\x00\x08\x01\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + start_of_frame + huffman_table + start_of_scan + entropy_coded + b"\xff\xd9"


def ct_slice(hu, position, direction, pixel_spacing, *, series, instance, signed=True, slope=1.0, intercept=0.0,
             modality="CT", description="", patient_id="PHANTOM01"):
    """One CT slice dataset (native explicit VR little endian) holding ``hu`` at ``position``."""
    stored = np.rint((np.asarray(hu, dtype=float) - intercept) / slope)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"HU values do not fit {dtype.__name__} storage with slope {slope}, intercept {intercept}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = _uid(series, instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.SeriesDescription = description
    ds.PatientName = "Phantom^Liver"
    ds.PatientID = patient_id
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.StudyInstanceUID = _uid(patient_id, "study")
    ds.SeriesInstanceUID = _uid(series)
    ds.FrameOfReferenceUID = _uid(patient_id, "frame")
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])]
    ds.PixelSpacing = [f"{v:.6f}" for v in pixel_spacing]
    ds.SliceThickness = "1.0"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    ds.PixelData = stored.astype(dtype).tobytes()
    return ds


def _encode(ds, transfer_syntax):
    if transfer_syntax == ExplicitVRLittleEndian:
        return
    if transfer_syntax == RLELossless:
        ds.compress(transfer_syntax, ds.pixel_array)
    elif transfer_syntax == JPEG2000Lossless:
        # openjpeg (pylibjpeg-openjpeg) directly: pydicom 3 encodes through it, pydicom 2.4 has no J2K encoder.
        from openjpeg import encode

        ds.PixelData = encapsulate([encode(ds.pixel_array, bits_stored=int(ds.BitsStored))])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    elif transfer_syntax == JPEGLosslessSV1:
        frame = jpeg_lossless_sv1(ds.pixel_array.view(np.uint16), int(ds.BitsStored))
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    elif transfer_syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    else:
        raise ValueError(f"no encoder for transfer syntax {transfer_syntax}")


def write_series(folder, hu, spacing=(0.7, 0.8, 2.5), origin=(-20.0, -30.0, 100.0), direction=None, *,
                 names=None, series="series-1", transfer_syntax=ExplicitVRLittleEndian, head_first=True, **slice_args):
    """Write ``hu`` ([k, j, i]) as one CT series; return the written paths in k order.

    Args:
        spacing, origin, direction: the grid (di, dj, dk), LPS of voxel [0, 0, 0], columns = i, j, k axes.
        names: relative file names in k order (default ``IM0000.dcm`` ...), sub-folders allowed.
        series: a key the SeriesInstanceUID is derived from; equal keys give one series.
        transfer_syntax: native explicit VR little endian, implicit VR little endian, RLE, JPEG 2000 lossless or
            JPEG lossless SV1.
        head_first: InstanceNumber 1 at the top slice (highest k) when True, at k = 0 otherwise.
        slice_args: passed to :func:`ct_slice` (signed, slope, intercept, modality, description, patient_id).
    """
    folder = Path(folder)
    hu = np.asarray(hu)
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    names = names or [f"IM{k:04d}.dcm" for k in range(hu.shape[0])]
    paths = []
    for k, name in enumerate(names):
        position = np.asarray(origin) + k * spacing[2] * direction[:, 2]
        instance = hu.shape[0] - k if head_first else k + 1
        ds = ct_slice(hu[k], position, direction, (spacing[1], spacing[0]), series=series, instance=instance,
                      **slice_args)
        _encode(ds, transfer_syntax)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_dicom_file(ds, path)
        paths.append(path)
    return paths


def edit(path, **attributes):
    """Change header attributes of a written file in place (to make one slice disagree with the others)."""
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def phantom_hu(shape=(6, 40, 48), seed=0, low=-1024, high=1500):
    """A deterministic test pattern of integer HU values: a ramp along every axis plus noise."""
    k, j, i = np.indices(shape)
    noise = np.random.default_rng(seed).integers(-50, 50, size=shape)
    return np.clip(low + 37 * k + 11 * j + 7 * i + noise, low, high).astype(np.int16)


def rotation(angle_a_deg, angle_b_deg):
    """An oblique direction matrix: a rotation about z, then about x (columns are the i, j, k axes)."""
    a, b = np.radians(angle_a_deg), np.radians(angle_b_deg)
    about_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return about_x @ about_z


def save_without_file_meta(dataset, path):
    """Write a dataset as a bare implicit-VR little-endian stream (no preamble, no file meta), as old scanners did."""
    del dataset.file_meta
    dataset.preamble = None
    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)
    else:
        dataset.is_implicit_VR, dataset.is_little_endian = True, True
        dataset.save_as(path, write_like_original=True)
