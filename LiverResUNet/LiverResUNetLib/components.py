"""Connected components, defined once for the whole project.

Voxels that touch by a face, an edge or a corner are connected: 26-connectivity in a volume, 8 in a slice.
Post-processing, training's lesion sampling, the evaluation and the results table all label components
with :func:`label_components`, so two corner-touching tumor voxels are one lesion everywhere: never one
lesion in the report and two deleted specks in post-processing.
"""

import numpy as np
from scipy import ndimage

CONNECTIVITY = 26


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the connected components of a boolean ``mask`` (2D or 3D): ``(labels 0..count, count)``."""
    mask = np.asarray(mask, dtype=bool)
    labels, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))
    return labels, int(count)
