"""Liver and tumor measurements of a label Volume: volumes, burden, per-lesion diameter and centroid."""

import numpy as np
import pytest

from LiverResUNetLib.measurements import axial_axis, longest_axial_diameter_mm, measure_liver
from LiverResUNetLib.volume import Volume

SPACING = (0.5, 0.8, 2.0)  # (di, dj, dk) mm: 0.0008 mL per voxel


def liver_with_tumors():
    labels = np.zeros((10, 40, 50), np.uint8)
    labels[2:8, 5:35, 5:45] = 1  # 6 x 30 x 40 = 7200 voxels
    labels[3:5, 10:14, 10:20] = 2  # 2 x 4 x 10 = 80 voxels: the larger lesion
    labels[6, 30, 40] = 2  # 1 voxel
    return Volume(labels, SPACING, (100.0, -50.0, 20.0))


def test_volumes_count_and_burden():
    result = measure_liver(liver_with_tumors())
    assert result["liver_volume_ml"] == pytest.approx(7200 * 0.0008)
    assert result["tumor_count"] == 2
    assert result["tumor_volume_ml"] == pytest.approx(81 * 0.0008)
    assert result["tumor_burden_percent"] == pytest.approx(100 * 81 / 7200)


def test_lesions_are_listed_largest_first_with_edge_to_edge_diameter_and_lps_centroid():
    first, second = measure_liver(liver_with_tumors())["lesions"]
    assert (first["lesion"], second["lesion"]) == (1, 2)
    assert first["volume_ml"] == pytest.approx(80 * 0.0008)
    # 10 pixels of 0.5 mm along i and 4 of 0.8 mm along j: the diagonal of a 5 x 3.2 mm rectangle.
    assert first["longest_axial_diameter_mm"] == pytest.approx(np.hypot(5.0, 3.2))
    assert first["centroid_lps"] == pytest.approx([100.0 + 14.5 * 0.5, -50.0 + 11.5 * 0.8, 20.0 + 3.5 * 2.0])
    assert second["longest_axial_diameter_mm"] == pytest.approx(np.hypot(0.5, 0.8))
    assert second["centroid_lps"] == pytest.approx([120.0, -26.0, 32.0])


def test_no_liver_means_no_burden_and_no_tumor_means_no_lesions():
    empty = measure_liver(Volume(np.zeros((3, 4, 5), np.uint8)))
    assert empty["tumor_burden_percent"] is None
    assert empty["liver_volume_ml"] == 0.0
    assert (empty["tumor_count"], empty["lesions"]) == (0, [])


def test_diameter_is_measured_on_axial_slices_whatever_the_storage_order():
    """A lesion 10 mm long head-to-feet but 3 mm across: its axial diameter is the 3 mm one."""
    mask = np.zeros((4, 12, 6), bool)
    mask[1:3, 1:11, 2:5] = True  # j spans 10 voxels of 1 mm; i spans 3 voxels of 1 mm; k spans 2 of 1 mm
    sagittal = Volume(mask.astype(np.uint8), (1.0, 1.0, 1.0), direction=np.array([[0.0, 0.0, 1.0],
                                                                                  [1.0, 0.0, 0.0],
                                                                                  [0.0, 1.0, 0.0]]))
    assert axial_axis(sagittal) == 1  # the j axis runs head-to-feet
    assert longest_axial_diameter_mm(mask, sagittal) == pytest.approx(np.hypot(2.0, 3.0))
    axial = Volume(mask.astype(np.uint8), (1.0, 1.0, 1.0))
    assert axial_axis(axial) == 0
    assert longest_axial_diameter_mm(mask, axial) == pytest.approx(np.hypot(10.0, 3.0))
