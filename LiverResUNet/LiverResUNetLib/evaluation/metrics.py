"""Overlap and distance metrics for liver and tumor masks, per case and aggregated over a test set.

Plain numpy / scipy on label arrays indexed ``[k, j, i]`` with ``spacing = (di, dj, dk)`` in mm (the Volume
convention). A metric whose denominator is empty is ``None``, never a made-up 0 or 1: a case without any
reference tumor is "tumor-free" and is scored by its false positives instead of a Dice.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from LiverResUNetLib.evaluation.lesions import lesion_detection, lesion_precision_recall
from LiverResUNetLib.volume import LABEL_NAMES, TUMOR, voxel_volume_ml

HD_PERCENTILE = 95
STRUCTURES = ("liver", "tumor")
OVERLAP_METRICS = ("dice", "iou", "accuracy", "sensitivity", "specificity", "precision")
CASE_METRICS = OVERLAP_METRICS + ("hd95_mm",)
# What a tumor-free case cannot have: every metric that divides by the reference tumor (or by the
# prediction, which can only be wrong there).
REFERENCE_BOUND_METRICS = ("dice", "iou", "sensitivity", "precision", "hd95_mm")


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _kji_sampling(spacing: Sequence[float]) -> tuple[float, ...]:
    """Voxel size along the array axes [k, j, i] from the Volume's (di, dj, dk)."""
    return tuple(float(s) for s in spacing)[::-1]


def overlap_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | None]:
    """Dice, IoU, accuracy, sensitivity, specificity and precision from voxel counts (None when 0/0)."""
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
    }


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one face neighbour outside it (the image border counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask)


