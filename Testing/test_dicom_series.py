"""DICOM series reading: real scanner files checked against SimpleITK, generated edge cases, every refusal."""

import os
import shutil
import tracemalloc

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    RLELossless,
)

from dicom_factory import edit, phantom_hu, rotation, save_without_file_meta, write_series
from LiverResUNetLib.errors import Cancelled, InputError
from LiverResUNetLib.io.dicom_series import find_series, read_series

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh


def test_runs_with_the_pydicom_the_suite_asked_for():
    """scripts/test.sh's second pass names the pydicom it put first on the path; this pass must be using it."""
    expected = os.environ.get("LIVERRESUNET_EXPECTED_PYDICOM")
    assert expected in (None, pydicom.__version__)

DCMQI = "dcmqi-ct-3slice"
TOTALSEGMENTATOR = "totalsegmentator-example/ct_dicom"


def simpleitk_series(folder, series_uid=""):
    """The same series read by an independent reader (GDCM through SimpleITK)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), series_uid))
    return reader.Execute()


def assert_matches_simpleitk(volume, image):
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(volume.direction, np.reshape(image.GetDirection(), (3, 3)), atol=1e-6)


def assert_grid(volume, spacing, origin, direction):
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-5)
    np.testing.assert_allclose(volume.origin, origin, atol=1e-5)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-6)


def refusal(source, *expected, **kwargs):
    """Read ``source`` expecting an InputError; check its message names each expected part; return it."""
    with pytest.raises(InputError) as caught:
        read_series(source, **kwargs)
    message = str(caught.value)
    for part in expected:
        assert str(part) in message
    return message


# Real scanner files

def test_find_series_keeps_the_seg_object_out_of_the_ct_series(real_fixtures):
    series = {info.modality: info for info in find_series(real_fixtures / DCMQI)}
    assert set(series) == {"CT", "SEG"}
    ct = series["CT"]
    assert ct.slice_count == 3 and ct.patient_id == "99000" and ct.patient_name == "JANCT000"
    assert ct.study_date == "20030417" and ct.folder == real_fixtures / DCMQI
    heights = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in ct.files]
    assert heights == sorted(heights) and {f.name for f in ct.files} == {"01.dcm", "02.dcm", "03.dcm"}
    assert [f.name for f in series["SEG"].files] == ["liver_seg.dcm"]


@pytest.mark.parametrize("folder, shape, hu_range, has_series_uid", [
    (DCMQI, (3, 512, 512), (-3024, 1381), True),
    (TOTALSEGMENTATOR, (20, 512, 512), (-1024, 1839), False),
])
def test_real_series_match_simpleitk(real_fixtures, folder, shape, hu_range, has_series_uid):
    volume = read_series(real_fixtures / folder)
    assert volume.shape == shape and volume.array.dtype == np.int16
    assert (volume.array.min(), volume.array.max()) == hu_range
    assert volume.metadata["modality"] == "CT" and volume.metadata["source"] == str(real_fixtures / folder)
    # GDCM names a series without SeriesInstanceUID by the empty string.
    reference = simpleitk_series(real_fixtures / folder, volume.metadata["series_uid"] if has_series_uid else "")
    assert_matches_simpleitk(volume, reference)


def test_series_without_uid_gets_a_stable_uid_that_selects_it(real_fixtures):
    folder = real_fixtures / "totalsegmentator-example"
    first, again = find_series(folder), find_series(folder)
    assert len(first) == 1 and first[0].series_uid == again[0].series_uid
    assert first[0].description == "CT Body 3.0" and first[0].folder == real_fixtures / TOTALSEGMENTATOR
    assert [f.name for f in first[0].files][0].endswith("16592")  # lowest position is the last file name
    volume = read_series(folder, series_uid=first[0].series_uid)
    assert volume.metadata["series_uid"] == first[0].series_uid
    assert volume.spacing[2] == pytest.approx(2.0)


def test_seg_object_is_refused_as_ct_and_as_multiframe(real_fixtures):
    seg = next(info for info in find_series(real_fixtures / DCMQI) if info.modality == "SEG")
    refusal(real_fixtures / DCMQI, "is SEG, not CT", series_uid=seg.series_uid)
    refusal(real_fixtures / DCMQI, "liver_seg.dcm", "multi-frame", series_uid=seg.series_uid, modality=None)


def test_jpeg_ls_file_reads_like_its_uncompressed_original():
    original = read_series(get_testdata_file("MR_small.dcm"), modality="MR")
    compressed = read_series(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), modality="MR")
    np.testing.assert_array_equal(compressed.array, original.array)
    assert original.same_grid(compressed)


# Generated edge cases

@pytest.mark.parametrize("signed, slope, intercept, shift, dtype", [
    (True, 1.0, 0.0, 0, np.int16),
    (False, 1.0, -1024.0, 0, np.int16),
    (True, 0.5, -1000.0, 0.5, np.float32),
    (False, 1.0, 0.0, 34000, np.float32),
], ids=["signed", "unsigned-intercept", "fractional-slope", "beyond-int16"])
def test_storage_and_rescale_give_exact_hu(tmp_path, signed, slope, intercept, shift, dtype):
    hu = phantom_hu().astype(np.float64) + shift
    write_series(tmp_path, hu, signed=signed, slope=slope, intercept=intercept)
    volume = read_series(tmp_path)
    assert volume.array.dtype == dtype
    np.testing.assert_array_equal(volume.array, hu)


def test_rescale_may_change_from_slice_to_slice(tmp_path):
    hu = phantom_hu()
    write_series(tmp_path / "a", hu[:3], intercept=-1024.0, signed=False)
    write_series(tmp_path / "a", hu[3:], origin=(-20.0, -30.0, 107.5), intercept=-2000.0,
                 names=[f"late{k}" for k in range(3)])
    np.testing.assert_array_equal(read_series(tmp_path / "a").array, hu)


@pytest.mark.parametrize("direction", [
    np.eye(3),
    rotation(25.0, 0.0),
    rotation(-30.0, 15.0),
    np.diag([-1.0, 1.0, -1.0]),
    np.diag([1.0, -1.0, -1.0]),
], ids=["axial", "rotated-in-plane", "oblique", "feet-first-supine", "normal-towards-feet"])
def test_geometry_is_the_written_grid_and_matches_simpleitk(tmp_path, direction):
    hu = phantom_hu()
    spacing, origin = (0.62, 0.87, 2.5), (-150.0, -170.5, 33.25)
    write_series(tmp_path, hu, spacing=spacing, origin=origin, direction=direction)
    volume = read_series(tmp_path)
    np.testing.assert_array_equal(volume.array, hu)
    assert_grid(volume, spacing, origin, direction)
    assert_matches_simpleitk(volume, simpleitk_series(tmp_path))


def test_order_follows_positions_not_names_or_instance_numbers(tmp_path):
    hu = phantom_hu(shape=(12, 32, 32))
    names = [f"image_{k}" for k in range(12)]  # string order image_0, image_1, image_10 ... is wrong
    shuffled = list(np.random.default_rng(3).permutation(names))
    write_series(tmp_path / "head_first", hu, names=names, head_first=True)
    write_series(tmp_path / "feet_first", hu, names=shuffled, head_first=False)
    head_first, feet_first = read_series(tmp_path / "head_first"), read_series(tmp_path / "feet_first")
    for volume in (head_first, feet_first):
        np.testing.assert_array_equal(volume.array, hu)
        assert_grid(volume, (0.7, 0.8, 2.5), (-20.0, -30.0, 100.0), np.eye(3))


def test_dicomdir_nested_folders_and_other_files_are_handled(tmp_path):
    hu = phantom_hu()
    fileset = FileSet()
    for path in write_series(tmp_path / "export", hu):
        fileset.add(path)
    disc = tmp_path / "disc"
    fileset.write(disc)  # DICOMDIR + PT000000/ST000000/SE000000/IM00000N, no extensions
    (disc / "README.txt").write_text("Exported by a PACS viewer\n")
    (disc / "PT000000" / "notes").write_bytes(b"\x08\x00 not really DICOM")
    (disc / "viewer.zip").write_bytes(b"PK\x03\x04" + bytes(200))
    series = find_series(disc)
    assert len(series) == 1 and series[0].slice_count == hu.shape[0]
    assert all("SE000000" in str(f) and f.suffix == "" for f in series[0].files)
    np.testing.assert_array_equal(read_series(disc).array, hu)


def test_files_with_and_without_extension_or_preamble(tmp_path):
    hu = phantom_hu()
    paths = write_series(tmp_path, hu, names=["a.dcm", "b", "c.DCM", "nested/deeper/d.ima", "e", "f.dcm"])
    save_without_file_meta(pydicom.dcmread(paths[4]), paths[4])
    assert paths[4].read_bytes()[:2] == b"\x08\x00"
    np.testing.assert_array_equal(read_series(tmp_path).array, hu)


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless, JPEGLosslessSV1],
                         ids=["implicit-vr", "rle", "jpeg2000-lossless", "jpeg-lossless"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_transfer_syntaxes_decode_to_the_written_values(tmp_path, transfer_syntax, signed):
    hu = phantom_hu()
    paths = write_series(tmp_path, hu, transfer_syntax=transfer_syntax, signed=signed,
                         intercept=0.0 if signed else -1024.0)
    assert pydicom.dcmread(paths[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == transfer_syntax
    volume = read_series(tmp_path)
    np.testing.assert_array_equal(volume.array, hu)
    assert_matches_simpleitk(volume, simpleitk_series(tmp_path))


def test_file_list_source_and_any_modality(tmp_path):
    hu = phantom_hu()
    paths = write_series(tmp_path, hu, modality="MR")
    volume = read_series(paths[::-1], modality=None)
    np.testing.assert_array_equal(volume.array, hu)
    assert volume.metadata["modality"] == "MR" and volume.metadata["source"] == str(tmp_path)


def test_without_positions_instance_numbers_order_the_slices(tmp_path):
    hu = phantom_hu()
    for path in write_series(tmp_path, hu, head_first=False):
        edit(path, ImagePositionPatient=None, SliceThickness="3.0")
    volume = read_series(tmp_path)
    np.testing.assert_array_equal(volume.array, hu)
    assert volume.spacing[2] == 3.0 and volume.origin == (0.0, 0.0, 0.0)


def test_single_slice_uses_the_nominal_slice_spacing(tmp_path):
    write_series(tmp_path, phantom_hu()[:1])
    volume = read_series(tmp_path)
    assert volume.shape == (1, 40, 48) and volume.spacing == pytest.approx((0.7, 0.8, 1.0))


def test_progress_reports_each_slice_and_cancel_stops(tmp_path):
    hu = phantom_hu()
    write_series(tmp_path, hu)
    fractions = []
    read_series(tmp_path, progress=lambda fraction, message: fractions.append(fraction))
    assert fractions == pytest.approx([(k + 1) / hu.shape[0] for k in range(hu.shape[0])])
    with pytest.raises(Cancelled):
        read_series(tmp_path, cancel=lambda: True)


def test_pixels_fill_one_preallocated_array(tmp_path):
    hu = phantom_hu(shape=(40, 128, 128))
    write_series(tmp_path, hu)
    tracemalloc.start()
    try:
        volume = read_series(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_slice_float64 = 128 * 128 * 8
    assert volume.array.nbytes == hu.nbytes
    assert peak < volume.array.nbytes + 12 * one_slice_float64


# Refusals

def test_refuses_missing_path_and_folder_without_dicom(tmp_path):
    refusal(tmp_path / "nowhere", "nowhere", "does not exist")
    with pytest.raises(InputError, match="does not exist"):
        find_series(tmp_path / "nowhere")
    (tmp_path / "README.txt").write_text("no images here")
    refusal(tmp_path, str(tmp_path), "no DICOM image files found")
    refusal([tmp_path / "README.txt"], "README.txt", "is not a DICOM file")


def test_refuses_folder_without_ct_and_names_what_was_found(tmp_path):
    write_series(tmp_path, phantom_hu(), modality="MR", description="T1 axial")
    refusal(tmp_path, str(tmp_path), "no CT series found", "MR 'T1 axial' (6 files)")


def test_several_ct_series_need_a_series_uid(tmp_path):
    write_series(tmp_path / "arterial", phantom_hu(shape=(3, 40, 48)), series="arterial", description="arterial")
    write_series(tmp_path / "venous", phantom_hu(shape=(4, 40, 48)), series="venous", description="venous")
    infos = {info.description: info for info in find_series(tmp_path)}
    refusal(tmp_path, "2 CT series found", "choose one by SeriesInstanceUID",
            f"{infos['arterial'].series_uid} CT 'arterial' (3 files)",
            f"{infos['venous'].series_uid} CT 'venous' (4 files)")
    assert read_series(tmp_path, series_uid=infos["venous"].series_uid).shape == (4, 40, 48)
    refusal(tmp_path, "no series with SeriesInstanceUID 1.2.3.4", infos["arterial"].series_uid, series_uid="1.2.3.4")


@pytest.mark.parametrize("attributes, reason", [
    ({"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}, "ImageOrientationPatient differs between slices"),
    ({"PixelSpacing": [0.8, 0.75]}, "PixelSpacing differs between slices"),
    ({"Rows": 20}, "Rows x Columns differs between slices"),
    ({"ImagePositionPatient": None}, "IM0002.dcm has no valid ImagePositionPatient"),
    ({"ImagePositionPatient": [-19.0, -30.0, 105.0]}, "IM0002.dcm is 1.00 mm off the axis"),
], ids=["orientation", "pixel-spacing", "rows-columns", "position-missing", "gantry-tilt"])
def test_refuses_slices_that_do_not_share_one_grid(tmp_path, attributes, reason):
    paths = write_series(tmp_path, phantom_hu())
    edit(paths[2], **attributes)
    refusal(tmp_path, str(tmp_path), reason)


@pytest.mark.parametrize("attributes, reason", [
    ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "IM0000.dcm has an invalid ImageOrientationPatient"),
    ({"PixelSpacing": None}, "IM0000.dcm has no valid PixelSpacing"),
    ({"ImagePositionPatient": None, "InstanceNumber": 1}, "no unique InstanceNumber: their order is unknown"),
], ids=["orientation", "pixel-spacing", "order"])
def test_refuses_series_whose_headers_give_no_grid(tmp_path, attributes, reason):
    for path in write_series(tmp_path, phantom_hu()):
        edit(path, **attributes)
    refusal(tmp_path, str(tmp_path), reason)


def test_refuses_duplicate_positions(tmp_path):
    paths = write_series(tmp_path, phantom_hu())
    shutil.copy(paths[3], tmp_path / "copy_of_IM0003.dcm")
    refusal(tmp_path, "two slices at the same position 107.50 mm", "IM0003.dcm", "copy_of_IM0003.dcm")


def test_refuses_missing_slice_and_names_the_position(tmp_path):
    paths = write_series(tmp_path, phantom_hu(shape=(8, 40, 48)))
    paths[4].unlink()
    refusal(tmp_path, str(tmp_path), "missing slice(s)", "gap of 5.00 mm", "about 1 slice(s)",
            "between positions 107.50 and 112.50 mm", "after IM0003.dcm")


def test_refuses_truncated_file(tmp_path):
    paths = write_series(tmp_path, phantom_hu())
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-500])
    refusal(tmp_path, "IM0001.dcm is truncated or corrupt", f"{40 * 48 * 2 - 500} of the {40 * 48 * 2} bytes")


@pytest.mark.parametrize("keep_bytes, reason", [
    (300, "corrupt DICOM file: its header has no SOP Class UID"),
    (700, "truncated or corrupt DICOM file: the image has no pixel data"),
], ids=["cut-in-meta-header", "cut-in-dataset-header"])
def test_refuses_file_cut_in_its_header(tmp_path, keep_bytes, reason):
    paths = write_series(tmp_path, phantom_hu())
    paths[2].write_bytes(paths[2].read_bytes()[:keep_bytes])
    refusal(tmp_path, "IM0002.dcm", reason)
    with pytest.raises(InputError, match=reason):
        find_series(tmp_path)


def test_refuses_compressed_data_that_does_not_decode(tmp_path):
    paths = write_series(tmp_path, phantom_hu(), transfer_syntax=JPEG2000Lossless)
    dataset = pydicom.dcmread(paths[1])
    dataset.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    dataset.save_as(paths[1])
    refusal(tmp_path, "IM0001.dcm is corrupt", "JPEG 2000 Image Compression (Lossless Only)", "cannot be decoded")


def test_refuses_transfer_syntax_without_decoder_by_name(tmp_path):
    paths = write_series(tmp_path, phantom_hu())
    dataset = pydicom.dcmread(paths[0])
    dataset.file_meta.TransferSyntaxUID = MPEG2MPML
    dataset.PixelData = encapsulate([bytes(64)])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(paths[0])
    assert pydicom.dcmread(paths[1]).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    refusal(tmp_path, str(tmp_path), "'MPEG2 Main Profile / Main Level' (1.2.840.10008.1.2.4.100)",
            "cannot be decoded here")
