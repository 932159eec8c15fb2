"""Put the slices of one DICOM series in spatial order and derive the volume's exact grid from their headers.

File names and InstanceNumber say nothing reliable about where a slice is (3D-IRCADb names ``image_0 ...
image_N`` sort wrongly as text; archives renumber). ImagePositionPatient projected on the slice normal does,
so it orders the slices and gives the spacing along k; the checks here refuse stacks that no single grid
describes (mixed orientations, gaps, duplicates, sheared stacks) instead of returning a misplaced volume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import numpy as np
from pydicom.dataset import Dataset

from LiverResUNetLib.errors import input_error
from LiverResUNetLib.volume import Volume

#: A step between neighbouring slices larger than this many median steps means slices are missing.
GAP_FACTOR = 1.5
#: Slices closer than this along the normal (mm) sit at the same position.
DUPLICATE_MM = 0.01
#: Largest sideways offset of a slice from the stack's axis, as a fraction of the smallest pixel size.
SHEAR_FRACTION = 0.1
ORIENTATION_TOLERANCE = 1e-4
PIXEL_SPACING_TOLERANCE = 1e-4


@dataclass
class SliceStack:
    """The headers of one series in order of increasing position along the slice normal, and their grid."""

    headers: list[Dataset]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    def grid(self) -> Volume:
        """The series' grid as a Volume whose voxels are never allocated: to compare a grid without decoding."""
        first = self.headers[0]
        shape = (len(self.headers), int(first.Rows), int(first.Columns))
        return Volume(np.broadcast_to(np.zeros((1, 1, 1), dtype=np.uint8), shape), self.spacing, self.origin,
                      self.direction)


def _name(header: Dataset) -> str:
    return Path(header.filename).name


def _floats(header: Dataset, keyword: str) -> np.ndarray | None:
    """A multi-valued decimal attribute as a float array; None when absent or empty."""
    value = header.get(keyword)
    if value is None or value == "":
        return None
    values = np.atleast_1d(np.asarray(value, dtype=float))
    return values if values.size else None


def _valid_orientation(orientation: np.ndarray | None) -> TypeGuard[np.ndarray]:
    """True for six direction cosines making two orthogonal unit vectors."""
    if orientation is None or len(orientation) != 6:
        return False
    row, column = orientation[:3], orientation[3:]
    return bool(abs(np.linalg.norm(row) - 1) < 1e-2 and abs(np.linalg.norm(column) - 1) < 1e-2
                and abs(float(row @ column)) < 1e-3)


def _axes(orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row (i), column (j) and normal (k) directions from an ImageOrientationPatient value."""
    row = orientation[:3] / np.linalg.norm(orientation[:3])
    column = orientation[3:] / np.linalg.norm(orientation[3:])
    normal = np.cross(row, column)
    return row, column, normal / np.linalg.norm(normal)


def listing_order(headers: Sequence[Dataset]) -> list[Dataset]:
    """Headers ordered along the slice normal as far as they allow, without checking anything.

    Used to list a series' files; :func:`stack_slices` does the checked ordering for reading.
    """
    first_orientation = _floats(headers[0], "ImageOrientationPatient")
    positions = [_floats(h, "ImagePositionPatient") for h in headers]
    if _valid_orientation(first_orientation) and all(p is not None and len(p) == 3 for p in positions):
        normal = _axes(first_orientation)[2]
        keys = [float(p @ normal) for p in positions]
    else:
        keys = [float(h.get("InstanceNumber") or 0) for h in headers]
    order = sorted(range(len(headers)), key=lambda n: (keys[n], str(headers[n].filename)))
    return [headers[n] for n in order]


def _check_same(headers: Sequence[Dataset], where: str | Path, keyword: str,
                read: Callable[[Dataset], np.ndarray | None], tolerance: float) -> np.ndarray | None:
    """Refuse when ``keyword`` differs between slices: one grid cannot describe them all."""
    reference = read(headers[0])
    for header in headers[1:]:
        value = read(header)
        same = (reference is None and value is None) or (
            reference is not None and value is not None and reference.shape == value.shape
            and np.allclose(value, reference, rtol=tolerance, atol=tolerance))
        if not same:
            raise input_error(where, f"{keyword} differs between slices: {_name(headers[0])} has {reference}, "
                                     f"{_name(header)} has {value}")
    return reference


def _in_plane_grid(headers: Sequence[Dataset], where: str | Path) -> tuple[np.ndarray, tuple[float, float]]:
    """Check rows/columns, orientation and pixel spacing agree; return (orientation, (di, dj))."""
    _check_same(headers, where, "Rows x Columns", lambda h: np.asarray([h.get("Rows"), h.get("Columns")]), 0)
    orientation = _check_same(headers, where, "ImageOrientationPatient",
                              lambda h: _floats(h, "ImageOrientationPatient"), ORIENTATION_TOLERANCE)
    pixel_spacing = _check_same(headers, where, "PixelSpacing", lambda h: _floats(h, "PixelSpacing"),
                                PIXEL_SPACING_TOLERANCE)
    if pixel_spacing is None or len(pixel_spacing) != 2 or np.any(pixel_spacing <= 0):
        raise input_error(where, f"{_name(headers[0])} has no valid PixelSpacing ({pixel_spacing})")
    if orientation is None:
        orientation = np.asarray([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    elif not _valid_orientation(orientation):
        raise input_error(where, f"{_name(headers[0])} has an invalid ImageOrientationPatient {orientation}")
    # PixelSpacing is (between rows, between columns) = (dj, di).
    return orientation, (float(pixel_spacing[1]), float(pixel_spacing[0]))


def _nominal_slice_spacing(header: Dataset) -> float:
    """Spacing along k when positions cannot give it (one slice, or no positions)."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = header.get(keyword)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return 1.0


def _check_steps(ordered: Sequence[Dataset], heights: np.ndarray, where: str | Path) -> float:
    """Refuse duplicate positions and gaps; return the median step along the normal."""
    steps = np.diff(heights)
    duplicates = np.flatnonzero(steps < DUPLICATE_MM)
    if duplicates.size:
        n = duplicates[0]
        raise input_error(where, f"two slices at the same position {heights[n]:.2f} mm along the slice normal: "
                                 f"{_name(ordered[n])} and {_name(ordered[n + 1])} (duplicated files or two "
                                 f"series sharing one SeriesInstanceUID)")
    median = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * median)
    if gaps.size:
        n = gaps[0]
        missing = max(1, int(round(steps[n] / median)) - 1)
        raise input_error(where, f"missing slice(s): a gap of {steps[n]:.2f} mm (about {missing} slice(s); the "
                                 f"usual step is {median:.2f} mm) between positions {heights[n]:.2f} and "
                                 f"{heights[n + 1]:.2f} mm along the slice normal, after {_name(ordered[n])}")
    return median


