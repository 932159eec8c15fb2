"""3D-IRCADb-01 reading: mask names and traps, zips read safely, folders preferred, masks paired by position."""

import os
import shutil
import stat
import tempfile
import zipfile

import numpy as np
import pytest

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.ircadb import is_tumor_mask, list_ircadb_patients, read_ircadb_patient
from LiverResUNetLib.datasets.safe_zip import extract_all, extracted
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.phantom.anatomy import generate_patient
from LiverResUNetLib.phantom.ircadb_writer import write_patient, write_patient_dicom_series
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh

SEED, SIZE, SLICES = 1, 40, 16  # every trap and several tumors land in this small field


def patient(number):
    return generate_patient(SEED, size=SIZE, number=number, slices=SLICES)


def write(tmp_path, number, storage="unzipped", name=None):
    return write_patient(patient(number), tmp_path / (name or f"3Dircadb1.{number}"), storage)


def test_tumor_mask_names_follow_the_dataset():
    for name in ("livertumor", "livertumor01", "livertumor07", "livertumor1", "livertumor2", "livertumors",
                 "tumor", "LiverTumor03", "TUMOR"):
        assert is_tumor_mask(name), name
    for name in ("liver", "leftsurretumor", "rightsurretumor", "liverkyst", "liverkyste", "livercyst",
                 "metastasectomie", "portalvein", "livertumorkyst", "surrenaltumor"):
        assert not is_tumor_mask(name), name


@pytest.fixture(scope="module")
def read_back(tmp_path_factory):
    """Patients 1-5 written once and read back: {number: (the generated patient, the Case read)}."""
    folder = tmp_path_factory.mktemp("ircadb")
    return {number: (patient(number), read_ircadb_patient(write(folder, number))) for number in range(1, 6)}


def test_adrenal_tumor_is_background_and_cyst_is_liver(read_back):
    for number, trap, inside in ((2, "leftsurretumor", 0), (5, "rightsurretumor", 0), (1, "liverkyst", LIVER),
                                 (3, "livercyst", LIVER), (3, "metastasectomie", LIVER)):
        meant, case = read_back[number]
        assert meant.masks[trap].any(), f"patient {number} must hold the {trap} trap"
        assert (case.label.array[meant.masks[trap]] == inside).all(), trap


def test_tumor_mask_outside_the_liver_mask_still_makes_liver_and_tumor(read_back):
    """Patient 1.7's quirk: liver label = liver ∪ tumors, tumor label = tumors."""
    meant, case = read_back[4]
    assert meant.masks["tumor"].any() and not (meant.masks["tumor"] & meant.masks["liver"]).any()
    assert np.array_equal(case.label.array == TUMOR, meant.masks["tumor"])
    assert np.array_equal(case.label.array > 0, meant.masks["liver"] | meant.masks["tumor"])


def test_tumor_free_patient_is_a_valid_case(read_back):
    _, case = read_back[3]
    assert (case.label.array == LIVER).any() and not (case.label.array == TUMOR).any()
    assert case.label.metadata["tumor_masks"] == []


def test_every_patient_reads_back_exactly(read_back):
    for meant, case in read_back.values():
        assert np.array_equal(case.image.array, meant.ct.array) and np.array_equal(case.label.array,
                                                                                    meant.label.array)


def test_several_tumor_folders_and_any_letter_case(tmp_path):
    meant = patient(1)
    folder = write(tmp_path, 1)
    masks = folder / "MASKS_DICOM"
    assert len([name for name in meant.masks if name.startswith("livertumor0")]) >= 2
    (masks / "liver").rename(masks / "LIVER")
    (masks / "livertumor01").rename(masks / "LiverTumor01")
    case = read_ircadb_patient(folder)
    assert np.array_equal(case.label.array, meant.label.array)
    assert case.label.array.dtype == np.uint8


@pytest.mark.parametrize("storage", ["zipped", "both", "mixed"])
def test_zips_are_read_from_a_private_folder_and_cleaned_up(tmp_path, monkeypatch, storage):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder = write(tmp_path, 2, storage)
    before = sorted(path.relative_to(folder) for path in folder.rglob("*"))
    case = read_ircadb_patient(folder)
    assert np.array_equal(case.label.array, patient(2).label.array)
    assert sorted(path.relative_to(folder) for path in folder.rglob("*")) == before, "nothing written beside the data"
    assert list(scratch.iterdir()) == [], "the temporary extraction is removed"


