"""The reference the preprocessing tests compare with: slices stretched to the network's square, as models
without a pixel size see them, built from the core's own grid functions."""

import numpy as np
import torch

from LiverResUNetLib.preprocessing.geometry import slice_grid, to_network


def resize_slices(images, size):
    """``[n, rows, columns]`` float images stretched to ``[n, size, size]`` (bilinear, anti-aliased when shrinking);
    pixel centres stay aligned (``align_corners=False``)."""
    images = torch.from_numpy(np.array(images, dtype=np.float32))
    return to_network(images, slice_grid(images.shape[1:], None, size, None)).numpy()
