"""Physical scale: a CT slice, whatever its matrix and pixel size, reaches the network at a fixed pixel size in mm.

A slice of ``rows`` x ``columns`` pixels of ``(row_mm, column_mm)`` is resampled so that one network pixel
covers ``pixel_size_mm`` (aspect ratio kept, like nnU-Net's target spacing), giving a *frame* that is then
padded or cropped about its centre to the square network input. The mapping is a scale about the slice's
top-left edge plus a whole-pixel shift, so :func:`from_network` puts the network's output back on the
slice's exact grid. Old models, whose card has no pixel size, keep the old geometry: every slice
stretched to the input size.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

if typing.TYPE_CHECKING:
    import torch

# A frame edge closer than this (in frame pixels) to a whole pixel is taken as that pixel, so that
# 512 x 0.75 mm / 1.5 mm gives 256 pixels, not 257.
_EDGE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SliceGrid:
    """How slices of one shape and pixel size map onto the network's ``size`` x ``size`` input.

    Attributes:
        shape: ``(rows, columns)`` of the CT slice.
        frame: ``(rows, columns)`` of the slice resampled to the network's pixel size.
        scales: ``(rows, columns)`` frame pixels per slice pixel; None stretches the slice to the input.
        offset: frame pixel ``(row, column)`` at network pixel ``(0, 0)`` (negative: the frame is padded).
        size: the network's input size.
    """

    shape: tuple[int, int]
    frame: tuple[int, int]
    scales: tuple[float, float] | None
    offset: tuple[int, int]
    size: int


class NetworkScale(Protocol):
    """What fixes the network's grid: its input size and the pixel size in mm slices are resampled to (None:
    stretched to the input), as :class:`~LiverResUNetLib.preprocessing.intensity.PreprocessingParams` holds."""

    @property
    def input_size(self) -> int: ...

    @property
    def pixel_size_mm(self) -> float | None: ...


def slice_grid(shape: Sequence[int], pixel_spacing: Sequence[float] | None, size: int,
               pixel_size_mm: float | None) -> SliceGrid:
    """The :class:`SliceGrid` of slices of ``shape`` with ``pixel_spacing`` (row mm, column mm).

    ``pixel_size_mm`` None (an old model) stretches every slice to ``size`` x ``size``, whatever its spacing.
    """
    rows, columns = int(shape[0]), int(shape[1])
    if pixel_size_mm is None:
        return SliceGrid((rows, columns), (size, size), None, (0, 0), size)
    if pixel_spacing is None:
        raise ValueError("the model resamples slices to a pixel size in mm, so the CT's pixel spacing is needed")
    scales = (float(pixel_spacing[0]) / pixel_size_mm, float(pixel_spacing[1]) / pixel_size_mm)
    frame = (_frame_extent(rows, scales[0]), _frame_extent(columns, scales[1]))
    offset = ((frame[0] - size) // 2, (frame[1] - size) // 2)
    return SliceGrid((rows, columns), frame, scales, offset, size)


def network_grid(shape: Sequence[int], pixel_spacing: Sequence[float] | None, scale: NetworkScale) -> SliceGrid:
    """The :class:`SliceGrid` of slices of ``shape`` (rows, columns) with ``pixel_spacing`` (row mm, column mm)
    for a network fed as ``scale`` says (the preprocessing parameters): the one grid that preprocessing puts
    slices on, for training and inference, and that the predictor maps the network's output back from."""
    return slice_grid(shape, pixel_spacing, scale.input_size, scale.pixel_size_mm)


def _frame_extent(count: int, scale: float) -> int:
    """Frame pixels covering ``count`` slice pixels of ``scale`` frame pixels each (at least one)."""
    return max(1, math.ceil(count * scale - _EDGE_TOLERANCE))


def to_network(images: torch.Tensor, grid: SliceGrid, labels: bool = False, fill: float = 0.0) -> torch.Tensor:
    """Slices ``[n, rows, columns]`` on the network's grid ``[n, size, size]``.

    Images are resampled bilinearly (anti-aliased when shrinking), label maps by nearest neighbour;
    what lies beyond the slice is ``fill``.
    """
    import torch

    if grid.scales is None and tuple(images.shape[-2:]) == grid.frame:
        return images
    stack = images[:, None]
    if labels:
        frame = _nearest(stack, grid)
    else:
        frame = torch.ops.aten._upsample_bilinear2d_aa(stack, list(grid.frame), False, *_scales(grid))
    return _shifted(frame, grid.offset, (grid.size, grid.size), fill)[:, 0]


def from_network(maps: torch.Tensor, grid: SliceGrid, fill: float) -> torch.Tensor:
    """Maps ``[n, channels, size, size]`` on the network's grid, bilinearly on the slice's grid ``[n, channels,
    rows, columns]``; the slice's parts the network did not see (cropped away) get ``fill``."""
    import torch

    if grid.scales is None and tuple(maps.shape[-2:]) == grid.shape:
        return maps
    frame = _shifted(maps, (-grid.offset[0], -grid.offset[1]), grid.frame, fill)
    inverse = (None, None) if grid.scales is None else (1.0 / grid.scales[0], 1.0 / grid.scales[1])
    return torch.ops.aten.upsample_bilinear2d(frame, list(grid.shape), False, *inverse)


def _scales(grid: SliceGrid) -> tuple[float, float] | tuple[None, None]:
    """The output-per-input factors aten's resampling takes (None: from the sizes, as plain interpolate)."""
    return (None, None) if grid.scales is None else grid.scales


def _nearest(stack: torch.Tensor, grid: SliceGrid) -> torch.Tensor:
    import torch
    from torch.nn import functional

    if grid.scales is None:
        return functional.interpolate(stack, size=grid.frame, mode="nearest-exact")
    return torch.ops.aten._upsample_nearest_exact2d(stack, list(grid.frame), *grid.scales)


def _shifted(stack: torch.Tensor, offset: Sequence[int], size: Sequence[int], fill: float) -> torch.Tensor:
    """``stack[..., offset[0]:offset[0] + size[0], offset[1]:offset[1] + size[1]]``, ``fill`` outside it."""
    if tuple(offset) == (0, 0) and tuple(stack.shape[-2:]) == tuple(size):
        return stack
    result = stack.new_full((*stack.shape[:-2], *size), fill)
    source, target = [], []
    for start, extent, wanted in zip(offset, stack.shape[-2:], size):
        low, high = max(start, 0), min(start + wanted, extent)
        source.append(slice(low, max(high, low)))
        target.append(slice(low - start, max(high, low) - start))
    result[..., target[0], target[1]] = stack[..., source[0], source[1]]
    return result