def hausdorff_distance(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float],
                       percentile: float = HD_PERCENTILE) -> float | None:
    """Symmetric percentile Hausdorff distance in mm between the surfaces of two boolean masks.

    The larger of the two directed ``percentile``-th distances (prediction surface to reference surface and
    back), as in MONAI. Distances are exact Euclidean distances in mm on the anisotropic grid. None when
    either mask is empty.
    """
    prediction = np.asarray(prediction, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    if not prediction.any() or not reference.any():
        return None
    # Both surfaces lie inside the bounding box of the union, so the distance maps can be computed there.
    box = ndimage.find_objects((prediction | reference).astype(np.uint8))[0]
    prediction_surface, reference_surface = _surface(prediction[box]), _surface(reference[box])
    sampling = _kji_sampling(spacing)
    to_reference = ndimage.distance_transform_edt(~reference_surface, sampling=sampling)[prediction_surface]
    to_prediction = ndimage.distance_transform_edt(~prediction_surface, sampling=sampling)[reference_surface]
    return float(max(np.percentile(to_reference, percentile), np.percentile(to_prediction, percentile)))


def binary_metrics(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """Scores of one boolean prediction against one boolean reference on the same grid.

    Returns the overlap metrics, ``hd95_mm``, the voxel counts ``tp, fp, fn, tn`` (for pooling over cases)
    and the volumes ``reference_ml`` / ``prediction_ml``. Undefined values are None.
    """
    prediction = np.asarray(prediction, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    tp = int(np.count_nonzero(prediction & reference))
    fp = int(np.count_nonzero(prediction)) - tp
    fn = int(np.count_nonzero(reference)) - tp
    tn = int(prediction.size) - tp - fp - fn
    voxel_ml = voxel_volume_ml(spacing)
    return {
        **overlap_metrics(tp, fp, fn, tn),
        "hd95_mm": hausdorff_distance(prediction, reference, spacing),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "reference_ml": (tp + fn) * voxel_ml,
        "prediction_ml": (tp + fp) * voxel_ml,
    }


def confusion_matrix(prediction: np.ndarray, reference: np.ndarray, num_classes: int = len(LABEL_NAMES)) -> np.ndarray:
    """Voxel counts, rows = reference label, columns = predicted label."""
    prediction = np.asarray(prediction).ravel().astype(np.int64)
    reference = np.asarray(reference).ravel().astype(np.int64)
    for name, labels in (("prediction", prediction), ("reference", reference)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in 0..{num_classes - 1}")
    counts = np.bincount(reference * num_classes + prediction, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _structure_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The organ "liver" (labels 1 and 2: tumors lie in the liver) and the "tumor" (label 2)."""
    return {"liver": labels > 0, "tumor": labels == TUMOR}


def case_metrics(pred_labels: np.ndarray, ref_labels: np.ndarray, spacing: Sequence[float]) -> dict[str, Any]:
    """All scores of one case: liver and tumor metrics, lesion detection and the 3x3 confusion matrix.

    ``pred_labels`` and ``ref_labels`` are label arrays (0/1/2) on one grid. When the reference has no tumor
    the case is ``tumor_free``: its tumor Dice, IoU, sensitivity, precision and HD95 are None and its
    false-positive voxels, volume and lesions are reported instead.
    """
    pred_labels = np.asarray(pred_labels)
    ref_labels = np.asarray(ref_labels)
    if pred_labels.shape != ref_labels.shape:
        raise ValueError(f"prediction shape {pred_labels.shape} differs from reference shape {ref_labels.shape}")
    predicted, reference = _structure_masks(pred_labels), _structure_masks(ref_labels)
    scores = {name: binary_metrics(predicted[name], reference[name], spacing) for name in STRUCTURES}
    tumor_free = scores["tumor"]["tp"] + scores["tumor"]["fn"] == 0
    if tumor_free:
        scores["tumor"].update(dict.fromkeys(REFERENCE_BOUND_METRICS))
        scores["tumor"]["false_positive_ml"] = scores["tumor"]["prediction_ml"]
    return {
        **scores,
        "tumor_free": bool(tumor_free),
        "lesions": lesion_detection(predicted["tumor"], reference["tumor"], spacing),
        "confusion_matrix": confusion_matrix(pred_labels, ref_labels).tolist(),
    }


def mean_sd(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) of the defined values, with their count n."""
    defined = np.array([value for value in values if value is not None], dtype=float)
    return {
        "mean": float(defined.mean()) if defined.size else None,
        "sd": float(defined.std(ddof=1)) if defined.size > 1 else None,
        "n": int(defined.size),
    }


def summarise(cases: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate a list of :func:`case_metrics` results (each may carry a ``case_id``).

    ``per_case``: mean, sd and n of every metric over the cases where it is defined. ``global``: the overlap
    metrics of all voxels of all cases pooled. Also the summed confusion matrix and lesion counts.
    """
    cases = list(cases)
    per_case = {name: {metric: mean_sd([case[name][metric] for case in cases]) for metric in CASE_METRICS}
                for name in STRUCTURES}
    pooled = {name: overlap_metrics(*(sum(case[name][count] for case in cases) for count in ("tp", "fp", "fn", "tn")))
              for name in STRUCTURES}
    matrix = np.zeros((len(LABEL_NAMES), len(LABEL_NAMES)), dtype=np.int64)
    for case in cases:
        matrix += np.asarray(case["confusion_matrix"], dtype=np.int64)
    lesion_counts = {key: sum(case["lesions"][key] for case in cases)
                     for key in ("reference_lesions", "predicted_lesions", "detected", "missed", "false_positive")}
    tumor_free = [case for case in cases if case["tumor_free"]]
    return {
        "n_cases": len(cases),
        "per_case": per_case,
        "global": pooled,
        "confusion_matrix": matrix.tolist(),
        "lesions": {
            **lesion_counts,
            "detection_rate": _ratio(lesion_counts["detected"], lesion_counts["reference_lesions"]),
            **lesion_precision_recall(lesion_counts["detected"], lesion_counts["reference_lesions"],
                                      lesion_counts["false_positive"], lesion_counts["predicted_lesions"]),
            "false_positives_per_case": _ratio(lesion_counts["false_positive"], len(cases)),
            "lesion_dice": mean_sd([lesion["dice"] for case in cases for lesion in case["lesions"]["reference"]]),
        },
        "tumor_free_cases": {
            "case_ids": [case.get("case_id") for case in tumor_free],
            "with_false_positive_lesions": sum(1 for case in tumor_free if case["lesions"]["false_positive"]),
            "false_positive_ml": mean_sd([case["tumor"]["false_positive_ml"] for case in tumor_free]),
        },
    }
