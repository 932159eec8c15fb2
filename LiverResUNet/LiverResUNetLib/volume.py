"""The one image type of the core: a voxel array with its exact place in patient space.

Conventions (shared by every module):
- ``array`` is indexed ``[k, j, i]`` (slice, row, column), like ``slicer.util.arrayFromVolume``.
- ``spacing`` is ``(di, dj, dk)`` in mm, in i, j, k order (ITK / SimpleITK order).
- ``origin`` is the position of voxel ``[0, 0, 0]`` in DICOM patient coordinates (LPS, mm).
- ``direction`` is a 3x3 matrix whose columns are the unit vectors of the i, j and k axes in LPS.
Slicer nodes are RAS; the scene bridge is the only place that converts.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LABEL_NAMES = ("background", "liver", "liver tumor")
BACKGROUND, LIVER, TUMOR = 0, 1, 2


def voxel_volume_mm3(spacing: Sequence[float]) -> float:
    """The volume of one voxel of ``spacing`` ``(di, dj, dk)`` mm, in mm³."""
    return float(np.prod(spacing))


def row_column_spacing(spacing: Sequence[float]) -> tuple[float, float]:
    """``(row mm, column mm)`` of the slices ``array[k]`` of a grid of ``spacing`` ``(di, dj, dk)``: the order
    of DICOM's PixelSpacing, and what the network's physical scale is computed from."""
    return float(spacing[1]), float(spacing[0])


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """The volume of one voxel of ``spacing`` ``(di, dj, dk)`` mm, in mL (1 mL = 1000 mm³)."""
    return voxel_volume_mm3(spacing) / 1000.0


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
    origin: tuple[float, ...] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D [k, j, i], got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) voxel indices to LPS millimetres."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        matrix[:3, 3] = self.origin
        return matrix

    def with_array(self, array: np.ndarray, **metadata: Any) -> "Volume":
        """A new Volume on this exact grid holding ``array`` (same shape), e.g. a label map."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match the volume grid {self.array.shape}")
        return Volume(array, self.spacing, self.origin, self.direction.copy(), dict(metadata))

    def same_grid(self, other: "Volume", tolerance: float = 1e-4) -> bool:
        """True when ``other`` has the same shape and voxel-to-patient mapping."""
        return self.array.shape == other.array.shape and np.allclose(
            self.ijk_to_lps(), other.ijk_to_lps(), atol=tolerance)

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """``(row mm, column mm)`` of the slices ``array[k]`` (see :func:`row_column_spacing`)."""
        return row_column_spacing(self.spacing)

    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm^3)."""
        return voxel_volume_ml(self.spacing)
