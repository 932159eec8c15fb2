"""THE preprocessing of CT slices, shared by training and inference: HU window, resize, histogram equalisation.

Its parameters are written into every model file, so a model is always fed exactly as it was trained.
Slices are processed one by one (equalisation is per slice), so preprocessing a whole volume at once, as
training does, and a batch of slices at a time, as inference does, give identical inputs.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from LiverResUNetLib.records import dataclass_from_dict

EQUALIZATIONS = ("global", "clahe", "none")


@dataclass(frozen=True)
class PreprocessingParams:
    """How HU slices become network input.

    Attributes:
        window: (low, high) HU window; values outside are clipped, the window is scaled to [0, 1].
        equalization: "global" (scikit-image ``equalize_hist`` per slice), "clahe" (``equalize_adapthist``,
            contrast limited adaptive) or "none".
        clahe_clip: CLAHE clip limit (fraction of the histogram), used when equalization is "clahe".
        input_size: slices are resized to ``input_size`` x ``input_size`` pixels for the network.
        context_slices: neighbours on each side given as extra channels (2.5D); 0 feeds single slices.
    """

    window: tuple = (-100.0, 400.0)
    equalization: str = "global"
    clahe_clip: float = 0.01
    input_size: int = 256
    context_slices: int = 1

    def __post_init__(self):
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
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "clahe_clip", float(self.clahe_clip))
        object.__setattr__(self, "input_size", int(self.input_size))
        object.__setattr__(self, "context_slices", int(self.context_slices))

    @property
    def channels(self):
        """Input channels of the network fed with these slices: the slice and its neighbours."""
        return 2 * self.context_slices + 1

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["window"] = list(self.window)
        return values

    @classmethod
    def from_dict(cls, values):
        """Parameters from a (model card) dict; ValueError naming unknown keys or bad values."""
        return dataclass_from_dict(cls, values, "preprocessing parameters")


def window_hu(hu, window):
    """HU clipped to ``window`` and scaled to [0, 1], as a new float32 array (``hu`` is untouched)."""
    return _windowed(hu, window).numpy()


def resize_slices(images, size):
    """``[n, rows, columns]`` float images resized to ``[n, size, size]`` (bilinear, anti-aliased when shrinking).

    Pixel centres stay aligned (``align_corners=False``), the convention the predictor uses to bring the
    network's output back to the slice's own size.
    """
    import torch

    return _resized(torch.from_numpy(np.array(images, dtype=np.float32)), size).numpy()


def _windowed(hu, window):
    """:func:`window_hu` as a torch tensor (a new one: the clipping runs in place on every core)."""
    import torch

    low, high = window
    values = torch.from_numpy(np.array(hu, dtype=np.float32, order="C"))
    return values.clamp_(low, high).sub_(low).div_(high - low)


def _resized(images, size):
    from torch.nn import functional

    if tuple(images.shape[1:]) == (size, size):
        return images
    return functional.interpolate(images[:, None], size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=True)[:, 0]


def resize_labels(labels, params):
    """``[n, rows, columns]`` label slices resized to the network's input size by nearest neighbour (uint8).

    Uses the same pixel-centre alignment as :func:`resize_slices`, so labels stay on the resized images.
    """
    import torch
    from torch.nn import functional

    labels = np.asarray(labels, dtype=np.uint8)
    size = params.input_size
    if labels.shape[1:] == (size, size):
        return labels.copy()
    resized = functional.interpolate(torch.from_numpy(np.ascontiguousarray(labels))[:, None], size=(size, size),
                                     mode="nearest-exact")
    return resized[:, 0].numpy()


def equalize_slices(images, equalization, clahe_clip=0.01):
    """Histogram-equalise each ``[rows, columns]`` slice of ``images`` (values in [0, 1]) on its own, in place.

    Args:
        images: float32 ``[n, rows, columns]``.
        equalization: "global", "clahe" or "none" (see :class:`PreprocessingParams`).
        clahe_clip: the CLAHE clip limit.
    """
    from skimage import exposure

    if equalization == "none":
        return images
    for index, image in enumerate(images):
        if equalization == "global":
            images[index] = exposure.equalize_hist(image)
        else:
            images[index] = exposure.equalize_adapthist(image, clip_limit=clahe_clip)
    return images


def preprocess_slices(hu, params):
    """HU slices ``[n, rows, columns]`` -> network input float32 ``[n, input_size, input_size]``.

    The HU window comes first; resizing comes before equalisation so that equalising costs the same
    whatever the CT's matrix (a 512 x 512 slice costs four times as much to equalise as 256 x 256).
    """
    images = _resized(_windowed(hu, params.window), params.input_size).numpy()
    return equalize_slices(images, params.equalization, params.clahe_clip)
