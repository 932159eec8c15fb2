"""The lower thorax of a synthetic CT: lungs and a heart above and beside the liver's dome.

Most label maps (and most abdominal training CTs) stop at the liver's dome, so a network taught on them never sees
what lies above it, and labels the heart of a CT that shows it as liver: the heart's blood and muscle are about as
bright as the liver in the portal phase, and on one slice it is a large smooth organ like the liver. Here the label
map's grid is extended upward by a few centimetres, and from somewhat below the liver's top upward the unlabelled
body becomes lung inside the chest wall, around a heart that sits on the diaphragm on the side opposite the liver,
in front of the spine. Sizes are drawn as shares of the body's width, so that they follow the body of any label map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# As shares of the body's width (about 330 mm in an adult): the thorax added above the label map's last slice, how
# far below the liver's top the lungs reach (beside and behind the dome), the chest wall, the heart's semi-axes
# (left-right, front-back, along the body) and its centre's offset from the midline, the posterior mediastinum
# (spine, aorta, oesophagus) left as soft tissue.
THORAX_SHARE = (0.03, 0.15)
LUNG_DEPTH_SHARE = (0.03, 0.12)
CHEST_WALL_SHARE = (0.04, 0.07)
HEART_SHARES = ((0.15, 0.20), (0.11, 0.15), (0.12, 0.17))
HEART_OFFSET_SHARE = (0.03, 0.10)
MEDIASTINUM_SHARE = (0.04, 0.07)
# The heart's centre behind the front of the body (shares of the body's depth), and how much of its height lies below
# the liver's top (it sits on the diaphragm beside the dome).
HEART_DEPTH_SHARE = (0.3, 0.5)
HEART_BELOW_TOP_SHARE = (0.1, 0.4)
# The diaphragm and pericardium between the liver and the lungs or heart (mm).
DIAPHRAGM_MM = (3.0, 6.0)


def add_thorax(tissues: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float],
               rng: np.random.Generator, body: int, liver: int, lung: int, heart: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(tissues, labels)`` extended by slices above the last (index ``k`` grows toward the head, as in
    3D-IRCADb-01's files): there and from somewhat below the liver's top, voxels of tissue ``body`` (the unlabelled
    body) become ``lung`` or ``heart``. Labels of the added slices are background; the label map's own slices keep
    theirs.

    Args:
        tissues: uint8 ``[k, j, i]`` tissue map (0 outside the body); ``liver`` marks the liver and its tumors.
        labels: uint8 labels on the same grid.
        spacing: ``(di, dj, dk)`` mm.
    """
    liver_slices = np.flatnonzero((tissues == liver).any(axis=(1, 2)))
    last = tissues[-1].copy()
    inside = np.nonzero(last)
    if liver_slices.size == 0 or inside[0].size == 0:
        return tissues, labels
    width_mm = (np.ptp(inside[1]) + 1) * spacing[0]
    top = int(liver_slices[-1])
    last[last == liver] = body
    added = int(round(rng.uniform(*THORAX_SHARE) * width_mm / spacing[2]))
    tissues = np.concatenate([tissues, np.broadcast_to(last, (added, *last.shape))])
    labels = np.concatenate([labels, np.zeros((added, *labels.shape[1:]), dtype=labels.dtype)])
    midline, front = float(inside[1].mean()), int(inside[0].min())
    liver_side = np.sign(np.nonzero(tissues[top] == liver)[1].mean() - midline) or -1.0
    semi_axes = [rng.uniform(*share) * width_mm for share in HEART_SHARES]
    centre_i = midline - liver_side * rng.uniform(*HEART_OFFSET_SHARE) * width_mm / spacing[0]
    centre_j = front + rng.uniform(*HEART_DEPTH_SHARE) * (np.ptp(inside[0]) + 1)
    below_top_mm = rng.uniform(*HEART_BELOW_TOP_SHARE) * 2 * semi_axes[2]
    centre_k = top + (semi_axes[2] - below_top_mm) / spacing[2]
    first = max(top - int(rng.uniform(*LUNG_DEPTH_SHARE) * width_mm / spacing[2]), 0)
    wall_mm = rng.uniform(*CHEST_WALL_SHARE) * width_mm
    mediastinum_mm = rng.uniform(*MEDIASTINUM_SHARE) * width_mm
    diaphragm_mm = rng.uniform(*DIAPHRAGM_MM)
    js, is_ = np.ogrid[:last.shape[0], :last.shape[1]]
    lateral_mm = np.abs(is_ - midline) * spacing[0]
    behind_heart = js > centre_j
    for index in range(first, len(tissues)):
        plane = tissues[index]
        free = plane == body
        if not free.any():
            continue
        if (plane == liver).any():
            free &= ndimage.distance_transform_edt(plane != liver, sampling=spacing[1::-1]) > diaphragm_mm
        along = 1.0 - ((index - centre_k) * spacing[2] / semi_axes[2]) ** 2
        in_heart = np.zeros(plane.shape, dtype=bool)
        if along > 0:
            in_heart = (((is_ - centre_i) * spacing[0] / semi_axes[0]) ** 2
                        + ((js - centre_j) * spacing[1] / semi_axes[1]) ** 2) <= along
        chest = ndimage.distance_transform_edt(plane > 0, sampling=spacing[1::-1]) > wall_mm
        mediastinum = (lateral_mm < mediastinum_mm) & behind_heart
        plane[free & in_heart] = heart
        plane[free & chest & ~in_heart & ~mediastinum] = lung
    return tissues, labels
