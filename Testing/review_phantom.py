"""A small CT and label map for lesion review tests: two labelled lesions and one the model missed."""

from pathlib import Path

import numpy as np

from LiverResUNetLib.io.image_file import write_image
from LiverResUNetLib.volume import Volume

SPACING = (0.8, 0.8, 2.0)  # (di, dj, dk) mm
ORIGIN = (-40.0, -30.0, 10.0)
MISSED_LESION_SEED_KJI = (6, 34, 35)  # inside the lesion the label map lacks


def phantom(direction: np.ndarray | None = None) -> tuple[Volume, Volume]:
    """A CT (liver 60 HU, two hypodense lesions at 10 HU, one unlabelled at 0 HU) and its label map."""
    direction = np.eye(3) if direction is None else direction
    hu = np.full((12, 60, 80), -900.0, np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    hu[1:11, 5:55, 5:75] = 60.0
    labels[1:11, 5:55, 5:75] = 1
    hu[3:7, 10:20, 10:22] = 10.0  # 4 x 10 x 12 = 480 voxels: lesion 1
    labels[3:7, 10:20, 10:22] = 2
    hu[8, 40:42, 60:62] = 10.0  # 4 voxels: lesion 2 (a small false positive)
    labels[8, 40:42, 60:62] = 2
    hu[4:8, 30:38, 30:40] = 0.0  # 4 x 8 x 10 = 320 voxels: the lesion the model missed
    return Volume(hu, SPACING, ORIGIN, direction), Volume(labels, SPACING, ORIGIN, direction)


def write_phantom_worklist(folder: Path, names: tuple[str, ...] = ("case-1", "case-2")) -> Path:
    """A review worklist of image-file cases: each the phantom CT as ct.nrrd and its labels as
    segmentation.nii.gz."""
    ct, labels = phantom()
    for name in names:
        (folder / name).mkdir(parents=True)
        write_image(ct, folder / name / "ct.nrrd")
        write_image(labels, folder / name / "segmentation.nii.gz")
    return folder
