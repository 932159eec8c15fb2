"""Read and write image files (NIfTI, NRRD, MetaImage) as Volumes, and open any image input by its path.

SimpleITK does the file formats: ITK keeps geometry in LPS like :class:`Volume`, and its NIfTI IO converts
to and from the RAS that NIfTI stores, so no axis is flipped here.
"""

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.volume import Volume

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
# Single-file formats only: a detached header (.nhdr, .mhd) would name its data file by the temporary name.
WRITE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has the name of an image file this module reads."""
    return Path(path).name.lower().endswith(IMAGE_SUFFIXES)


def read_image(path: str | os.PathLike) -> Volume:
    """Read a 3D scalar image file into a Volume (array ``[k, j, i]``, geometry in LPS, stored dtype kept).

    Raises:
        InputError: the file is missing, not a readable image, not 3D or not scalar.
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "does not exist")
    if not is_image_file(path):
        raise input_error(path, f"is not an image file this reader knows ({', '.join(IMAGE_SUFFIXES)})")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise input_error(path, f"cannot be read as an image: {reason}") from error
    if image.GetDimension() != 3:
        raise input_error(path, f"is a {image.GetDimension()}D image; a 3D volume is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise input_error(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
                                "a scalar volume is needed")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    return Volume(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(), direction,
                  {"source": str(path)})


def write_image(volume: Volume, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write ``volume`` to ``path`` (format from the suffix), compressed unless ``compress`` is False (a file
    read back at once: compressing a whole CT takes seconds, writing it raw a tenth of one), in one atomic step.

    Boolean arrays are stored as uint8. The target is replaced only once the whole file is written.
    """
    path = Path(path)
    if not path.name.lower().endswith(WRITE_SUFFIXES):
        raise input_error(path, f"cannot be written: use one of {', '.join(WRITE_SUFFIXES)}")
    array = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    with atomic_path(path) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=compress)
    return path

