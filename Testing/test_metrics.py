"""Metrics against values computed by hand on tiny arrays (anisotropic spacing included)."""

import math

import numpy as np
import pytest

from LiverResUNetLib.evaluation.metrics import (
    binary_metrics,
    case_metrics,
    confusion_matrix,
    hausdorff_distance,
    summarise,
)


def _row(indices, length=10):
    """A (1, 1, length) boolean mask: every voxel is on the surface, so distances are along i only."""
    mask = np.zeros((1, 1, length), bool)
    mask[0, 0, list(indices)] = True
    return mask


def test_binary_metrics_match_hand_counts_and_hd95_interpolates_in_mm():
    reference, prediction = _row(range(0, 4)), _row(range(2, 6))
    scores = binary_metrics(prediction, reference, spacing=(2.0, 1.0, 3.0))
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (2, 2, 2, 4)
    assert scores["dice"] == pytest.approx(0.5)
    assert scores["iou"] == pytest.approx(1 / 3)
    assert scores["accuracy"] == pytest.approx(0.6)
    assert scores["sensitivity"] == pytest.approx(0.5)
    assert scores["specificity"] == pytest.approx(4 / 6)
    assert scores["precision"] == pytest.approx(0.5)
    # Directed distances (di = 2 mm): 0, 0, 2, 4 mm both ways; 95th percentile = 2 + 0.85 * (4 - 2).
    assert scores["hd95_mm"] == pytest.approx(3.7)
    assert scores["reference_ml"] == pytest.approx(4 * 6 / 1000)
    assert scores["prediction_ml"] == pytest.approx(4 * 6 / 1000)


def test_undefined_metrics_are_none_not_zero_or_one():
    empty = _row([])
    both_empty = binary_metrics(empty, empty, (1, 1, 1))
    assert both_empty["dice"] is None and both_empty["iou"] is None
    assert both_empty["sensitivity"] is None and both_empty["precision"] is None and both_empty["hd95_mm"] is None
    assert both_empty["specificity"] == 1.0 and both_empty["accuracy"] == 1.0

    false_alarm = binary_metrics(_row([3]), empty, (1, 1, 1))
    assert false_alarm["sensitivity"] is None and false_alarm["hd95_mm"] is None
    assert false_alarm["precision"] == 0.0 and false_alarm["dice"] == 0.0

    everything = np.ones((1, 1, 10), bool)
    assert binary_metrics(everything, everything, (1, 1, 1))["specificity"] is None


@pytest.mark.parametrize("offset_kji, expected_mm", [
    ((0, 0, 3), 1.5),  # along i: di = 0.5
    ((0, 2, 0), 4.0),  # along j: dj = 2
    ((2, 0, 0), 6.0),  # along k: dk = 3
    ((1, 1, 0), math.sqrt(3 ** 2 + 2 ** 2)),
])
def test_hausdorff_uses_spacing_in_i_j_k_order(offset_kji, expected_mm):
    reference = np.zeros((4, 4, 4), bool)
    prediction = np.zeros((4, 4, 4), bool)
    reference[0, 0, 0] = True
    prediction[offset_kji] = True
    assert hausdorff_distance(prediction, reference, spacing=(0.5, 2.0, 3.0)) == pytest.approx(expected_mm)


def test_hausdorff_works_on_surfaces_of_solid_masks():
    outer = np.zeros((7, 7, 7), bool)
    inner = np.zeros((7, 7, 7), bool)
    outer[1:6, 1:6, 1:6] = True
    inner[2:5, 2:5, 2:5] = True
    # Outer shell (98 voxels) to inner shell: 54 face voxels at 1, 36 edge voxels at sqrt 2, 8 corners at sqrt 3;
    # the 95th percentile falls among the corners. Inner shell to outer shell: all at 1.
    assert hausdorff_distance(inner, outer, (1, 1, 1)) == pytest.approx(math.sqrt(3))


def test_hd95_ignores_a_five_percent_outlier_that_the_maximum_sees():
    reference, prediction = _row(range(20), 40), _row(list(range(20)) + [39], 40)
    assert hausdorff_distance(prediction, reference, (1.5, 1, 1)) == pytest.approx(0.0)
    assert hausdorff_distance(prediction, reference, (1.5, 1, 1), percentile=100) == pytest.approx(30.0)


