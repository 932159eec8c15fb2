"""Lesion review in the core: the numbered lesion list, reject, and growing a lesion from one seed click."""

import numpy as np
import pytest

from LiverResUNetLib.lesion_review import (
    NoLesionAtSeed,
    SeedOutsideLiver,
    grow_lesion,
    lesion_map,
    reject_lesion,
    review_summary,
)
from LiverResUNetLib.measurements import measure_liver
from review_phantom import MISSED_LESION_SEED_KJI, phantom


def test_lesion_map_numbers_lesions_as_the_results_table_does() -> None:
    _, labels = phantom()
    numbered = lesion_map(labels)
    assert numbered.dtype == np.int32 and numbered.max() == 2
    assert np.count_nonzero(numbered == 1) == 480 and np.count_nonzero(numbered == 2) == 4
    table = measure_liver(labels)["lesions"]
    assert [row["volume_ml"] for row in table] == pytest.approx([480 * 0.00128, 4 * 0.00128])


def test_numbering_is_largest_first_whatever_the_scan_order() -> None:
    _, labels = phantom()
    array = labels.array.copy()
    array[1, 6, 6] = 2  # a single voxel scanned before both lesions
    numbered = lesion_map(labels.with_array(array))
    assert numbered[1, 6, 6] == 3 and numbered[8, 40, 60] == 2 and numbered[5, 15, 15] == 1


def test_summary_lists_each_lesion_with_its_measures_and_centre() -> None:
    _, labels = phantom()
    summary = review_summary(labels)
    assert summary.tumor_count == 2 and len(summary.lesions) == 2
    assert summary.liver_volume_ml == pytest.approx(10 * 50 * 70 * 0.00128)
    assert summary.tumor_burden_percent == pytest.approx(100 * 484 / (10 * 50 * 70))
    first = summary.lesions[0]
    assert first.number == 1 and first.volume_ml == pytest.approx(480 * 0.00128)
    assert first.longest_axial_diameter_mm == pytest.approx(np.hypot(12 * 0.8, 10 * 0.8))
    assert np.allclose(first.centroid_kji, (4.5, 14.5, 15.5), atol=0.5)  # the voxel nearest the centre
    assert labels.array[first.centroid_kji] == 2
    assert first.centroid_lps == pytest.approx((-40.0 + 15.5 * 0.8, -30.0 + 14.5 * 0.8, 10.0 + 4.5 * 2.0))


def test_reject_turns_one_lesion_into_liver_and_changes_nothing_else() -> None:
    _, labels = phantom()
    rejected = reject_lesion(labels, 2)
    changed = rejected.array != labels.array
    assert np.count_nonzero(changed) == 4 and np.all(rejected.array[changed] == 1)
    assert rejected.same_grid(labels)
    assert review_summary(rejected).tumor_count == 1
    assert labels.array[8, 40, 60] == 2  # the input is left as it was


def test_reject_of_a_lesion_that_does_not_exist_says_so() -> None:
    _, labels = phantom()
    with pytest.raises(ValueError, match="there is no lesion 3: the segmentation has 2"):
        reject_lesion(labels, 3)


def test_grow_from_one_seed_finds_the_missed_lesion_and_nothing_around_it() -> None:
    ct, labels = phantom()
    grown = grow_lesion(ct, labels, MISSED_LESION_SEED_KJI)
    added = (grown.array == 2) & (labels.array != 2)
    expected = np.zeros(labels.shape, bool)
    expected[4:8, 30:38, 30:40] = True
    assert np.array_equal(added, expected)
    assert review_summary(grown).tumor_count == 3
    assert np.array_equal(grown.array[~expected], labels.array[~expected])


def test_grow_stays_inside_the_liver_and_the_radius() -> None:
    ct, labels = phantom()
    hu = ct.array.copy()
    hu[1:11, 25:55, 30:75] = 0.0  # a large lesion the label map lacks, reaching the liver's edge
    grown = grow_lesion(ct.with_array(hu), labels, (5, 45, 50), max_radius_mm=6.0)
    added = np.argwhere((grown.array == 2) & (labels.array != 2))
    assert len(added) > 0
    offsets_mm = (added - [5, 45, 50]) * [2.0, 0.8, 0.8]
    assert np.sqrt((offsets_mm ** 2).sum(axis=1)).max() <= 6.0
    assert np.all(labels.array[tuple(added.T)] == 1)
    whole = grow_lesion(ct.with_array(hu), labels, (5, 45, 50), max_radius_mm=200.0)
    assert np.array_equal((whole.array == 2) & (labels.array != 2) & (labels.array == 0), np.zeros(hu.shape, bool))


def test_a_click_on_healthy_liver_grows_nothing() -> None:
    ct, labels = phantom()
    with pytest.raises(NoLesionAtSeed, match="within 15 HU of the liver around it"):
        grow_lesion(ct, labels, (5, 45, 40))


def test_a_seed_outside_the_liver_is_refused() -> None:
    ct, labels = phantom()
    with pytest.raises(SeedOutsideLiver, match="not inside the liver"):
        grow_lesion(ct, labels, (0, 0, 0))
    with pytest.raises(SeedOutsideLiver, match="outside the image"):
        grow_lesion(ct, labels, (12, 0, 0))
