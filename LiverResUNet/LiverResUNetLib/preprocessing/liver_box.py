"""A cascade's tumor stage looks only inside the liver's bounding box, at its own (finer) pixel size.

Training (from the reference liver) and inference (from the liver stage's liver) cut the same box the same
way: the liver's extent widened by a margin in mm, every slice of the box resampled to the tumor stage's
pixel size and padded about its centre to a square whose side covers the box (a multiple of what the
network needs). One function does it for both, so the tumor network is always fed as it was trained.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from LiverResUNetLib.preprocessing.geometry import slice_grid
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams, preprocess_slices, resize_labels

Box = tuple[slice, slice, slice]


def liver_box(liver: np.ndarray, spacing: tuple[float, ...], margin_mm: float) -> Box | None:
    """The ``[k, j, i]`` box of a canonical liver mask widened by ``margin_mm`` on every side (clipped to the
    volume); None when the mask is empty. ``spacing`` is the volume's ``(di, dj, dk)`` in mm."""
    present = [np.flatnonzero(liver.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
    if present[0].size == 0:
        return None
    steps = (spacing[2], spacing[1], spacing[0])
    box = []
    for found, step, extent in zip(present, steps, liver.shape):
        widen = math.ceil(margin_mm / step)
        box.append(slice(max(int(found[0]) - widen, 0), min(int(found[-1]) + 1 + widen, extent)))
    return box[0], box[1], box[2]


def sized_params(params: PreprocessingParams, shape: tuple[int, int], pixel_spacing: tuple[float, float],
                 multiple: int, minimum: int = 0) -> PreprocessingParams:
    """``params`` with an input size that holds slices of ``shape`` at its pixel size whole: the larger side of
    their frame rounded up to ``multiple``, and at least ``minimum``."""
    frame = slice_grid(shape, pixel_spacing, params.input_size, params.pixel_size_mm).frame
    side = max(max(frame), minimum, multiple)
    return dataclasses.replace(params, input_size=int(math.ceil(side / multiple) * multiple))


def box_slices(hu: np.ndarray, liver: np.ndarray, params: PreprocessingParams,
               pixel_spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 [n, size, size], liver masks float32 [n, size, size])`` of the box's HU slices and liver
    mask, on the tumor network's grid (``params`` sized by :func:`sized_params`)."""
    images = preprocess_slices(hu, params, pixel_spacing)
    masks = resize_labels(np.asarray(liver, dtype=np.uint8), params, pixel_spacing).astype(np.float32)
    return images, masks