def test_confusion_matrix_rows_are_reference_columns_prediction():
    reference = np.array([0, 0, 1, 1, 2, 2, 2]).reshape(1, 1, 7)
    prediction = np.array([0, 1, 1, 2, 2, 2, 0]).reshape(1, 1, 7)
    assert confusion_matrix(prediction, reference).tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 2]]
    with pytest.raises(ValueError):
        confusion_matrix(prediction + 1, reference)


def _labels(liver_slices, tumor_voxels=(), shape=(4, 6, 6)):
    labels = np.zeros(shape, np.uint8)
    for k in liver_slices:
        labels[k, 1:5, 1:5] = 1
    for voxel in tumor_voxels:
        labels[voxel] = 2
    return labels


def test_case_metrics_liver_includes_tumor_and_tumor_is_label_two():
    reference = _labels([1, 2], tumor_voxels=[(1, 2, 2), (1, 2, 3)])
    prediction = _labels([1, 2, 3], tumor_voxels=[(1, 2, 2)])
    scores = case_metrics(prediction, reference, spacing=(1.0, 1.0, 2.0))
    assert not scores["tumor_free"]
    assert scores["liver"]["tp"] == 32 and scores["liver"]["fp"] == 16
    assert scores["liver"]["dice"] == pytest.approx(64 / 80)
    assert scores["tumor"]["dice"] == pytest.approx(2 / 3)
    assert scores["tumor"]["sensitivity"] == pytest.approx(0.5)
    assert scores["lesions"]["detected"] == 1
    matrix = np.array(scores["confusion_matrix"])
    assert matrix.sum() == reference.size
    assert matrix[2, 1] == 1 and matrix[2, 2] == 1 and matrix[0, 1] == 16


def test_tumor_free_case_has_no_tumor_dice_but_reports_its_false_positives():
    reference = _labels([1, 2])
    prediction = _labels([1, 2], tumor_voxels=[(1, 2, 2), (2, 2, 2)])
    scores = case_metrics(prediction, reference, spacing=(1.0, 1.0, 2.5))
    assert scores["tumor_free"]
    for metric in ("dice", "iou", "sensitivity", "precision", "hd95_mm"):
        assert scores["tumor"][metric] is None
    assert scores["tumor"]["fp"] == 2
    assert scores["tumor"]["false_positive_ml"] == pytest.approx(2 * 2.5 / 1000)
    assert scores["lesions"]["false_positive"] == 1 and scores["lesions"]["reference_lesions"] == 0
    assert scores["liver"]["dice"] == pytest.approx(1.0)


def test_summarise_means_only_defined_values_and_pools_voxels_globally():
    with_tumor = case_metrics(_labels([1], tumor_voxels=[(1, 2, 2)]), _labels([1], tumor_voxels=[(1, 2, 2)]),
                              (1, 1, 1))
    tumor_free = case_metrics(_labels([1, 2], tumor_voxels=[(2, 2, 2)]), _labels([1]), (1, 1, 1))
    with_tumor["case_id"], tumor_free["case_id"] = "a", "b"
    summary = summarise([with_tumor, tumor_free])
    assert summary["n_cases"] == 2
    liver_dice = summary["per_case"]["liver"]["dice"]
    assert liver_dice["n"] == 2
    assert liver_dice["mean"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert liver_dice["sd"] == pytest.approx(np.std([1.0, 2 / 3], ddof=1))
    assert summary["per_case"]["tumor"]["dice"] == {"mean": 1.0, "sd": None, "n": 1}
    # Pooled tumor voxels: tp 1, fp 1, fn 0.
    assert summary["global"]["tumor"]["dice"] == pytest.approx(2 / 3)
    assert summary["global"]["liver"]["dice"] == pytest.approx(2 * 32 / (2 * 32 + 16))
    assert summary["tumor_free_cases"]["case_ids"] == ["b"]
    assert summary["tumor_free_cases"]["with_false_positive_lesions"] == 1
    assert summary["lesions"]["detection_rate"] == 1.0
    assert summary["lesions"]["false_positives_per_case"] == 0.5
    assert np.array(summary["confusion_matrix"]).sum() == 2 * 4 * 6 * 6
