"""THE preprocessing of CT slices, shared by training and inference: HU window, physical scale, equalisation.

Its parameters are written into every model file, so a model is always fed exactly as it was trained.
Slices are processed one by one (equalisation is per slice), so preprocessing a whole volume at once, as
training does, and a batch of slices at a time, as inference does, give identical inputs.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from LiverResUNetLib.preprocessing.geometry import network_grid, to_network
from LiverResUNetLib.records import dataclass_from_dict

if typing.TYPE_CHECKING:
    import torch

EQUALIZATIONS = ("interior", "global", "clahe", "none")
# What a card written before a parameter existed meant by it: no pixel size (slices stretched to the input).
_LEGACY_VALUES = {"pixel_size_mm": None}
_EQUALIZATION_BINS = 256


@dataclass(frozen=True)
class PreprocessingParams:
    """How HU slices become network input.

    Attributes:
        window: (low, high) HU window; values outside are clipped, the window is scaled to [0, 1].
        equalization: "interior" (each slice's histogram over its pixels strictly inside the window, so that
            neither the air nor what is clipped moves the values of the anatomy), "global" (scikit-image
            ``equalize_hist`` per slice, every pixel counted), "clahe" (``equalize_adapthist``, contrast
            limited adaptive) or "none".
        clahe_clip: CLAHE clip limit (fraction of the histogram), used when equalization is "clahe".
        input_size: the network sees ``input_size`` x ``input_size`` pixels.
        context_slices: neighbours on each side given as extra channels (2.5D); 0 feeds single slices. Two
            since 2026-12-07 (one before): on real CT its tumors beat one neighbour's (RESULTS_training.md).
        pixel_size_mm: slices are resampled to this pixel size (aspect ratio kept), then padded or cropped
            about their centre to the input size; None (models from before it existed) stretches every slice
            to the input size whatever its pixel size.
        liver_channel: a cascade's tumor stage gets the liver mask as one more input channel (after the slices).
    """

    window: tuple[float, float] = (-100.0, 400.0)
    equalization: str = "interior"
    clahe_clip: float = 0.01
    input_size: int = 256
    context_slices: int = 2
    pixel_size_mm: float | None = 1.5
    liver_channel: bool = False

    def __post_init__(self) -> None:
        window = tuple(float(value) for value in self.window)
        if len(window) != 2 or not window[0] < window[1]:
            raise ValueError(f"window must be (low, high) with low < high, got {self.window}")
        if self.equalization not in EQUALIZATIONS:
            raise ValueError(f"equalization must be one of {', '.join(EQUALIZATIONS)}, got {self.equalization!r}")
        if not 0.0 < float(self.clahe_clip) <= 1.0:
            raise ValueError(f"clahe_clip must be in (0, 1], got {self.clahe_clip}")
        if int(self.input_size) != self.input_size or self.input_size < 8:
            raise ValueError(f"input_size must be an integer of at least 8, got {self.input_size}")
        if int(self.context_slices) != self.context_slices or self.context_slices < 0:
            raise ValueError(f"context_slices must be an integer >= 0, got {self.context_slices}")
        if not isinstance(self.liver_channel, bool):
            raise ValueError(f"liver_channel must be true or false, got {self.liver_channel!r}")
        if self.pixel_size_mm is not None and not float(self.pixel_size_mm) > 0.0:
            raise ValueError(f"pixel_size_mm must be > 0 (or null to stretch slices), got {self.pixel_size_mm}")
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "clahe_clip", float(self.clahe_clip))
        object.__setattr__(self, "input_size", int(self.input_size))
        object.__setattr__(self, "context_slices", int(self.context_slices))
        if self.pixel_size_mm is not None:
            object.__setattr__(self, "pixel_size_mm", float(self.pixel_size_mm))

    @property
    def channels(self) -> int:
        """Input channels of the network fed with these slices: the slice and its neighbours (and the liver mask)."""
        return 2 * self.context_slices + 1 + int(self.liver_channel)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain data; ``liver_channel`` only when set, so single-stage cards stay as they were."""
        values = dataclasses.asdict(self)
        values["window"] = list(self.window)
        if not self.liver_channel:
            del values["liver_channel"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessingParams:
        """Parameters from a (model card) dict; ValueError naming unknown keys or bad values.

        A key the dict lacks takes the value that reproduces what models written before it did.
        """
        return dataclass_from_dict(cls, {**_LEGACY_VALUES, **values}, "preprocessing parameters")


def window_hu(hu: npt.ArrayLike, window: Sequence[float]) -> np.ndarray:
    """HU clipped to ``window`` and scaled to [0, 1], as a new float32 array (``hu`` is untouched)."""
    return _windowed(hu, window).numpy()


def _windowed(hu: npt.ArrayLike, window: Sequence[float]) -> torch.Tensor:
    """:func:`window_hu` as a torch tensor (a new one: the clipping runs in place on every core)."""
    import torch

    low, high = window
    values = torch.from_numpy(np.array(hu, dtype=np.float32, order="C"))
    return values.clamp_(low, high).sub_(low).div_(high - low)


def resize_labels(labels: npt.ArrayLike, params: PreprocessingParams,
                  pixel_spacing: Sequence[float] | None = None) -> np.ndarray:
    """``[n, rows, columns]`` label slices on the network's grid by nearest neighbour (uint8).

    Uses the same geometry as :func:`preprocess_slices`, so labels stay on the images; ``pixel_spacing``
    (row mm, column mm) is needed when ``params`` has a pixel size.
    """
    import torch

    stack = torch.from_numpy(np.array(labels, dtype=np.uint8))
    grid = network_grid(stack.shape[1:], pixel_spacing, params)
    return to_network(stack, grid, labels=True).numpy().copy()


def equalize_slices(images: np.ndarray, equalization: str, clahe_clip: float = 0.01) -> np.ndarray:
    """Histogram-equalise each ``[rows, columns]`` slice of ``images`` (values in [0, 1]) on its own, in place.

    Args:
        images: float32 ``[n, rows, columns]``.
        equalization: "interior", "global", "clahe" or "none" (see :class:`PreprocessingParams`).
        clahe_clip: the CLAHE clip limit.
    """
    from skimage import exposure

    if equalization == "none":
        return images
    for index, image in enumerate(images):
        if equalization == "interior":
            images[index] = equalize_interior(image)
        elif equalization == "global":
            images[index] = exposure.equalize_hist(image)
        else:
            images[index] = exposure.equalize_adapthist(image, clip_limit=clahe_clip)
    return images


def equalize_interior(image: np.ndarray) -> np.ndarray:
    """``image`` (values in [0, 1]) mapped through the cumulative histogram of its values strictly inside (0, 1).

    The clipped values (0: air, fat below the window; 1: bone, contrast above it) keep 0 and 1 and do not
    count, so the anatomy inside the window gets the same values however much air or bone the slice holds.
    The cumulative histogram is linear within each of its bins. A slice with nothing inside is unchanged.
    """
    interior = image[(image > 0.0) & (image < 1.0)]
    if interior.size == 0:
        return image
    counts, edges = np.histogram(interior, bins=_EQUALIZATION_BINS, range=(0.0, 1.0))
    cumulative = np.concatenate([[0.0], np.cumsum(counts) / interior.size])
    return np.interp(image, edges, cumulative).astype(np.float32)


def preprocess_slices(hu: npt.ArrayLike, params: PreprocessingParams,
                      pixel_spacing: Sequence[float] | None = None) -> np.ndarray:
    """HU slices ``[n, rows, columns]`` -> network input float32 ``[n, input_size, input_size]``.

    The HU window comes first, then the physical scale (``pixel_spacing``: row mm, column mm, needed when
    ``params`` has a pixel size); equalisation comes last, on the network's grid, so that it costs the same
    whatever the CT's matrix (a 512 x 512 slice costs four times as much to equalise as 256 x 256).
    """
    images = _windowed(hu, params.window)
    grid = network_grid(images.shape[1:], pixel_spacing, params)
    return equalize_slices(to_network(images, grid).numpy(), params.equalization, params.clahe_clip)
