"""Whole synthetic CTs generated from label maps without CT (SynthSeg-style), on tiny label maps written here."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_cascade import TINY_CASCADE

from LiverResUNetLib.datasets.cases import Case
from LiverResUNetLib.datasets.ircadb import read_ircadb_patient
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.model.model_file import read_card
from LiverResUNetLib.phantom.ircadb_writer import write_patient_dicom_series
from LiverResUNetLib.training.synthetic_ct import (
    AIR_HU,
    IntensityPrior,
    body_background,
    learnt_prior,
    synthetic_case,
    synthetic_sources,
    usable_label_maps,
)
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

SPACING = (0.8, 0.8, 2.0)


def _ball(shape, centre, radius):
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    scale = SPACING[1] / SPACING[2]  # radius in pixels in-plane; slices are thicker
    return ((k - centre[0]) / scale) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius ** 2


def _structures(shape=(14, 48, 48)):
    """A tiny abdomen: body, liver with a tumor, a cyst and a vessel in it, a bone, an adrenal tumor (not liver).
    The liver is larger towards the last slices, so slices put in the wrong order would be seen."""
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    skin = ((j - 24) / 21) ** 2 + ((i - 24) / 22) ** 2 <= 1
    skin = np.broadcast_to(skin, shape).copy()
    liver = ((j - 22) / (6 + k)) ** 2 + ((i - 18) / 12) ** 2 <= 1
    liver = np.broadcast_to(liver, shape) & (k >= 1)
    vessel = np.broadcast_to((j - 22) ** 2 + (i - 12) ** 2 <= 2, shape) & liver
    return {"skin": skin, "liver": liver, "livertumor01": _ball(shape, (9, 22, 22), 4),
            "liverkyst": _ball(shape, (9, 22, 14), 2.5), "portalvein": vessel,
            "bone": np.broadcast_to((j - 40) ** 2 + (i - 24) ** 2 <= 9, shape).copy(),
            "leftsurretumor": _ball(shape, (7, 30, 38), 3)}


def _write_label_map(patient, structures):
    """``patient/MASKS_DICOM/<structure>/image_N``, as 3D-IRCADb-01 writes them (0/255 slices)."""
    for number, (name, mask) in enumerate(structures.items(), start=2):
        write_patient_dicom_series(Volume(mask, SPACING), patient / "MASKS_DICOM" / name, description=name,
                                   series_number=number, uid_seed=f"{patient.name}/{name}")
    return patient / "MASKS_DICOM"


def _zipped(folder, archive):
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, path.relative_to(folder.parent).as_posix())
    return archive


@pytest.fixture(scope="module")
def label_map(tmp_path_factory):
    return _write_label_map(tmp_path_factory.mktemp("maps") / "patient.1", _structures())


def test_labels_follow_the_dataset_rules_and_each_structure_has_its_tissue(label_map):
    structures = _structures()
    case = synthetic_case(label_map, "synthetic.1", np.random.default_rng(0))
    hu, labels = case.image.array, case.label.array
    assert hu.dtype == np.float32 and labels.dtype == np.uint8 and hu.shape == structures["skin"].shape
    assert np.allclose(case.image.spacing, SPACING) and case.image.same_grid(case.label)
    # Liver = liver mask (cyst included) ∪ tumor, tumor = the liver tumor mask; the adrenal tumor is not liver.
    assert np.array_equal(labels == TUMOR, structures["livertumor01"])
    assert np.array_equal(labels > 0, structures["liver"] | structures["livertumor01"])
    assert not labels[structures["leftsurretumor"]].any()

    def median(mask):
        return float(np.median(hu[mask]))

    outside = ~structures["skin"]
    assert abs(median(outside) - AIR_HU) < 15  # air (blurred at the skin's edge, clipped at -1024)
    liver_only = structures["liver"] & ~structures["livertumor01"] & ~structures["liverkyst"] & \
        ~structures["portalvein"]
    assert 40 < median(liver_only) < 170
    assert abs(median(structures["livertumor01"]) - median(liver_only)) >= 10  # its contrast to the liver
    assert median(structures["bone"]) > 200 > median(structures["portalvein"]) > 100
    assert median(structures["liverkyst"]) < median(liver_only) - 20  # water-like cyst in the liver


def test_the_unlabelled_body_holds_organs_as_bright_as_the_liver_beside_fat_and_lean_tissue():
    """Unlabelled organs (a label map without heart or spleen) as blobs: one kind liver-bright, one any soft tissue."""
    for seed in range(3):
        hu = body_background((20, 100, 100), (1.0, 1.0, 2.0), np.random.default_rng(seed), liver_hu=110.0)
        assert 0.02 <= ((hu >= 100) & (hu <= 150)).mean() <= 0.25  # the liver-bright kind: 3-12 % (+ the other)
        assert (hu <= 60).mean() >= 0.75  # fat and lean elsewhere
        assert len(np.unique(hu[hu > 60])) <= 2  # each kind of blob one mean HU (texture and noise come later)


def test_the_same_seed_gives_the_same_ct_and_a_zip_reads_as_the_folder(label_map, tmp_path):
    first = synthetic_case(label_map, "a", np.random.default_rng(3))
    again = synthetic_case(_zipped(label_map, tmp_path / "MASKS_DICOM.zip"), "a", np.random.default_rng(3))
    other = synthetic_case(label_map, "a", np.random.default_rng(4))
    assert np.array_equal(first.image.array, again.image.array)
    assert np.array_equal(first.label.array, again.label.array)
    assert np.array_equal(first.label.array, other.label.array)
    assert np.abs(first.image.array - other.image.array).mean() > 5  # other intensities, noise, shading


def test_the_liver_is_drawn_from_the_prior_learnt_on_real_cts(label_map):
    labels = np.zeros((4, 10, 10), dtype=np.uint8)
    labels[:, 2:8, 2:8] = LIVER
    labels[:, 4:6, 4:6] = TUMOR
    hu = np.where(labels == LIVER, 300.0, 200.0).astype(np.float32)
    hu[labels == 0] = -50.0
    volume = Volume(hu)
    prior = learnt_prior([Case("real", volume, volume.with_array(labels), "real")])
    assert prior.liver_hu == (300.0, 300.0)  # one CT of constant liver: no spread
    assert prior.contrast_hu[1] == 100.0 and "learnt from 1 real CT" in prior.source
    assert learnt_prior([]) == IntensityPrior()
    case = synthetic_case(label_map, "b", np.random.default_rng(0), prior)
    structures = _structures()
    liver_only = structures["liver"] & ~structures["livertumor01"] & ~structures["liverkyst"] & \
        ~structures["portalvein"]
    assert abs(float(np.median(case.image.array[liver_only])) - 300.0) < 25


def test_sources_name_each_copy_and_refuse_a_folder_without_a_usable_label_map(label_map, tmp_path):
    sources = synthetic_sources(usable_label_maps(label_map.parents[1]), 2, seed=0, prior=IntensityPrior())
    assert [source.case_id for source in sources] == ["synthetic.patient.1.1", "synthetic.patient.1.2"]
    first, second = (source.load() for source in sources)
    assert not np.array_equal(first.image.array, second.image.array)
    assert np.array_equal(first.image.array, sources[0].load().image.array)
    # With a cache each CT is generated once (HU rounded as CT stores them) and read back from there.
    copy = tmp_path / "copy" / "patient.1" / "MASKS_DICOM"
    shutil.copytree(label_map, copy)
    cache = tmp_path / "cache"
    cached = synthetic_sources([copy], 1, seed=0, prior=IntensityPrior(), cache=cache)[0]
    generated = cached.load()
    assert generated.image.array.dtype == np.int16 and (cache / "synthetic.patient.1.1.npz").is_file()
    assert np.array_equal(generated.image.array, np.rint(first.image.array))
    shutil.rmtree(copy)
    again = cached.load()
    assert np.array_equal(again.image.array, generated.image.array)
    assert np.array_equal(again.label.array, generated.label.array) and again.image.spacing == generated.image.spacing
    structures = _structures()
    no_liver = _write_label_map(tmp_path / "maps" / "patient.2", {"skin": structures["skin"]})
    with pytest.raises(InputError, match="maps: holds no usable label map"):
        usable_label_maps(tmp_path / "maps")
    with pytest.raises(InputError, match="patient.2/MASKS_DICOM: has no 'liver' mask"):
        synthetic_case(no_liver, "c", np.random.default_rng(0))
    short = _write_label_map(tmp_path / "odd" / "patient.3",
                             {"liver": structures["liver"], "skin": structures["skin"][:5]})
    with pytest.raises(InputError, match="MASKS_DICOM/skin: 5 slices"):
        synthetic_case(short, "d", np.random.default_rng(0))


def test_a_real_label_map_gives_the_labels_of_the_real_reader(real_patients):
    """Slices ordered by file number and the dataset's label rules: the synthetic CT of patient 1.7's masks is
    labelled exactly as its real CT (a tumor outside the liver mask, an adrenal gland beside it)."""
    real = read_ircadb_patient(real_patients / "3Dircadb1.7")
    case = synthetic_case(real_patients / "3Dircadb1.7" / "MASKS_DICOM.zip", "s", np.random.default_rng(0))
    assert np.allclose(case.image.spacing, real.image.spacing, atol=1e-4)
    assert np.array_equal(case.label.array, real.label.array)


def test_train_adds_synthetic_cts_to_the_liver_stage_and_never_validates_them(tiny_phantom_dataset, tmp_path):
    """The phantom cohort's own label maps (no skin mask: the whole grid is body) as label maps without CT."""
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", "--data", str(tiny_phantom_dataset),
                             "--out", str(out), "--epochs", "2", "--steps-per-epoch", "4", "--val-fraction", "0.25",
                             *TINY_CASCADE, "--synthetic-cts", str(tiny_phantom_dataset.parent / "raw" / "3Dircadb1")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "synthetic CTs: 1 per label map x 4 label maps" in result.stderr
    assert "learnt from 4 real CT(s)" in result.stderr
    card = read_card(out / "model.pth")
    synthetic = [f"synthetic.3Dircadb1.{number}.1" for number in range(1, 5)]
    split = card["training"]["split"]
    assert set(synthetic) <= set(split["train"]) and len(split["val"]) == 1
    assert not any(case.startswith("synthetic.") for case in split["val"])
    assert "4 synthetic CTs trained (25% of every batch), never validated" in split["method"]
    assert not any(case.startswith("synthetic.") for case in card["tumor_stage"]["training"]["split"]["train"])
    assert not (out / "synthetic_cts").exists()  # generated once for both stages, removed after training
    assert card["training"]["config"]["synthesis"] == {"label_maps": str(tiny_phantom_dataset.parent / "raw" /
                                                                         "3Dircadb1"), "copies": 1, "share": 0.25,
                                                        "tumor_stage": False}


def test_train_names_a_folder_without_label_maps(tiny_phantom_dataset, tmp_path):
    (tmp_path / "empty" / "patient").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", "--data", str(tiny_phantom_dataset),
                             "--out", str(tmp_path / "run"), *TINY_CASCADE, "--synthetic-cts", str(tmp_path / "empty")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"{tmp_path / 'empty'}: holds no usable label map "
                                          "(<patient>/MASKS_DICOM[.zip] with a 'liver' mask)")
    assert not (tmp_path / "run").exists()


def test_the_sixteen_label_maps_without_ct_are_all_usable():
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "3Dircadb1-masks-only"
    if not folder.is_dir():
        pytest.skip(f"the label maps without CT are not beside the repo ({folder})")
    maps = usable_label_maps(folder)
    assert len(maps) == 16 and maps[0].parent.name == "3Dircadb1.2" and maps[-1].parent.name == "3Dircadb1.19"
