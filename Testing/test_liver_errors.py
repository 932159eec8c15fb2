"""benchmarks/liver_errors.py splits a liver's false voxels into near (the boundary) and distant (another organ),
and its oracle bound removes exactly the distant ones."""

import numpy as np
import pytest
from benchmark_script import load_benchmark


@pytest.fixture(scope="module")
def liver_errors():
    return load_benchmark("liver_errors").liver_errors


def test_distant_false_liver_is_told_from_the_boundary_and_counted_above_the_top(liver_errors):
    spacing = (1.0, 1.0, 2.0)  # mm: (di, dj, dk); a voxel is 2 uL
    reference = np.zeros((20, 40, 40), dtype=bool)
    reference[2:10, 10:20, 10:20] = True  # 800 voxels, top slice 9
    found = reference.copy()
    found[2:10, 20:22, 10:20] = True  # 160 false voxels on the boundary, within 2 mm
    found[2:10, 10:12, 10:20] = False  # 160 missed
    found[14:18, 10:15, 10:15] = True  # 100 false voxels 10-16 mm above the top (2 mm slices): a heart
    found[3:5, 34:36, 34:36] = True  # 8 false voxels far beside it, below the top
    row = liver_errors(found, reference, spacing, far_mm=9.0)
    millilitres = 0.002
    assert row["false_ml"] == pytest.approx(268 * millilitres) and row["missed_ml"] == pytest.approx(160 * millilitres)
    assert row["distant_false_ml"] == pytest.approx(108 * millilitres)
    assert row["distant_false_above_top_ml"] == pytest.approx(100 * millilitres)
    true_positive = 800 - 160
    assert row["liver_dice"] == pytest.approx(2 * true_positive / (found.sum() + 800))
    assert row["liver_dice_without_distant_false"] == pytest.approx(2 * true_positive / (found.sum() - 108 + 800))


def test_a_stored_label_map_is_scored_against_its_case_and_one_on_another_grid_is_refused(tmp_path, monkeypatch,
                                                                                            capsys):
    """``--labels LABELS DATASET`` (e.g. the pretrained ceiling's label map) on the one case of a dataset."""
    import json

    from LiverResUNetLib.datasets.discovery import discover_cases
    from LiverResUNetLib.datasets.prepare import prepare_dataset
    from LiverResUNetLib.io.image_file import write_image
    from LiverResUNetLib.phantom.ircadb_writer import write_cohort
    from LiverResUNetLib.volume import Volume

    dataset = prepare_dataset(write_cohort(tmp_path / "raw", 1, size=48, seed=0, slices=16), tmp_path / "dataset")
    case = discover_cases(dataset)[0].load()
    labels = case.label.array.copy()
    labels[:2, :4, :4] = 1  # a distant false blob in a corner, far from the phantom's liver
    stored = write_image(case.label.with_array(labels), tmp_path / "labels.nii.gz")
    script = load_benchmark("liver_errors")
    monkeypatch.setattr("sys.argv", ["liver_errors.py", "--labels", str(stored), str(dataset), "--far", "5"])
    script.main()
    row = json.loads(capsys.readouterr().out)
    assert row["case"] == case.case_id and row["missed_ml"] == 0 and row["distant_false_ml"] > 0
    assert row["liver_dice"] < 1.0 and row["liver_dice_without_distant_false"] == 1.0
    other = write_image(Volume(labels[1:], case.label.spacing), tmp_path / "cropped.nii.gz")
    shifted = write_image(Volume(labels, case.label.spacing, tuple(c + 5.0 for c in case.label.origin),
                                 case.label.direction), tmp_path / "shifted.nii.gz")  # the same shape, 5 mm away
    for moved in (other, shifted):
        monkeypatch.setattr("sys.argv", ["liver_errors.py", "--labels", str(moved), str(dataset)])
        with pytest.raises(SystemExit, match=f"{moved.name}: grid"):
            script.main()
