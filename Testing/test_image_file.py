"""Image files: NIfTI / NRRD / MetaImage round trips checked against SimpleITK, atomic writes, real fixtures."""

import gzip
import os

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_factory import phantom_hu, rotation
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io import image_file
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.volume import Volume

SPACING, ORIGIN = (0.66, 0.81, 2.5), (-151.25, 98.5, -402.75)


def oblique_volume(dtype):
    values = phantom_hu(shape=(5, 24, 32)).astype(np.float64)
    if dtype == np.uint8:
        values = values % 3
    elif dtype == np.float32:
        values = values / 7.0
    return Volume(values.astype(dtype), SPACING, ORIGIN, rotation(20.0, -10.0))


def assert_same_geometry(volume, spacing, origin, direction):
    np.testing.assert_allclose(volume.spacing, spacing, atol=1e-5)
    np.testing.assert_allclose(volume.origin, origin, atol=1e-4)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_array_dtype_and_grid(tmp_path, suffix, dtype):
    volume = oblique_volume(dtype)
    path = write_image(volume, tmp_path / f"image{suffix}")
    back = read_image(path)
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, volume.array)
    assert_same_geometry(back, volume.spacing, volume.origin, volume.direction)
    assert back.metadata == {"source": str(path)}
    reference = sitk.ReadImage(str(path))  # SimpleITK's own reading of the same file
    np.testing.assert_array_equal(sitk.GetArrayFromImage(reference), back.array)
    assert_same_geometry(back, reference.GetSpacing(), reference.GetOrigin(),
                         np.reshape(reference.GetDirection(), (3, 3)))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_reads_files_written_by_simpleitk(tmp_path, suffix):
    array = phantom_hu(shape=(4, 20, 28))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(tuple(rotation(-35.0, 5.0).ravel()))
    sitk.WriteImage(image, str(tmp_path / f"sitk{suffix}"))
    volume = read_image(tmp_path / f"sitk{suffix}")
    np.testing.assert_array_equal(volume.array, array)
    assert_same_geometry(volume, SPACING, ORIGIN, rotation(-35.0, 5.0))


def test_written_files_are_compressed(tmp_path):
    volume = Volume(np.zeros((8, 64, 64), np.int16))
    with gzip.open(write_image(volume, tmp_path / "a.nii.gz")) as stream:
        assert stream.read(4) == (348).to_bytes(4, "little")  # a NIfTI-1 header inside the gzip stream
    assert b"encoding: gzip" in write_image(volume, tmp_path / "a.nrrd").read_bytes()[:1000]
    assert b"CompressedData = True" in write_image(volume, tmp_path / "a.mha").read_bytes()[:1000]
    assert (tmp_path / "a.nii.gz").stat().st_size < volume.array.nbytes / 20


def test_boolean_masks_are_written_as_uint8(tmp_path):
    mask = np.zeros((3, 10, 12), bool)
    mask[1, 2:5, 3:7] = True
    back = read_image(write_image(Volume(mask, SPACING), tmp_path / "mask.nrrd"))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, mask)


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "labels.nii.gz"
    write_image(oblique_volume(np.uint8), target)
    before = target.read_bytes()
    written, real_write = [], sitk.WriteImage

    def write_then_crash(image, name, **options):
        real_write(image, name, **options)
        written.append(name)
        raise RuntimeError("disk full")

    monkeypatch.setattr(image_file.sitk, "WriteImage", write_then_crash)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(oblique_volume(np.int16), target)
    assert len(written) == 1 and os.path.dirname(written[0]) == str(tmp_path) and written[0] != str(target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["labels.nii.gz"]


def test_refusals_name_the_file_and_the_reason(tmp_path):
    with pytest.raises(InputError, match="missing.nii.gz: does not exist"):
        read_image(tmp_path / "missing.nii.gz")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(InputError, match="picture.png: is not an image file this reader knows"):
        read_image(tmp_path / "picture.png")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InputError, match="broken.nii.gz: cannot be read as an image"):
        read_image(tmp_path / "broken.nii.gz")
    sitk.WriteImage(sitk.Image(16, 16, sitk.sitkInt16), str(tmp_path / "flat.nrrd"))
    with pytest.raises(InputError, match="flat.nrrd: is a 2D image"):
        read_image(tmp_path / "flat.nrrd")
    sitk.WriteImage(sitk.Image([8, 8, 4], sitk.sitkVectorFloat32, 3), str(tmp_path / "field.nrrd"))
    with pytest.raises(InputError, match="field.nrrd: has 3 components per voxel"):
        read_image(tmp_path / "field.nrrd")
    for name in ("out.png", "out.mhd"):
        with pytest.raises(InputError, match=f"{name}: cannot be written"):
            write_image(oblique_volume(np.int16), tmp_path / name)
    assert not (tmp_path / "out.mhd").exists()


def test_dcmqi_label_maps_lie_on_the_ct_grid_over_the_liver(real_fixtures):
    ct = read_series(real_fixtures / "dcmqi-ct-3slice")
    liver = read_image(real_fixtures / "dcmqi-ct-3slice" / "liver_seg.nrrd")
    liver_and_spine = read_image(real_fixtures / "dcmqi-ct-3slice" / "liver_spine_seg.nrrd")
    assert liver.same_grid(ct, tolerance=1e-4) and liver_and_spine.same_grid(ct, tolerance=1e-4)
    assert 30 < ct.array[liver.array == 1].mean() < 200  # soft tissue, so the mask is not flipped
    assert ct.array[liver_and_spine.array == 2].mean() > ct.array[liver.array == 1].mean() + 100  # bone


def test_totalsegmentator_nifti_covers_the_same_voxels_as_its_dicom(real_fixtures):
    ct = read_series(real_fixtures / "totalsegmentator-example" / "ct_dicom")
    labels = read_image(real_fixtures / "totalsegmentator-example" / "example_seg_dicom.nii.gz")
    assert labels.shape == ct.shape
    # NIfTI stores RAS; read back in LPS its rows run the other way: voxel (i, j, k) is CT voxel (i, 511 - j, k).
    last_row = np.array([0, ct.shape[1] - 1, 0, 1.0])
    np.testing.assert_allclose(labels.ijk_to_lps() @ [0, 0, 0, 1.0], ct.ijk_to_lps() @ last_row, atol=1e-3)
    np.testing.assert_allclose(labels.direction, ct.direction @ np.diag([1.0, -1.0, 1.0]), atol=1e-6)
    liver_hu = ct.array[:, ::-1, :][labels.array == 5]
    assert liver_hu.size > 1000 and 30 < liver_hu.mean() < 200
