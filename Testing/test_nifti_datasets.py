"""LiTS and MSD Task03 folders (NIfTI written with SimpleITK) read as the same (image, label) cases."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.nifti_datasets import LITS_IRCADB_NOTE
from LiverResUNetLib.errors import InputError

DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # what LiTS headers hold (RAS stored, LPS read)


def write_nifti(path, array, spacing=(0.8, 0.8, 2.5), origin=(170.0, 150.0, -300.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(DIRECTION)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def pair(seed, shape=(4, 6, 5)):
    rng = np.random.default_rng(seed)
    return rng.integers(-1024, 1500, size=shape).astype(np.int16), rng.integers(0, 3, size=shape).astype(np.uint8)


@pytest.fixture
def lits(tmp_path):
    """A LiTS download: two training batches, a test volume without segmentation, a macOS shadow file."""
    for batch, number, suffix in (("Training Batch 1", 3, ".nii"), ("Training Batch 2", 30, ".nii.gz"),
                                  ("Training Batch 2", 100, ".nii")):
        image, label = pair(number)
        write_nifti(tmp_path / batch / f"volume-{number}{suffix}", image)
        write_nifti(tmp_path / batch / f"segmentation-{number}{suffix}", label)
    write_nifti(tmp_path / "Test" / "test-volume-7.nii", pair(7)[0])
    (tmp_path / "Training Batch 1" / "._volume-3.nii").write_bytes(b"\x00\x05\x16\x07")
    return tmp_path


@pytest.fixture
def msd(tmp_path):
    task = tmp_path / "Task03_Liver"
    for number in (10, 2):
        image, label = pair(number)
        write_nifti(task / "imagesTr" / f"liver_{number}.nii.gz", image)
        write_nifti(task / "labelsTr" / f"liver_{number}.nii.gz", label)
    write_nifti(task / "imagesTs" / "liver_200.nii.gz", pair(200)[0])
    (task / "imagesTr" / "._liver_2.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    (task / "dataset.json").write_text(json.dumps({"name": "Liver", "labels": {"0": "background", "1": "liver",
                                                                                 "2": "cancer"}, "training": []}))
    return task


def test_lits_cases_pair_volume_and_segmentation_across_batches(lits):
    sources = discover_cases(lits)
    assert [source.case_id for source in sources] == ["lits.3", "lits.30", "lits.100"]
    for source, number in zip(sources, (3, 30, 100)):
        image, label = pair(number)
        case = source.load()
        assert case.case_id == source.case_id and case.source == str(source.source)
        assert np.array_equal(case.image.array, image)
        assert case.label.array.dtype == np.uint8 and np.array_equal(case.label.array, label)
        assert case.label.same_grid(case.image)
        assert case.image.spacing == pytest.approx((0.8, 0.8, 2.5))
        assert np.allclose(case.image.direction, np.reshape(DIRECTION, (3, 3)))


def test_lits_volumes_28_to_47_carry_the_ircadb_warning(lits):
    notes = {source.case_id: source.note for source in discover_cases(lits)}
    assert notes == {"lits.3": "", "lits.30": LITS_IRCADB_NOTE, "lits.100": ""}
    assert "3D-IRCADb-01" in LITS_IRCADB_NOTE


def test_a_lits_volume_without_its_segmentation_is_refused(lits):
    (lits / "Training Batch 2" / "segmentation-30.nii.gz").unlink()
    with pytest.raises(InputError, match=r"volume-30.nii.gz: no segmentation-30"):
        discover_cases(lits)


def test_a_lits_number_found_twice_is_refused(lits):
    write_nifti(lits / "copy" / "volume-3.nii.gz", pair(3)[0])
    with pytest.raises(InputError, match="number 3 found twice"):
        discover_cases(lits)


def test_msd_cases_in_number_order_without_hidden_files_or_test_images(msd):
    sources = discover_cases(msd)
    assert [source.case_id for source in sources] == ["msd.liver_2", "msd.liver_10"]
    case = sources[1].load()
    image, label = pair(10)
    assert np.array_equal(case.image.array, image) and np.array_equal(case.label.array, label)


def test_an_msd_image_without_its_label_is_refused(msd):
    (msd / "labelsTr" / "liver_10.nii.gz").unlink()
    with pytest.raises(InputError, match=r"liver_10.nii.gz: no label"):
        discover_cases(msd)


def test_labels_must_be_background_liver_or_tumor(tmp_path):
    image, label = pair(1)
    label[0, 0, 0] = 5
    write_nifti(tmp_path / "volume-1.nii", image)
    write_nifti(tmp_path / "segmentation-1.nii", label)
    (source,) = discover_cases(tmp_path)
    with pytest.raises(InputError, match=r"segmentation-1.nii: holds label values \[5\]"):
        source.load()
    write_nifti(tmp_path / "segmentation-1.nii", label.astype(np.float32) / 2)
    with pytest.raises(InputError, match="non-integer label values"):
        source.load()


def test_float_labels_with_label_values_are_accepted(tmp_path):
    image, label = pair(2)
    write_nifti(tmp_path / "volume-2.nii", image)
    write_nifti(tmp_path / "segmentation-2.nii", label.astype(np.float32))
    case = discover_cases(tmp_path)[0].load()
    assert case.label.array.dtype == np.uint8 and np.array_equal(case.label.array, label)


@pytest.mark.parametrize("change", ["shape", "spacing", "origin"])
def test_a_label_on_another_grid_is_refused(tmp_path, change):
    image, label = pair(3)
    write_nifti(tmp_path / "volume-3.nii", image)
    if change == "shape":
        write_nifti(tmp_path / "segmentation-3.nii", label[:-1])
    elif change == "spacing":
        write_nifti(tmp_path / "segmentation-3.nii", label, spacing=(0.8, 0.8, 5.0))
    else:
        write_nifti(tmp_path / "segmentation-3.nii", label, origin=(170.0, 150.0, -299.0))
    with pytest.raises(InputError, match="segmentation-3.nii: the label's grid .* differs from the image's"):
        discover_cases(tmp_path)[0].load()


def test_folders_without_a_dataset_are_refused_clearly(tmp_path):
    with pytest.raises(InputError, match="no dataset found here; expected a prepared dataset .* LiTS folder"):
        discover_cases(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        discover_cases(tmp_path / "missing")
    write_nifti(tmp_path / "volume-1.nii", pair(1)[0])
    with pytest.raises(InputError, match="is a file"):
        discover_cases(tmp_path / "volume-1.nii")


def test_a_broken_prepared_dataset_json_is_refused(tmp_path):
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match="dataset.json: is not valid JSON"):
        discover_cases(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"cases": [{"id": "a", "image": "a/image.nii.gz"}]}))
    with pytest.raises(InputError, match="case 1 has no label"):
        discover_cases(tmp_path)
