"""The phantom cohort: anatomy and HU, labels that follow the masks, the exact 3D-IRCADb-01 files, read-back."""

import re
import zipfile

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from LiverResUNetLib import cli
from LiverResUNetLib.datasets.ircadb import is_tumor_mask, read_ircadb_patient
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.measurements import measure_liver
from LiverResUNetLib.phantom.anatomy import SCENARIOS, TUMOR_DIAMETER_MM, generate_patient, noise_sd
from LiverResUNetLib.phantom.ircadb_writer import STORAGES, storage_for, write_cohort, write_patient_dicom_series
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh

SEED, SIZE, SLICES = 3, 40, 14


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Four small patients: one per storage (zipped, unzipped, both, mixed)."""
    return write_cohort(tmp_path_factory.mktemp("phantom"), 4, size=SIZE, seed=SEED, slices=SLICES)


@pytest.fixture(scope="module")
def every_scenario():
    return [generate_patient(SEED, size=SIZE, number=number, slices=20) for number in range(1, len(SCENARIOS) + 1)]


def test_same_seed_gives_the_same_patient_and_another_seed_another():
    first, again = generate_patient(7, 32, 2, slices=8), generate_patient(7, 32, 2, slices=8)
    assert np.array_equal(first.ct.array, again.ct.array) and np.array_equal(first.label.array, again.label.array)
    assert first.masks.keys() == again.masks.keys()
    assert all(np.array_equal(first.masks[name], again.masks[name]) for name in first.masks)
    assert not np.array_equal(first.ct.array, generate_patient(8, 32, 2, slices=8).ct.array)
    assert not np.array_equal(first.ct.array, generate_patient(7, 32, 3, slices=8).ct.array)


def test_same_seed_writes_byte_identical_files(tmp_path):
    first, second = (write_cohort(tmp_path / name, 1, size=24, seed=2, slices=4) for name in ("a", "b"))
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert {"3Dircadb1.1/PATIENT_DICOM.zip", "3Dircadb1.1/MASKS_DICOM.zip"} <= {str(path) for path in files}
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    assert all((first / path).read_bytes() == (second / path).read_bytes() for path in files)


def test_geometry_mimics_the_dataset_at_any_size():
    small, large = generate_patient(1, 32, 5), generate_patient(1, 128, 5, slices=6)
    for patient in (small, large):
        di, dj, dk = patient.ct.spacing
        assert di == dj and 0.5 <= di * patient.ct.shape[2] / 512 <= 0.9
        assert np.array_equal(patient.ct.direction, np.eye(3)) and patient.ct.origin[:2] == (0.0, 0.0)
    assert 1.0 <= small.ct.spacing[2] <= 4.0
    assert small.ct.spacing[0] * 32 == pytest.approx(large.ct.spacing[0] * 128, abs=0.01)
    assert 180 <= small.ct.shape[0] * small.ct.spacing[2] <= 320  # the default slices cover the abdomen
    middle = large.ct.array[3] > -500
    columns = np.flatnonzero(middle.any(axis=0))
    assert columns[-1] - columns[0] >= 0.75 * 128, "the body fills the field of view"
    assert np.median(large.ct.array[3][:4, :4]) == pytest.approx(-1000, abs=40), "air outside the body"


def test_noise_falls_as_pixels_grow_like_a_downsampled_ct():
    assert noise_sd(16.0, 512) == 16.0 and noise_sd(16.0, 256) == 8.0
    noise = []
    for size in (512, 256):
        patient = generate_patient(5, size, 2, slices=3)
        image, liver = patient.ct.array[1].astype(float), patient.label.array[1] == LIVER
        steps = np.diff(image, axis=1)[liver[:, 1:] & liver[:, :-1]]  # neighbours inside the liver
        noise.append(1.4826 * np.median(np.abs(steps - np.median(steps))) / np.sqrt(2))  # robust to edges
    assert noise[1] == pytest.approx(noise[0] / 2, rel=0.25)


def test_hounsfield_units_of_the_tissues():
    patient = generate_patient(2, 96, 1)
    ct, masks = patient.ct.array.astype(float), patient.masks
    inner_liver = ndimage.binary_erosion(masks["liver"] & (patient.label.array == LIVER), iterations=2)
    assert 45 <= np.median(ct[inner_liver]) <= 80
    assert 2 <= np.std(ct[inner_liver]) <= 15, "noise of 10-20 HU at 512 pixels, less at 96, plus vessels"
    assert 130 <= np.median(ct[ndimage.binary_erosion(masks["aorta"])]) <= 220
    for kidney in ("leftkidney", "rightkidney"):
        assert np.percentile(ct[masks[kidney]], 75) >= 120
    assert 30 <= np.median(ct[ndimage.binary_erosion(masks["spleen"])]) <= 70
    body = ct > -500
    assert np.percentile(ct[body], 99.5) >= 300, "bone"
    assert np.mean((ct[body] > -130) & (ct[body] < -70)) > 0.1, "subcutaneous and visceral fat"
    assert ct.min() >= -1024 and patient.ct.array.dtype == np.int16


def test_labels_follow_the_masks_and_the_traps_stay_out(every_scenario):
    for patient in every_scenario:
        label, masks = patient.label.array, patient.masks
        tumor_folders = [name for name in masks if is_tumor_mask(name)]
        tumors = np.logical_or.reduce([masks[name] for name in tumor_folders]) if tumor_folders \
            else np.zeros(label.shape, bool)
        assert np.array_equal(label == TUMOR, tumors)
        assert np.array_equal(label > 0, masks["liver"] | tumors)
        assert bool(tumor_folders) != patient.scenario.tumor_free
        for trap in patient.scenario.traps:
            if trap.endswith("surretumor"):
                assert not (masks[trap] & (label > 0)).any(), f"patient {patient.number}: {trap} touches the liver"
            else:
                assert (label[masks[trap]] == LIVER).all(), f"patient {patient.number}: {trap} is liver, not tumor"
        if patient.scenario.tumor_outside_liver_mask:
            assert not (masks["tumor"] & masks["liver"]).any()
        else:
            assert not (tumors & ~masks["liver"]).any()


def test_every_trap_and_tumor_folder_style_appears(every_scenario):
    folders = {name for patient in every_scenario for name in patient.masks}
    assert {"livertumor01", "livertumor1", "livertumor", "livertumors", "tumor"} <= folders
    for style in (r"livertumor\d\d", r"livertumor\d"):
        numbers = sorted(int(name[10:]) for name in folders if re.fullmatch(style, name))
        assert numbers == list(range(1, len(numbers) + 1)), "numbered from 1 without gaps"
    assert {"leftsurretumor", "rightsurretumor", "liverkyst", "liverkyste", "livercyst", "metastasectomie"} <= folders


def test_tumors_are_3_to_40_mm_hypo_or_hyperdense_and_separate():
    patients = [generate_patient(seed, 96, 1) for seed in range(4)]
    tumors = [tumor for patient in patients for tumor in patient.tumors]
    assert {tumor.kind for tumor in tumors} == {"hypodense", "hyperdense"}
    for patient in patients:
        assert measure_liver(patient.label)["tumor_count"] == len(patient.tumors)
        for tumor in patient.tumors:
            assert TUMOR_DIAMETER_MM[0] <= tumor.diameter_mm <= TUMOR_DIAMETER_MM[1]
            seen = np.mean(patient.ct.array[patient.masks[tumor.folder]])  # one folder per tumor in scenario 1
            if tumor.kind == "hypodense":
                assert 20 <= tumor.hu <= 45 and seen < 50
            else:
                assert 100 <= tumor.hu <= 140 and seen > 80


def test_the_cohort_covers_each_storage(cohort):
    expected_entries = {
        "zipped": {"PATIENT_DICOM.zip", "MASKS_DICOM.zip"}, "unzipped": {"PATIENT_DICOM", "MASKS_DICOM"},
        "both": {"PATIENT_DICOM", "MASKS_DICOM", "PATIENT_DICOM.zip", "MASKS_DICOM.zip"},
        "mixed": {"PATIENT_DICOM.zip", "MASKS_DICOM"}}
    assert set(expected_entries) == set(STORAGES)
    for number in range(1, 5):
        folder = cohort / f"3Dircadb1.{number}"
        assert {entry.name for entry in folder.iterdir()} == expected_entries[storage_for(number)] | {"LICENSE.txt"}
    with zipfile.ZipFile(cohort / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        names = archive.namelist()
    files = [name for name in names if not name.endswith("/")]
    assert all(name.startswith("PATIENT_DICOM/") for name in names)
    assert sorted(files) == sorted(f"PATIENT_DICOM/image_{k}" for k in range(SLICES))
    assert files != sorted(files, key=lambda name: int(name.rsplit("_", 1)[1])), "members in a shuffled order"


def test_dicom_files_are_written_as_in_the_dataset(cohort):
    folder = cohort / "3Dircadb1.2"
    ct_files = sorted((folder / "PATIENT_DICOM").iterdir())
    assert {path.name for path in ct_files} == {f"image_{k}" for k in range(SLICES)}
    heights = {}
    for path in ct_files:
        header = pydicom.dcmread(path)
        assert header.Modality == "CT" and header.BitsAllocated == 16 and header.PixelRepresentation == 1
        assert (float(header.RescaleSlope), float(header.RescaleIntercept)) == (1.0, 0.0)
        assert [float(v) for v in header.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in header.ImagePositionPatient][:2] == [0.0, 0.0]
        heights[int(path.name.split("_")[1])] = float(header.ImagePositionPatient[2])
    assert [heights[k] for k in range(SLICES)] == sorted(heights.values()), "slice 0 is the caudal end"
    for mask in (folder / "MASKS_DICOM").iterdir():
        header = pydicom.dcmread(mask / "image_0")
        assert header.BitsAllocated == 8 and set(np.unique(header.pixel_array)) <= {0, 255}
    assert "Synthetic" in (folder / "LICENSE.txt").read_text()


def test_reading_back_gives_exactly_what_the_generator_meant(cohort):
    for number in range(1, 5):
        meant = generate_patient(SEED, size=SIZE, number=number, slices=SLICES)
        case = read_ircadb_patient(cohort / f"3Dircadb1.{number}")
        assert case.case_id == f"3Dircadb1.{number}"
        assert case.image.array.dtype == np.int16
        assert np.array_equal(case.image.array, meant.ct.array)
        assert np.array_equal(case.label.array, meant.label.array)
        assert case.image.same_grid(meant.ct, tolerance=1e-6) and case.label.same_grid(meant.ct, tolerance=1e-6)


def test_any_volume_round_trips_through_the_dicom_writer(tmp_path):
    """An oblique, feet-first grid: every voxel comes back at the same place in patient space."""
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    direction = rotation @ np.diag([1.0, 1.0, -1.0])
    array = np.random.default_rng(0).integers(-1024, 2000, size=(5, 6, 7)).astype(np.int16)
    volume = Volume(array, (0.7, 0.8, 2.5), (-12.5, 30.25, 100.0), direction)
    written = write_patient_dicom_series(volume, tmp_path / "series", uid_seed="round trip")
    back = read_series(written)
    assert back.array.dtype == np.int16
    for k_back in range(back.shape[0]):
        position = back.ijk_to_lps() @ [0, 0, k_back, 1]
        k = int(round(np.linalg.solve(volume.ijk_to_lps(), position)[2]))
        assert np.allclose(volume.ijk_to_lps() @ [0, 0, k, 1], position, atol=1e-4)
        assert np.array_equal(back.array[k_back], array[k])
    assert np.allclose(back.direction[:, :2], direction[:, :2], atol=1e-6)


def test_the_writer_refuses_values_dicom_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="int16"):
        write_patient_dicom_series(Volume(np.full((2, 3, 3), 40000, dtype=np.int32)), tmp_path / "a")
    with pytest.raises(ValueError, match="integer"):
        write_patient_dicom_series(Volume(np.full((2, 3, 3), 0.5)), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_phantom_command_prints_what_the_reader_found(tmp_path, capsys):
    arguments = ["phantom", "--out", str(tmp_path), "--patients", "3", "--size", "32", "--slices", "10"]
    assert cli.main(arguments + ["--seed", "1"]) == 0
    output = capsys.readouterr()
    rows = [line.split() for line in output.out.splitlines() if line.startswith("3Dircadb1.")]
    assert [row[0] for row in rows] == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3"]
    assert [row[1] for row in rows] == ["zipped", "unzipped", "both"]
    assert all(row[2] == "10" for row in rows)
    assert rows[2][6] == "0" and rows[2][8] == "-", "patient 3 is tumor-free"
    assert "[100%]" in output.err
    assert cli.main(["phantom", "--out", str(tmp_path), "--patients", "1", "--size", "32", "--slices", "4"]) == 0
    assert [p.name for p in (tmp_path / "3Dircadb1").iterdir()] == ["3Dircadb1.1"], "an old cohort is replaced"


def test_phantom_command_first_numbers_a_held_out_cohort_apart(tmp_path, capsys):
    arguments = ["phantom", "--patients", "2", "--size", "32", "--slices", "4", "--seed", "1"]
    assert cli.main(arguments + ["--out", str(tmp_path / "train")]) == 0
    assert cli.main(arguments + ["--out", str(tmp_path / "test"), "--first", "3"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "test" / "3Dircadb1").iterdir()) == ["3Dircadb1.3", "3Dircadb1.4"]
    held_out = read_ircadb_patient(tmp_path / "test" / "3Dircadb1" / "3Dircadb1.3")
    assert np.array_equal(held_out.image.array, generate_patient(1, size=32, number=3, slices=4).ct.array)


def test_phantom_command_never_replaces_a_real_dataset(tmp_path, capsys):
    real_patient = tmp_path / "3Dircadb1" / "3Dircadb1.1"
    real_patient.mkdir(parents=True)
    (real_patient / "LICENSE.txt").write_text("CC BY-NC-ND 4.0")
    assert cli.main(["phantom", "--out", str(tmp_path), "--patients", "1", "--size", "32", "--slices", "4"]) == 2
    assert "not a phantom cohort" in capsys.readouterr().err
    assert (real_patient / "LICENSE.txt").read_text() == "CC BY-NC-ND 4.0"


def test_phantom_command_refuses_a_field_too_small_to_draw(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["phantom", "--out", str(tmp_path), "--size", "8"])
    assert stop.value.code == 2 and "--size: must be at least 16, got 8" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
