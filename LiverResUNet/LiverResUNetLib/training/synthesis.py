"""Tumors for training from label maps without CT: real tumor shapes pasted into a training CT's liver.

Labelled CT is scarce, label maps less so (3D-IRCADb-01 gives the masks of patients whose CT one may not have).
Each liver tumor of those label maps (a 3D connected component of a tumor mask) is a real shape, size and outline.
Pasted into the liver of a training CT with a synthesised texture and a contrast drawn relative to that liver
(darker far more often than brighter, sometimes with a rim, as hypo- and hyperdense lesions and enhancing rims;
after Hu et al., CVPR 2023, "Label-free liver tumor segmentation"), it gives the tumor stage lesions of sizes and
places the few training patients do not show.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import typing
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from LiverResUNetLib.components import label_components
from LiverResUNetLib.datasets.cases import natural_order
from LiverResUNetLib.datasets.ircadb import is_tumor_mask
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.volume import LIVER, TUMOR

MASKS = "MASKS_DICOM"
# Lesions smaller than this are left out: a few voxels carry no shape.
MIN_SHAPE_MM3 = 20.0
# Contrast to the host liver (HU): hypodense lesions are drawn with this probability, hyperdense ones otherwise.
HYPODENSE_PROBABILITY = 0.8
CONTRAST_HU = (15.0, 70.0)
RIM_PROBABILITY = 0.3
TEXTURE_HU = (3.0, 15.0)
SCALE_RANGE = (0.7, 1.3)
# Lesion shapes without any label map (the label-free tumors of Hu et al.): deformed ellipsoids of these radii.
RANDOM_RADIUS_MM = (4.0, 50.0)
RANDOM_SHAPES = 60
_PLACEMENT_TRIES = 10


@dataclass(frozen=True)
class TumorShape:
    """One real lesion: a boolean mask ``[k, j, i]`` cut to its box, and its voxel size ``(di, dj, dk)`` in mm."""

    mask: np.ndarray
    spacing: tuple[float, ...]


def read_tumor_shapes(folder: Path) -> list[TumorShape]:
    """Every liver tumor of the label maps under ``folder`` (see :func:`label_maps`).

    Raises:
        InputError: naming ``folder`` when it holds no liver tumor.
    """
    shapes = []
    for path in label_maps(folder):
        with mask_series(path) as structures:
            for name, slices in structures.items():
                if is_tumor_mask(name):
                    shapes += _lesions(*read_mask(slices, path / name))
    if not shapes:
        raise input_error(folder, f"holds no liver tumor mask (<patient>/{MASKS}[.zip]/livertumor*/image_N)")
    return shapes


def random_tumor_shapes(count: int, rng: np.random.Generator) -> list[TumorShape]:
    """``count`` lesion shapes for a user without label maps: ellipsoids on a 1 mm grid, radii drawn log-uniformly
    in :data:`RANDOM_RADIUS_MM` (the other two axes 0.67-1 times the first), the surface made irregular by smooth
    noise, so that pasted lesions span the sizes and outlines of real ones, from a few mm to a large mass."""
    shapes = []
    for _ in range(count):
        radius = float(np.exp(rng.uniform(*np.log(RANDOM_RADIUS_MM))))
        radii = radius * np.array([1.0, *rng.uniform(0.67, 1.0, size=2)])[rng.permutation(3)]
        extent = np.ceil(radii * 1.3).astype(int)
        grid = np.mgrid[tuple(slice(-int(size), int(size) + 1) for size in extent)].astype(np.float32)
        distance = sum((axis / axis_radius) ** 2 for axis, axis_radius in zip(grid, radii))
        bumps = ndimage.gaussian_filter(rng.standard_normal(distance.shape).astype(np.float32), sigma=radius / 3)
        bumps *= 0.3 / max(float(bumps.std()), 1e-6)
        shapes.append(TumorShape(distance + bumps < 1.0, (1.0, 1.0, 1.0)))
    return shapes


def label_maps(folder: Path) -> list[Path]:
    """Each patient's label map under ``folder``: one sub-folder per patient holding ``MASKS_DICOM/`` or
    ``MASKS_DICOM.zip`` (3D-IRCADb-01's layout; the folder when there are both), in patient order.

    Raises:
        InputError: naming ``folder`` when it does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise input_error(folder, f"does not exist (a folder of label maps: <patient>/{MASKS}.zip)")
    found = []
    for patient in sorted((path for path in folder.iterdir() if path.is_dir()), key=natural_order):
        if (patient / MASKS).is_dir():
            found.append(patient / MASKS)
        elif (patient / f"{MASKS}.zip").is_file():
            found.append(patient / f"{MASKS}.zip")
    return found


@contextlib.contextmanager
def mask_series(path: Path) -> typing.Iterator[dict[str, list[typing.Callable[[], bytes]]]]:
    """The structures of one patient's MASKS_DICOM (folder or zip, read in place), a DICOM series of 0/255
    slices each: structure name -> the readers of its slice files, ordered by the number in their file name
    (these files may all have the same ImagePositionPatient; slice 0 is the caudal end)."""
    if path.is_dir():
        yield _series({item.relative_to(path.parent).as_posix(): item.read_bytes
                       for item in path.rglob("*") if item.is_file()})
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise input_error(path, f"cannot be read as a zip archive ({error})") from None
    with archive:
        yield _series({name: functools.partial(archive.read, name) for name in archive.namelist()
                       if not name.endswith("/")})


def _series(files: dict[str, typing.Callable[[], bytes]]) -> dict[str, list[typing.Callable[[], bytes]]]:
    """``files`` (archive path -> reader of its bytes) grouped by structure folder, each in file-number order."""
    structures: dict[str, list[tuple[int, str]]] = {}
    for name in files:
        parts = name.split("/")
        number = re.search(r"(\d+)$", parts[-1])
        if len(parts) >= 3 and number:
            structures.setdefault(parts[-2], []).append((int(number.group(1)), name))
    return {structure: [files[name] for _, name in sorted(slices)] for structure, slices in sorted(structures.items())}


def read_mask(slices: list[typing.Callable[[], bytes]], where: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """``(mask bool [k, j, i], spacing (di, dj, dk) mm)`` of one structure's slices (see :func:`mask_series`);
    the slice step from SpacingBetweenSlices, else SliceThickness.

    Raises:
        InputError: naming ``where`` when a slice is not a readable DICOM image or the slices differ in size.
    """
    import pydicom

    try:
        datasets = [pydicom.dcmread(io.BytesIO(read())) for read in slices]
        mask = np.stack([dataset.pixel_array > 0 for dataset in datasets])
    except (pydicom.errors.InvalidDicomError, AttributeError, ValueError) as error:
        raise input_error(where, f"not a series of DICOM mask slices of one size ({error})") from None
    first = datasets[0]
    step = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
    return mask, (float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), step)


def _lesions(mask: np.ndarray, spacing: tuple[float, ...]) -> list[TumorShape]:
    components, count = label_components(mask)
    voxel = float(np.prod(spacing))
    shapes = []
    for number, box in enumerate(ndimage.find_objects(components, max_label=count), start=1):
        lesion = components[box] == number
        if box is not None and lesion.sum() * voxel >= MIN_SHAPE_MM3:
            shapes.append(TumorShape(lesion, spacing))
    return shapes


def paste_tumors(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...],
                 shapes: list[TumorShape], count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Copies of a canonical CT (``hu``, ``labels``, voxel size ``spacing``) with ``count`` lesions drawn from
    ``shapes`` pasted into its liver (scaled at random, clipped to the liver), each with its own contrast to the
    liver around it, texture and, sometimes, rim. The pasted voxels are labelled tumor."""
    hu, labels = np.array(hu, dtype=np.float32), np.array(labels, dtype=np.uint8)
    liver = labels == LIVER
    if not liver.any() or not shapes:
        return hu, labels
    candidates = np.flatnonzero(liver)
    for _ in range(count):
        lesion = _scaled(shapes[int(rng.integers(len(shapes)))], spacing, rng)
        box = _placement(lesion, liver, candidates, rng)
        if box is None:
            continue
        inside = lesion & liver[box]
        soft = ndimage.gaussian_filter(inside.astype(np.float32), sigma=0.7) * liver[box]
        # The lesion keeps the liver's own noise: liver + contrast + texture, blended over a soft edge.
        hu[box] += soft * lesion_shift(inside, rng)
        labels[box][inside] = TUMOR
    return hu, labels


def lesion_shift(inside: np.ndarray, rng: np.random.Generator,
                 contrast_hu: tuple[float, float] = CONTRAST_HU) -> np.ndarray:
    """The HU a lesion adds to the liver it lies in (float32, the shape of its mask ``inside``): one contrast
    (darker with ``HYPODENSE_PROBABILITY``, else brighter, by ``contrast_hu``), a smooth texture and, sometimes, a
    one-voxel rim of the other contrast (an enhancing rim around a hypodense centre, or the reverse)."""
    sign = -1.0 if rng.random() < HYPODENSE_PROBABILITY else 1.0
    change = sign * rng.uniform(*contrast_hu)
    texture = ndimage.gaussian_filter(rng.standard_normal(inside.shape).astype(np.float32), sigma=1.5)
    texture *= rng.uniform(*TEXTURE_HU) / max(float(texture.std()), 1e-6)
    shift = change + texture
    interior = ndimage.binary_erosion(inside)
    if rng.random() < RIM_PROBABILITY and interior.sum() >= 0.5 * inside.sum():
        shift = shift + (inside & ~interior) * (-change * rng.uniform(0.8, 1.6))
    return shift.astype(np.float32)


def _scaled(shape: TumorShape, spacing: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """The shape's mask resampled to ``spacing`` (``[k, j, i]`` order) at a random size factor."""
    factor = rng.uniform(*SCALE_RANGE)
    zooms = [source * factor / target for source, target in zip(shape.spacing[::-1], spacing[::-1])]
    return ndimage.zoom(shape.mask.astype(np.float32), zooms, order=1) > 0.5


def _placement(lesion: np.ndarray, liver: np.ndarray, candidates: np.ndarray,
               rng: np.random.Generator) -> tuple[slice, ...] | None:
    """A box for ``lesion`` centred on a random liver voxel with most of the lesion in the liver (None if none)."""
    if not lesion.any():
        return None
    for _ in range(_PLACEMENT_TRIES):
        centre = np.unravel_index(candidates[int(rng.integers(len(candidates)))], liver.shape)
        start = [int(c) - size // 2 for c, size in zip(centre, lesion.shape)]
        if any(s < 0 or s + size > extent for s, size, extent in zip(start, lesion.shape, liver.shape)):
            continue
        box = tuple(slice(s, s + size) for s, size in zip(start, lesion.shape))
        if np.count_nonzero(lesion & liver[box]) >= 0.8 * np.count_nonzero(lesion):
            return box
    return None
