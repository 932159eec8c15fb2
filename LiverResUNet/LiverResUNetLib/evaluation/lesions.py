"""Lesion-wise detection: which reference tumors a prediction found, missed or invented.

Lesions are the 3D connected components of a tumor mask (:mod:`LiverResUNetLib.components`: voxels touching
by a face, an edge or a corner belong to one lesion). A reference lesion is *detected* when at least one predicted
voxel overlaps it; a predicted lesion that overlaps no reference lesion is a *false positive*.
The Dice of a reference lesion compares it with the union of the predicted lesions that overlap it
(0.0 for a missed lesion: the lesion exists, the prediction found none of it).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from LiverResUNetLib.components import CONNECTIVITY, label_components
from LiverResUNetLib.volume import voxel_volume_ml

DETECTION_RULE = "a reference lesion is detected when any predicted tumor voxel overlaps it (>= 1 voxel)"


@dataclass
class LabelledLesions:
    """Connected components of a mask: ``labels`` holds 1..count (0 outside); lesion n has ``voxels[n - 1]``."""

    labels: np.ndarray
    count: int
    voxels: np.ndarray
    volumes_ml: list[float]

    def boxes(self) -> list[tuple[slice, ...]]:
        """The bounding box (a tuple of slices) of each lesion, in lesion order (every lesion 1..count has one)."""
        return [box for box in ndimage.find_objects(self.labels, max_label=self.count) if box is not None]

    def centroids_kji(self) -> list[tuple[float, ...]]:
        """Centre of each lesion in voxel coordinates [k, j, i], computed inside its bounding box (fast on CT)."""
        centres = []
        for number, box in enumerate(self.boxes(), start=1):
            inside = np.nonzero(self.labels[box] == number)
            centres.append(tuple(float(axis.mean()) + part.start for axis, part in zip(inside, box)))
        return centres


def label_lesions(mask: np.ndarray, spacing: Sequence[float]) -> LabelledLesions:
    """Split a boolean tumor mask ``[k, j, i]`` into 26-connected lesions with their volumes in mL."""
    labels, count = label_components(mask)
    voxel_ml = voxel_volume_ml(spacing)
    voxels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return LabelledLesions(labels, int(count), voxels, [float(n) * voxel_ml for n in voxels])


def _rounded_centroids(lesions: LabelledLesions) -> list[list[float]]:
    """Lesion centres rounded to a tenth of a voxel, so a reader can find each lesion in a viewer."""
    return [[round(c, 1) for c in centre] for centre in lesions.centroids_kji()]


def _reference_rows(reference_lesions: LabelledLesions, predicted_lesions: LabelledLesions
                    ) -> list[dict[str, Any]]:
    rows = []
    for number, (box, volume, centre) in enumerate(zip(reference_lesions.boxes(), reference_lesions.volumes_ml,
                                                       _rounded_centroids(reference_lesions)), start=1):
        lesion = reference_lesions.labels[box] == number
        under_lesion = predicted_lesions.labels[box][lesion]
        matched = np.unique(under_lesion[under_lesion > 0])
        # The matched predicted lesions may extend beyond this box: their full sizes come from the voxel counts.
        found_voxels = int(predicted_lesions.voxels[matched - 1].sum())
        intersection = np.count_nonzero(under_lesion)
        rows.append({"lesion": number, "volume_ml": volume, "centroid_kji": centre, "detected": bool(matched.size),
                     "dice": 2.0 * intersection / (int(reference_lesions.voxels[number - 1]) + found_voxels)})
    return rows


def _predicted_rows(predicted_lesions: LabelledLesions, reference: np.ndarray) -> list[dict[str, Any]]:
    hit = set(np.unique(predicted_lesions.labels[reference]).tolist())
    return [{"lesion": number, "volume_ml": volume, "centroid_kji": centre, "false_positive": number not in hit}
            for number, (volume, centre) in enumerate(zip(predicted_lesions.volumes_ml,
                                                          _rounded_centroids(predicted_lesions)), start=1)]


def lesion_precision_recall(detected: int, reference: int, false_positive: int,
                            predicted: int) -> dict[str, float | None]:
    """``{"precision", "recall"}`` of lesion counts: the share of predicted lesions that are true (overlap a
    reference lesion) and the share of reference lesions detected; None where there is nothing to count."""
    return {"precision": (predicted - false_positive) / predicted if predicted else None,
            "recall": detected / reference if reference else None}


def lesion_detection(prediction: npt.ArrayLike, reference: npt.ArrayLike, spacing: Sequence[float]
                     ) -> dict[str, Any]:
    """Match the lesions of a predicted and a reference tumor mask (boolean arrays on one grid).

    Returns counts (``reference_lesions``, ``predicted_lesions``, ``detected``, ``missed``, ``false_positive``),
    the lesion-level ``precision`` (share of predicted lesions that overlap a reference lesion) and ``recall``
    (share of reference lesions detected), each None when its denominator is 0, and per-lesion rows:
    ``reference`` (lesion, volume_ml, centroid_kji, detected, dice) and ``predicted``
    (lesion, volume_ml, centroid_kji, false_positive).
    """
    predicted_mask = np.asarray(prediction, dtype=bool)
    reference_mask = np.asarray(reference, dtype=bool)
    predicted_lesions = label_lesions(predicted_mask, spacing)
    reference_lesions = label_lesions(reference_mask, spacing)
    reference_rows = _reference_rows(reference_lesions, predicted_lesions)
    predicted_rows = _predicted_rows(predicted_lesions, reference_mask)
    detected = sum(row["detected"] for row in reference_rows)
    false_positive = sum(row["false_positive"] for row in predicted_rows)
    return {
        "connectivity": CONNECTIVITY,
        "reference_lesions": reference_lesions.count,
        "predicted_lesions": predicted_lesions.count,
        "detected": detected,
        "missed": reference_lesions.count - detected,
        "false_positive": false_positive,
        **lesion_precision_recall(detected, reference_lesions.count, false_positive, predicted_lesions.count),
        "reference": reference_rows,
        "predicted": predicted_rows,
    }
