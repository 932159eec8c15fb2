"""What a radiologist reads off a liver / tumor label map: the numbers behind the results table.

Liver volume (the organ: labels 1 and 2), tumor count, total tumor volume, tumor burden (% of the liver)
and, per lesion, its volume, longest axial diameter and centroid. Lesions are the 3D connected components of
label 2 as the evaluation labels them (:func:`label_lesions`), so the table and the evaluation report count the
same lesions. Coordinates are LPS millimetres (the Volume convention); the scene bridge shows them as RAS.
"""

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from LiverResUNetLib.evaluation.lesions import LabelledLesions, label_lesions
from LiverResUNetLib.volume import TUMOR, Volume

# Corners of a pixel around its centre: a lesion's in-plane extent runs to the pixel edges, not the centres.
_PIXEL_CORNERS = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])


def axial_axis(volume: Volume) -> int:
    """The array axis (0, 1 or 2 of ``[k, j, i]``) closest to the patient's head-feet axis.

    Slices across it are the axial images a radiologist measures on, whatever order the scanner stored them in.
    """
    column = int(np.argmax(np.abs(volume.direction[2, :])))  # direction columns are the i, j, k axes
    return 2 - column


def _feret_diameter(points: np.ndarray) -> float:
    """Largest distance between two of ``points`` (n x 2, mm)."""
    if len(points) > 3:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # all corners on one line: the pairwise distances below are exact anyway
            pass
    return float(pdist(points).max())


def longest_axial_diameter_mm(mask: np.ndarray, volume: Volume) -> float:
    """Longest in-plane extent (mm) of a boolean ``mask`` over the axial slices of ``volume``'s grid.

    Measured edge to edge of the pixels, as a caliper on the axial images would (RECIST's longest diameter).
    """
    axis = axial_axis(volume)
    in_plane = [a for a in range(3) if a != axis]
    pixel_mm = np.array([volume.spacing[2 - a] for a in in_plane])
    longest = 0.0
    for index in np.flatnonzero(mask.any(axis=tuple(in_plane))):
        section = np.take(mask, index, axis=axis)
        edge = np.argwhere(section & ~ndimage.binary_erosion(section))
        corners = np.unique((edge[:, None, :] + _PIXEL_CORNERS[None]).reshape(-1, 2), axis=0)
        longest = max(longest, _feret_diameter(corners * pixel_mm))
    return longest


def lesions_largest_first(tumor: np.ndarray, spacing: tuple[float, ...]) -> LabelledLesions:
    """The lesions of a boolean tumor mask numbered as the results table shows them: 1 is the largest
    (equal sizes keep the scan order), so a row number names the same lesion in every view of the result."""
    lesions = label_lesions(tumor, spacing)
    order = np.argsort(-lesions.voxels, kind="stable")
    renumber = np.zeros(lesions.count + 1, dtype=lesions.labels.dtype)
    renumber[order + 1] = np.arange(1, lesions.count + 1)
    return LabelledLesions(renumber[lesions.labels], lesions.count, lesions.voxels[order],
                           [lesions.volumes_ml[index] for index in order])


def measure_liver(labels: Volume) -> dict[str, Any]:
    """Measurements of a label Volume (0 background, 1 liver, 2 tumor) in mL, mm and LPS mm.

    Returns ``liver_volume_ml``, ``tumor_count``, ``tumor_volume_ml``, ``tumor_burden_percent`` (None without a
    liver) and ``lesions``: one dict per lesion, largest first, with ``lesion`` (1..n), ``volume_ml``,
    ``longest_axial_diameter_mm`` and ``centroid_lps``.
    """
    array = np.asarray(labels.array)
    liver_voxels = int(np.count_nonzero(array))
    tumor = array == TUMOR
    # Lesions are labelled inside the box around all tumor voxels: a whole CT is tens of millions of voxels.
    crop = (ndimage.find_objects(tumor.view(np.uint8)) or [(slice(0, 1),) * 3])[0]
    lesions = lesions_largest_first(tumor[crop], labels.spacing)
    rows = []
    to_lps = labels.ijk_to_lps()
    for number, box in enumerate(lesions.boxes(), start=1):
        lesion = lesions.labels[box] == number
        corner_kji = [part.start + whole.start for part, whole in zip(box, crop)]
        centre_kji = np.argwhere(lesion).mean(axis=0) + corner_kji
        rows.append({
            "volume_ml": lesions.volumes_ml[number - 1],
            "longest_axial_diameter_mm": longest_axial_diameter_mm(lesion, labels),
            "centroid_lps": [float(c) for c in (to_lps @ np.append(centre_kji[::-1], 1.0))[:3]],
        })
    liver_ml = liver_voxels * labels.voxel_volume_ml()
    tumor_ml = float(sum(lesions.volumes_ml))
    return {
        "liver_volume_ml": liver_ml,
        "tumor_count": lesions.count,
        "tumor_volume_ml": tumor_ml,
        "tumor_burden_percent": 100.0 * tumor_ml / liver_ml if liver_voxels else None,
        "lesions": [{"lesion": n, **row} for n, row in enumerate(rows, start=1)],
    }