def _check_not_sheared(ordered: Sequence[Dataset], positions: np.ndarray, normal: np.ndarray, pixel_size: float,
                       where: str | Path) -> None:
    """Refuse a stack whose slices drift sideways (gantry tilt): a rectangular grid would misplace them."""
    offsets = positions - positions[0]
    sideways = np.linalg.norm(offsets - np.outer(offsets @ normal, normal), axis=1)
    worst = int(np.argmax(sideways))
    if sideways[worst] > SHEAR_FRACTION * pixel_size:
        raise input_error(where, f"slices are not stacked along the slice normal (gantry tilt or a sheared "
                                 f"series): {_name(ordered[worst])} is {sideways[worst]:.2f} mm off the axis "
                                 f"through {_name(ordered[0])}")


def _order_by_instance_number(headers: Sequence[Dataset], where: str | Path) -> list[Dataset]:
    numbers = [h.get("InstanceNumber") for h in headers]
    if any(n in (None, "") for n in numbers) or len({int(n) for n in numbers}) != len(numbers):
        raise input_error(where, "the slices have no ImagePositionPatient and no unique InstanceNumber: "
                                 "their order is unknown")
    return sorted(headers, key=lambda h: int(h.InstanceNumber))


def stack_slices(headers: Sequence[Dataset], where: str | Path) -> SliceStack:
    """Order the headers of one series along the slice normal and compute spacing, origin and direction.

    Args:
        headers: pydicom datasets (pixel data not needed) of one single-frame image series.
        where: the folder or file named in error messages.

    Returns:
        A :class:`SliceStack`. Direction columns are the row (i), column (j) and slice normal (k) directions;
        k points towards increasing position, the origin is the position of the first slice and the spacing
        along k is the median step between positions. Without any ImagePositionPatient the slices are
        ordered by InstanceNumber and placed from (0, 0, 0), one nominal slice spacing apart.

    Raises:
        InputError: inconsistent rows/columns, orientation or pixel spacing, positions given for some slices
            only, duplicate positions, missing slices or a sheared stack.
    """
    orientation, (di, dj) = _in_plane_grid(headers, where)
    row, column, normal = _axes(orientation)
    direction = np.column_stack([row, column, normal])
    positions = [_floats(h, "ImagePositionPatient") for h in headers]
    if all(p is None for p in positions):
        ordered = _order_by_instance_number(headers, where)
        return SliceStack(ordered, (di, dj, _nominal_slice_spacing(ordered[0])), (0.0, 0.0, 0.0), direction)
    for header, position in zip(headers, positions):
        if position is None or len(position) != 3:
            raise input_error(where, f"{_name(header)} has no valid ImagePositionPatient while other slices do")
    points = np.asarray(positions, dtype=float)
    order = np.argsort(points @ normal, kind="stable")
    ordered = [headers[n] for n in order]
    points = points[order]
    heights = points @ normal
    if len(ordered) == 1:
        dk = _nominal_slice_spacing(ordered[0])
    else:
        dk = _check_steps(ordered, heights, where)
        _check_not_sheared(ordered, points, normal, min(di, dj), where)
    return SliceStack(ordered, (di, dj, dk), tuple(points[0]), direction)
