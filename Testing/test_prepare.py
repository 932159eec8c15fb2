"""``prepare``: one image/label folder per case plus dataset.json, written all at once or not at all."""

import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from LiverResUNetLib import cli
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.ircadb import read_ircadb_patient
from LiverResUNetLib.datasets.nifti_datasets import LITS_IRCADB_NOTE, read_dataset_json
from LiverResUNetLib.datasets.prepare import prepare_dataset
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.phantom.ircadb_writer import write_cohort


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A phantom 3D-IRCADb-01 root of three small patients (patient 3 is tumor-free)."""
    return write_cohort(tmp_path_factory.mktemp("raw"), 3, size=32, seed=0, slices=10)


@pytest.fixture
def raw_copy(raw, tmp_path):
    return shutil.copytree(raw, tmp_path / "raw" / "3Dircadb1")


def snapshot(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_prepared_dataset_holds_every_case_as_nifti(raw, tmp_path):
    out = prepare_dataset(raw, tmp_path / "dataset")
    assert out == tmp_path / "dataset"
    description = json.loads((out / "dataset.json").read_text())
    assert description["name"] == "dataset" and description["source"] == str(raw)
    assert description["labels"] == {"0": "background", "1": "liver", "2": "liver tumor"}
    assert [entry["id"] for entry in description["cases"]] == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3"]
    for entry in description["cases"]:
        case = read_ircadb_patient(raw / entry["id"])
        image, label = read_image(out / entry["image"]), read_image(out / entry["label"])
        assert entry["image"] == f"{entry['id']}/image.nii.gz" and entry["label"] == f"{entry['id']}/label.nii.gz"
        assert np.array_equal(image.array, case.image.array) and image.array.dtype == np.int16
        assert np.array_equal(label.array, case.label.array) and label.array.dtype == np.uint8
        assert image.same_grid(case.image) and label.same_grid(case.image)
        assert entry["slices"] == 10 and entry["spacing"] == pytest.approx(list(case.image.spacing))
        assert entry["tumor_voxels"] == int((case.label.array == 2).sum())
        assert entry["source"] == str(raw / entry["id"]) and "note" not in entry
    assert description["cases"][2]["tumor_voxels"] == 0 < description["cases"][0]["tumor_voxels"]
    assert sitk.ReadImage(str(out / "3Dircadb1.1" / "label.nii.gz")).GetPixelID() == sitk.sitkUInt8


def test_a_prepared_dataset_reads_back_as_the_same_cases(raw, tmp_path):
    out = prepare_dataset(raw, tmp_path / "dataset")
    sources = discover_cases(out)
    assert [source.case_id for source in sources] == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3"]
    case = sources[1].load()
    original = read_ircadb_patient(raw / "3Dircadb1.2")
    assert np.array_equal(case.image.array, original.image.array)
    assert np.array_equal(case.label.array, original.label.array)


def test_a_dataset_json_with_the_old_spelling_reads_with_the_new_keys(raw, tmp_path):
    out = prepare_dataset(raw, tmp_path / "prepared")
    description = json.loads((out / "dataset.json").read_text())
    counts = [entry.pop("tumor_voxels") for entry in description["cases"]]
    for entry, count in zip(description["cases"], counts):
        entry["tumour_voxels"] = count
    (out / "dataset.json").write_text(json.dumps(description))
    cases = read_dataset_json(out)["cases"]
    assert [entry["tumor_voxels"] for entry in cases] == counts
    assert not any("tumour_voxels" in entry for entry in cases)


def test_progress_is_reported_once_per_case(raw, tmp_path):
    calls = []
    prepare_dataset(raw, tmp_path / "dataset", progress=lambda fraction, message: calls.append((fraction, message)))
    assert [fraction for fraction, _ in calls] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert calls[0][1].startswith("3Dircadb1.1: 10 slices")


def test_a_failing_case_leaves_no_half_dataset_and_the_old_one_intact(raw, raw_copy, tmp_path):
    out = prepare_dataset(raw, tmp_path / "dataset")
    before = snapshot(out)
    shutil.rmtree(raw_copy / "3Dircadb1.3" / "MASKS_DICOM")
    (raw_copy / "3Dircadb1.3" / "MASKS_DICOM.zip").unlink()  # patient 3 keeps both forms
    with pytest.raises(InputError, match="3Dircadb1.3: no MASKS_DICOM"):
        prepare_dataset(raw_copy, out)
    assert snapshot(out) == before
    with pytest.raises(InputError):
        prepare_dataset(raw_copy, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dataset", "raw"], "no partial folder left behind"


def test_preparing_again_replaces_the_old_dataset(raw, raw_copy, tmp_path):
    out = prepare_dataset(raw, tmp_path / "dataset")
    shutil.rmtree(raw_copy / "3Dircadb1.2")
    prepare_dataset(raw_copy, out)
    assert [entry["id"] for entry in json.loads((out / "dataset.json").read_text())["cases"]] == \
        ["3Dircadb1.1", "3Dircadb1.3"]
    assert not (out / "3Dircadb1.2").exists()
    prepare_dataset(out, out)  # a prepared dataset is itself a source, even in place
    assert [source.case_id for source in discover_cases(out)] == ["3Dircadb1.1", "3Dircadb1.3"]


def test_a_folder_that_is_not_a_dataset_is_never_replaced(raw, tmp_path):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(InputError, match="documents: exists and is not a prepared dataset"):
        prepare_dataset(raw, precious)
    assert (precious / "thesis.txt").read_text() == "years of work"
    out = prepare_dataset(raw, tmp_path / "dataset")
    inside = shutil.copytree(raw, out / "raw" / "3Dircadb1")
    with pytest.raises(InputError, match="dataset: holds the raw data"):
        prepare_dataset(inside, out)
    assert (inside / "3Dircadb1.1" / "LICENSE.txt").is_file()


def test_lits_provenance_note_reaches_dataset_json(tmp_path):
    for name, array in (("volume-31.nii", np.zeros((2, 4, 4), np.int16)),
                        ("segmentation-31.nii", np.ones((2, 4, 4), np.uint8))):
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / name))
    out = prepare_dataset(tmp_path, tmp_path.parent / f"{tmp_path.name}-prepared")
    (entry,) = json.loads((out / "dataset.json").read_text())["cases"]
    assert entry["id"] == "lits.31" and entry["note"] == LITS_IRCADB_NOTE
    assert discover_cases(out)[0].note == LITS_IRCADB_NOTE


def test_prepare_command(raw, tmp_path, capsys):
    assert cli.main(["prepare", "--data", str(raw), "--out", str(tmp_path / "dataset")]) == 0
    output = capsys.readouterr()
    assert output.out.strip() == str(tmp_path / "dataset" / "dataset.json")
    assert "[100%] 3Dircadb1.3" in output.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["prepare", "--data", str(empty), "--out", str(tmp_path / "other")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {empty}: no dataset found here") and "\n" not in error
    assert not (tmp_path / "other").exists()
