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
