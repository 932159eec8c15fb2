"""Lesion-by-lesion review, decided once for the browser page and the Slicer module.

What a lesion is (a 3D connected component of label 2, numbered largest first as the results table shows it),
what rejecting one removes (its voxels become liver again), and how one grows from a single click inside the
liver (seeded region growing bounded by the liver and an intensity range around the seed). The GUIs only show
the result and put it back into their segmentation. Label maps follow the project's labels: 0 background,
1 liver, 2 liver tumor; arrays are ``[k, j, i]``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from LiverResUNetLib.components import label_components
from LiverResUNetLib.measurements import lesions_largest_first, measure_liver
from LiverResUNetLib.volume import BACKGROUND, LIVER, TUMOR, Volume

# A hypodense metastasis differs from the liver around it by tens of HU; a seed's lesion is the voxels within
# this many HU of the seed's neighbourhood mean.
DEFAULT_TOLERANCE_HU = 40.0
# A grown lesion never extends farther than this from its seed.
DEFAULT_MAX_RADIUS_MM = 40.0
# A seed whose neighbourhood is within this many HU of the liver's median is on liver, not on a lesion.
MIN_CONTRAST_HU = 15.0


@dataclass(frozen=True)
class Lesion:
    """One row of the lesion list: ``number`` as the results table numbers it, measures in mL and mm,
    the centre in LPS mm and in voxel indices ``[k, j, i]`` (rounded), where the views jump to."""

    number: int
    volume_ml: float
    longest_axial_diameter_mm: float
    centroid_lps: tuple[float, float, float]
    centroid_kji: tuple[int, int, int]


@dataclass(frozen=True)
class ReviewSummary:
    """What the page and the module show above the list, recomputed after every edit."""

    liver_volume_ml: float
    tumor_count: int
    tumor_volume_ml: float
    tumor_burden_percent: float | None
    lesions: tuple[Lesion, ...]


class SeedOutsideLiver(ValueError):
    """A lesion can only be grown from a click inside the liver (the label map's labels 1 or 2)."""


class NoLesionAtSeed(ValueError):
    """The click is on tissue that looks like the rest of the liver: there is no lesion to grow there."""


def lesion_map(labels: Volume) -> np.ndarray:
    """An int32 array on ``labels``' grid: 0 outside tumors, n inside lesion n (the results table's numbers)."""
    tumor = np.asarray(labels.array) == TUMOR
    numbered = np.zeros(tumor.shape, dtype=np.int32)
    boxes = ndimage.find_objects(tumor.view(np.uint8))
    if boxes:
        crop = boxes[0]  # labelling inside the box around all tumors: a whole CT is tens of millions of voxels
        numbered[crop] = lesions_largest_first(tumor[crop], labels.spacing).labels
    return numbered


def voxel_at_lps(volume: Volume, point_lps: Sequence[float]) -> tuple[int, int, int]:
    """The voxel ``[k, j, i]`` of ``volume`` nearest to an LPS point (clipped to the grid): where a click lands."""
    ijk = np.linalg.solve(volume.ijk_to_lps(), np.append(np.asarray(point_lps, dtype=float), 1.0))[:3]
    k, j, i = (int(np.clip(round(float(c)), 0, size - 1)) for c, size in zip(ijk[::-1], volume.shape))
    return k, j, i


def review_summary(labels: Volume) -> ReviewSummary:
    """Liver volume, tumor count and burden, and the lesion list of a label Volume (largest lesion first)."""
    measured: dict[str, Any] = measure_liver(labels)
    lesions = tuple(Lesion(number=row["lesion"], volume_ml=row["volume_ml"],
                           longest_axial_diameter_mm=row["longest_axial_diameter_mm"],
                           centroid_lps=tuple(row["centroid_lps"]),
                           centroid_kji=voxel_at_lps(labels, row["centroid_lps"]))
                    for row in measured["lesions"])
    return ReviewSummary(measured["liver_volume_ml"], measured["tumor_count"], measured["tumor_volume_ml"],
                         measured["tumor_burden_percent"], lesions)


def reject_lesion(labels: Volume, number: int) -> Volume:
    """``labels`` without lesion ``number`` (a false positive): its voxels become liver, nothing else changes."""
    numbered = lesion_map(labels)
    count = int(numbered.max())
    if not 1 <= number <= count:
        raise ValueError(f"there is no lesion {number}: the segmentation has {count} lesion(s)")
    array = np.array(labels.array, copy=True)
    array[numbered == number] = LIVER
    return labels.with_array(array, **labels.metadata)


def _ball_box(seed_kji: Sequence[int], radius_mm: float, spacing: Sequence[float],
              shape: Sequence[int]) -> tuple[slice, ...]:
    """The box of voxels within ``radius_mm`` of the seed along each axis (spacing is in i, j, k order)."""
    reach = [int(np.ceil(radius_mm / step)) for step in spacing[::-1]]
    return tuple(slice(max(0, centre - r), min(size, centre + r + 1))
                 for centre, r, size in zip(seed_kji, reach, shape))


def grow_lesion(ct: Volume, labels: Volume, seed_kji: Sequence[int],
                tolerance_hu: float = DEFAULT_TOLERANCE_HU,
                max_radius_mm: float = DEFAULT_MAX_RADIUS_MM) -> Volume:
    """``labels`` with a new lesion grown from one click at voxel ``seed_kji`` of ``ct`` (same grid).

    The lesion is the connected set of liver voxels within ``tolerance_hu`` of the mean HU of the seed's
    3x3x3 neighbourhood (liver voxels only), closer to that mean than to the median HU of the liver's tissue
    (label 1), and within ``max_radius_mm`` of the seed; its holes are filled. It joins label 2 (merging with a
    lesion it touches) and stays editable like any other tumor voxel.

    Raises:
        SeedOutsideLiver: the seed is not on the liver.
        NoLesionAtSeed: the seed's HU is within ``MIN_CONTRAST_HU`` of the liver's median (healthy liver).
    """
    if not ct.same_grid(labels):
        raise ValueError("the CT and the segmentation are not on the same voxel grid")
    seed = tuple(int(c) for c in seed_kji)
    if any(not 0 <= c < size for c, size in zip(seed, labels.shape)):
        raise SeedOutsideLiver(f"the seed {seed} lies outside the image {labels.shape}")
    array = np.asarray(labels.array)
    if array[seed] == BACKGROUND:
        raise SeedOutsideLiver(f"the seed {seed} is not inside the liver")
    box = _ball_box(seed, max_radius_mm, labels.spacing, labels.shape)
    local_seed = tuple(c - part.start for c, part in zip(seed, box))
    liver = array[box] != BACKGROUND
    hu = np.asarray(ct.array, dtype=np.float32)[box]
    around = tuple(slice(max(0, c - 1), c + 2) for c in local_seed)
    reference = float(hu[around][liver[around]].mean())
    organ = array == LIVER  # the whole organ's tissue: around a large lesion, the box holds mostly lesion
    liver_hu = float(np.median(np.asarray(ct.array)[organ])) if organ.any() else reference
    if abs(reference - liver_hu) < MIN_CONTRAST_HU:
        raise NoLesionAtSeed(f"the seed's {reference:.0f} HU is within {MIN_CONTRAST_HU:.0f} HU of the liver around "
                             f"it ({liver_hu:.0f} HU): click inside the lesion")
    steps = np.asarray(labels.spacing[::-1], dtype=float)
    grids = np.ogrid[tuple(slice(0, n) for n in liver.shape)]
    distance_sq = sum(((grid - c) * step) ** 2 for grid, c, step in zip(grids, local_seed, steps))
    distance_hu = np.abs(hu - reference)
    candidate = (liver & (distance_hu <= tolerance_hu) & (distance_hu < np.abs(hu - liver_hu))
                 & (distance_sq <= max_radius_mm ** 2))
    candidate[local_seed] = True  # the clicked voxel belongs to the lesion even when it is an outlier itself
    components, _ = label_components(candidate)
    grown = ndimage.binary_fill_holes(components == components[local_seed]) & liver
    result = np.array(array, copy=True)
    result[box][grown] = TUMOR
    return labels.with_array(result, **labels.metadata)