def test_the_unzipped_folder_wins_over_its_zip(tmp_path):
    folder = write(tmp_path, 3, "both")
    (folder / "PATIENT_DICOM.zip").write_bytes(b"not a zip")
    (folder / "MASKS_DICOM.zip").write_bytes(b"not a zip")
    assert np.array_equal(read_ircadb_patient(folder).image.array, patient(3).ct.array)


def test_errors_inside_a_zip_name_the_zip_not_a_temporary_folder(tmp_path):
    folder = write(tmp_path, 1, "zipped")
    archive = folder / "PATIENT_DICOM.zip"
    with zipfile.ZipFile(archive) as source:
        contents = {info.filename: source.read(info) for info in source.infolist()}
    contents["PATIENT_DICOM/image_5"] = contents["PATIENT_DICOM/image_5"][:400]
    with zipfile.ZipFile(archive, "w") as damaged:
        for name, data in contents.items():
            damaged.writestr(name, data)
    with pytest.raises(InputError) as error:
        read_ircadb_patient(folder)
    assert str(error.value).startswith(f"{archive}:PATIENT_DICOM: ")
    assert tempfile.gettempdir() + "/liverresunet-zip" not in str(error.value)


def test_a_damaged_zip_is_refused_by_name(tmp_path):
    folder = write(tmp_path, 1, "zipped")
    (folder / "MASKS_DICOM.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="MASKS_DICOM.zip: cannot be extracted"):
        read_ircadb_patient(folder)


def crafted_zip(path, member, data=b"escaped", mode=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("PATIENT_DICOM/image_0", b"harmless")
        info = zipfile.ZipInfo(member)
        if mode is not None:
            info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize("member, mode, reason", [
    ("../../escaped.txt", None, "climbs out"),
    ("PATIENT_DICOM/../../escaped.txt", None, "climbs out"),
    ("/tmp/escaped.txt", None, "absolute path"),
    ("C:/escaped.txt", None, "absolute path"),
    ("..\\..\\escaped.txt", None, "climbs out"),
    ("PATIENT_DICOM/link", stat.S_IFLNK | 0o777, "symbolic link"),
])
def test_unsafe_zip_members_are_refused_before_anything_is_extracted(tmp_path, member, mode, reason):
    archive = crafted_zip(tmp_path / "PATIENT_DICOM.zip", member, b"/etc/passwd" if mode else b"escaped", mode)
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with pytest.raises(InputError, match=reason):
        extract_all(archive, target)
    assert list(target.iterdir()) == [], "refused before the first member was written"
    assert not any(path.name == "escaped.txt" for path in tmp_path.rglob("*"))


def test_a_patient_folder_with_an_unsafe_zip_is_refused(tmp_path):
    folder = tmp_path / "3Dircadb1.1"
    folder.mkdir()
    crafted_zip(folder / "PATIENT_DICOM.zip", "../../escaped.txt")
    with pytest.raises(InputError, match="PATIENT_DICOM.zip: unsafe zip archive"):
        read_ircadb_patient(folder)
    assert not (tmp_path / "escaped.txt").exists()


def test_extracted_cleans_up_even_when_the_reader_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    archive = crafted_zip(tmp_path / "fine.zip", "PATIENT_DICOM/image_1")
    with pytest.raises(RuntimeError), extracted(archive) as folder:
        assert (folder / "PATIENT_DICOM" / "image_1").read_bytes() == b"escaped"
        raise RuntimeError("reader failed")
    assert [path.name for path in tmp_path.iterdir()] == ["fine.zip"]


def test_mask_slices_are_placed_by_position(tmp_path):
    """A mask series covering only some CT slices lands on the slices at its positions."""
    meant = patient(2)
    folder = write(tmp_path, 2)
    ct = meant.ct
    part = slice(3, 9)
    origin = np.asarray(ct.origin) + part.start * ct.spacing[2] * ct.direction[:, 2]
    partial = Volume(meant.masks["liver"][part], ct.spacing, origin, ct.direction)
    shutil.rmtree(folder / "MASKS_DICOM" / "liver")
    write_patient_dicom_series(partial, folder / "MASKS_DICOM" / "liver", uid_seed="partial liver")
    liver = np.zeros(ct.shape, dtype=bool)
    liver[part] = meant.masks["liver"][part]
    tumors = meant.label.array == TUMOR
    case = read_ircadb_patient(folder)
    assert np.array_equal(case.label.array == TUMOR, tumors)
    assert np.array_equal(case.label.array > 0, liver | tumors)


@pytest.mark.parametrize("change", ["pixel size", "shifted half a slice", "shifted in plane", "beyond the CT"])
def test_a_mask_off_the_ct_grid_is_refused(tmp_path, change):
    meant = patient(2)
    folder = write(tmp_path, 2)
    ct = meant.ct
    spacing, origin, mask = list(ct.spacing), np.asarray(ct.origin, dtype=float), meant.masks["liver"]
    if change == "pixel size":
        spacing[0] = spacing[1] = spacing[0] * 0.9
    elif change == "shifted half a slice":
        origin[2] += ct.spacing[2] / 2
    elif change == "shifted in plane":
        origin[0] += ct.spacing[0]
    else:
        origin[2] += 3 * ct.spacing[2]
    shutil.rmtree(folder / "MASKS_DICOM" / "liver")
    write_patient_dicom_series(Volume(mask, spacing, origin, ct.direction), folder / "MASKS_DICOM" / "liver")
    with pytest.raises(InputError, match="does not lie on the CT grid") as error:
        read_ircadb_patient(folder)
    assert str(error.value).startswith(str(folder / "MASKS_DICOM" / "liver"))


def test_missing_parts_are_refused_by_name(tmp_path):
    folder = write(tmp_path, 1)
    shutil.rmtree(folder / "MASKS_DICOM" / "liver")
    with pytest.raises(InputError, match="no 'liver' mask folder; found: .*livertumor01"):
        read_ircadb_patient(folder)
    shutil.rmtree(folder / "MASKS_DICOM")
    with pytest.raises(InputError, match="no MASKS_DICOM folder or MASKS_DICOM.zip"):
        read_ircadb_patient(folder)
    shutil.rmtree(folder / "PATIENT_DICOM")
    with pytest.raises(InputError, match="no PATIENT_DICOM folder or PATIENT_DICOM.zip"):
        read_ircadb_patient(folder)
    with pytest.raises(InputError, match="is not a folder"):
        read_ircadb_patient(tmp_path / "missing")


def test_patients_are_listed_in_number_order_from_a_root_or_above_it(tmp_path):
    root = tmp_path / "3Dircadb1"
    for number in (10, 2, 1):
        folder = root / f"3Dircadb1.{number}"
        folder.mkdir(parents=True)
        (folder / "PATIENT_DICOM.zip").write_bytes(b"")
    (root / "notes").mkdir()
    (root / "readme.txt").write_text("not a patient")
    expected = ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.10"]
    assert [path.name for path in list_ircadb_patients(root)] == expected
    assert [source.case_id for source in discover_cases(root)] == expected
    assert [source.case_id for source in discover_cases(tmp_path)] == expected
    assert [source.case_id for source in discover_cases(root / "3Dircadb1.2")] == ["3Dircadb1.2"]
    with pytest.raises(InputError, match="no 3D-IRCADb-01 patient folder"):
        list_ircadb_patients(root / "notes")


def test_a_discovered_patient_loads_as_its_case(tmp_path):
    write(tmp_path / "3Dircadb1", 5, "mixed")
    (source,) = discover_cases(tmp_path)
    assert source.case_id == "3Dircadb1.5" and source.note == ""
    case = source.load()
    assert case.case_id == "3Dircadb1.5" and case.source == str(tmp_path / "3Dircadb1" / "3Dircadb1.5")
    assert np.array_equal(case.label.array, patient(5).label.array)
    assert os.path.isdir(case.source)
