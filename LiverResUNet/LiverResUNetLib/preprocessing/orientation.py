"""Canonical axial orientation: every CT is sliced the same way, whatever its direction or storage order.

The network learnt axial slices seen from the feet with the patient's right on the image's left and the
front at the top: in a canonical array ``[k, j, i]``, i runs towards the patient's Left, j towards
Posterior and k towards Superior (LPS, DICOM's own axes). Any Volume (transposed, stored feet-first or
head-first, sagittal or coronal acquisitions, slightly oblique) is brought there by permuting and
flipping its axes: a view, no copy, no resampling. Results computed on the canonical array are put
back on the input's exact grid by the inverse permutation and flips.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from LiverResUNetLib.volume import Volume, row_column_spacing


@dataclass
class CanonicalVolume:
    """A volume seen in canonical axial orientation, and what it takes to go back to the input's grid.

    Attributes:
        array: ``[k, j, i]`` canonical view of the input array (k towards S, j towards P, i towards L).
        spacing: ``(di, dj, dk)`` mm of the canonical axes.
        origin: LPS position of canonical voxel ``[0, 0, 0]``.
        direction: columns are the canonical i, j, k axes in LPS (identity for an axis-aligned CT).
        source_axes: for canonical voxel axes i, j, k, the input voxel axis (0 = i, 1 = j, 2 = k) each comes from.
        flipped: for canonical voxel axes i, j, k, whether the input axis is reversed.
        input_shape: the input array's shape ``[k, j, i]``.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    source_axes: tuple[int, ...]
    flipped: tuple[bool, ...]
    input_shape: tuple[int, ...]

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """``(row mm, column mm)`` of the canonical axial slices ``array[k]``."""
        return row_column_spacing(self.spacing)

    def volume(self) -> Volume:
        """The canonical view as a :class:`Volume` on its own (exact) grid."""
        return Volume(self.array, self.spacing, self.origin, self.direction)


def canonical_axes(direction: np.ndarray) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """``(source_axes, flipped)``: the input axis closest to each of L, P, S and whether it points the other way.

    The permutation maximises the summed alignment of the three pairs, so an oblique volume goes to the
    nearest axial orientation rather than failing on the first ambiguous axis.
    """
    alignment = np.abs(np.asarray(direction, dtype=float))
    source_axes = max(itertools.permutations(range(3)),
                      key=lambda axes: sum(alignment[lps, axis] for lps, axis in enumerate(axes)))
    flipped = tuple(bool(direction[lps, axis] < 0) for lps, axis in enumerate(source_axes))
    return source_axes, flipped


def to_canonical(volume: Volume) -> CanonicalVolume:
    """``volume`` (any direction, any storage order) as a :class:`CanonicalVolume` (a view of its array)."""
    source_axes, flipped = canonical_axes(volume.direction)
    # Array axes are [k, j, i]: voxel axis v is array axis 2 - v.
    array = np.transpose(volume.array, [2 - source_axes[axis] for axis in (2, 1, 0)])
    flip_array_axes = tuple(2 - axis for axis in range(3) if flipped[axis])
    if flip_array_axes:
        array = np.flip(array, axis=flip_array_axes)
    direction = np.asarray(volume.direction, dtype=float)
    corner = np.zeros(3)
    columns = []
    for source, flip in zip(source_axes, flipped):
        size = volume.array.shape[2 - source]
        if flip:
            corner[source] = size - 1
        columns.append(direction[:, source] * (-1.0 if flip else 1.0))
    origin = tuple(volume.ijk_to_lps()[:3] @ np.append(corner, 1.0))
    spacing = tuple(volume.spacing[source] for source in source_axes)
    return CanonicalVolume(array, spacing, origin, np.stack(columns, axis=1), tuple(source_axes), flipped,
                           tuple(volume.array.shape))


def from_canonical(array: npt.ArrayLike, canonical: CanonicalVolume) -> np.ndarray:
    """An array ``[k, j, i]`` on the canonical grid of ``canonical``, put back on the input's grid (a view)."""
    array = np.asarray(array)
    if array.shape != canonical.array.shape:
        raise ValueError(f"array shape {array.shape} is not the canonical grid's {canonical.array.shape}")
    flip_array_axes = tuple(2 - axis for axis in range(3) if canonical.flipped[axis])
    if flip_array_axes:
        array = np.flip(array, axis=flip_array_axes)
    forward = [2 - canonical.source_axes[axis] for axis in (2, 1, 0)]
    return np.transpose(array, np.argsort(forward))
