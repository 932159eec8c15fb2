"""Anatomical clean-up of a predicted label map: one liver, no holes, tumors only in the liver, no specks.

A slice-wise network makes isolated mistakes that anatomy rules out: liver-like blobs in the spleen or
heart, holes where a vessel or a necrotic centre looked unusual, "tumors" in the kidney, single-voxel
tumor specks. Each rule below removes one kind and can be turned off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from LiverResUNetLib.components import label_components
from LiverResUNetLib.records import dataclass_from_dict
from LiverResUNetLib.volume import BACKGROUND, LIVER, TUMOR, voxel_volume_mm3


@dataclass
class PostprocessOptions:
    """Which clean-up steps :func:`postprocess` applies.

    Attributes:
        keep_largest_liver: keep only the largest 3D connected component of the liver (labels 1 and 2).
        fill_liver_holes: label as liver the background that the liver encloses in an axial slice.
        tumor_inside_liver: drop tumor components that touch no liver voxel (they become background).
        min_tumor_mm3: tumor components smaller than this (mm³) become liver; 0 keeps every one.
    """

    keep_largest_liver: bool = True
    fill_liver_holes: bool = True
    tumor_inside_liver: bool = True
    min_tumor_mm3: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PostprocessOptions:
        """Options from a dict; ValueError naming unknown keys."""
        return dataclass_from_dict(cls, values, "post-processing options")


def postprocess(labels: npt.ArrayLike, spacing: Sequence[float], options: PostprocessOptions | None = None
                ) -> np.ndarray:
    """Cleaned copy of a label array ``[k, j, i]`` (0 background, 1 liver, 2 tumor) as uint8.

    Args:
        labels: predicted labels; not modified.
        spacing: ``(di, dj, dk)`` voxel size in mm, for the tumor size threshold.
        options: :class:`PostprocessOptions`; None applies the defaults. Hole filling works in the
            ``[j, i]`` planes, so pass labels in canonical axial orientation.
    """
    options = options or PostprocessOptions()
    cleaned = np.array(labels, dtype=np.uint8)
    box = _bounding_box(cleaned > 0)
    if box is None:
        return cleaned
    # Every step works inside the liver's bounding box (one voxel wider): a fraction of a CT's voxels.
    region = cleaned[box]
    if options.keep_largest_liver or options.tumor_inside_liver:
        _drop_components(region, options.keep_largest_liver, options.tumor_inside_liver)
    if options.fill_liver_holes:
        _fill_axial_holes(region)
    if options.min_tumor_mm3 > 0:
        _small_tumors_to_liver(region, options.min_tumor_mm3 / voxel_volume_mm3(spacing))
    return cleaned


def _bounding_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every True voxel of ``mask``, ``margin`` wider; None when empty."""
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(other for other in range(mask.ndim) if other != axis)))
        if present.size == 0:
            return None
        box.append(slice(max(present[0] - margin, 0), min(present[-1] + margin + 1, mask.shape[axis])))
    return tuple(box)


def _drop_components(region: np.ndarray, keep_largest: bool, need_liver: bool) -> None:
    """Set to background, in place, the 3D components of the liver (labels 1 and 2) that are
    not the largest (``keep_largest``) or that hold no liver voxel, only tumor (``need_liver``).

    A tumor component touching no liver voxel is exactly a component without liver voxels, so one
    labelling serves both rules.
    """
    components, count = label_components(region > 0)
    dropped = np.zeros(count + 1, dtype=bool)
    if need_liver:
        has_liver = np.zeros(count + 1, dtype=bool)
        has_liver[components[region == LIVER]] = True
        dropped[1:] = ~has_liver[1:]
    if keep_largest and count > 1:
        candidates = np.flatnonzero(~dropped[1:]) + 1
        dropped[1:] = True
        if candidates.size:
            sizes = np.bincount(components.ravel(), minlength=count + 1)
            dropped[candidates[np.argmax(sizes[candidates])]] = False
    if dropped.any():
        region[dropped[components]] = BACKGROUND


def _fill_axial_holes(region: np.ndarray) -> None:
    """Label as liver the background enclosed by liver in each ``[j, i]`` slice, in place.

    Per slice rather than in 3D: a vessel running through the liver is a hole in the axial slices it
    crosses, but in 3D it opens onto the liver's surface and would never be filled. One labelling with
    in-plane connectivity finds the background pieces of every slice; those that do not reach the edge of
    the (liver-framing) region are holes.
    """
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    pieces, count = ndimage.label(region == BACKGROUND, structure=in_plane)
    if count == 0:
        return
    is_hole = np.ones(count + 1, dtype=bool)
    is_hole[0] = False
    for edge in (pieces[:, 0, :], pieces[:, -1, :], pieces[:, :, 0], pieces[:, :, -1]):
        is_hole[edge] = False
    region[is_hole[pieces]] = LIVER


def _small_tumors_to_liver(region: np.ndarray, min_voxels: float) -> None:
    """Relabel as liver, in place, the tumor components (lesions) of fewer than ``min_voxels`` voxels."""
    tumors, count = label_components(region == TUMOR)
    if count:
        small = np.bincount(tumors.ravel(), minlength=count + 1) < min_voxels
        small[0] = False
        region[small[tumors]] = LIVER
