"""Tumors for training from label maps without CT: real tumor shapes pasted into a training CT's liver.

Labelled CT is scarce, label maps less so (3D-IRCADb-01 gives the masks of patients whose CT one may not have).
Each liver tumor of those label maps (a 3D connected component of a tumor mask) is a real shape, size and outline.
Pasted into the liver of a training CT with a synthesised texture and a contrast drawn relative to that liver
(darker far more often than brighter, sometimes with a rim, as hypo- and hyperdense lesions and enhancing rims;
after Hu et al., CVPR 2023, "Label-free liver tumor segmentation"), it gives the tumor stage lesions of sizes and
places the few training patients do not show.
"""

from __future__ import annotations

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
_PLACEMENT_TRIES = 10


@dataclass(frozen=True)
class TumorShape:
    """One real lesion: a boolean mask ``[k, j, i]`` cut to its box, and its voxel size ``(di, dj, dk)`` in mm."""

    mask: np.ndarray
    spacing: tuple[float, ...]


def read_tumor_shapes(folder: Path) -> list[TumorShape]:
    """Every liver tumor of the label maps under ``folder``: one sub-folder per patient holding ``MASKS_DICOM.zip``
    or ``MASKS_DICOM/`` (3D-IRCADb-01's layout), a DICOM series of 0/255 slices per structure. Slices are ordered
    by the number in their file name (these files may all have the same ImagePositionPatient).

    Raises:
        InputError: naming ``folder`` when it holds no liver tumor.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise input_error(folder, "does not exist (a folder of label maps: <patient>/MASKS_DICOM.zip)")
    shapes = []
    for archive in sorted(folder.glob(f"*/{MASKS}.zip")) + sorted(folder.glob(f"*/{MASKS}/")):
        for series, spacing in _tumor_series(archive):
            shapes += _lesions(series, spacing)
    if not shapes:
        raise input_error(folder, f"holds no liver tumor mask (<patient>/{MASKS}[.zip]/livertumor*/image_N)")
    return shapes


def _tumor_series(path: Path) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """Each tumor mask series of one patient's MASKS_DICOM (zip or folder), as ``(mask [k, j, i], spacing)``."""
    if path.is_dir():
        return _stacked({item.relative_to(path.parent).as_posix(): item.read_bytes
                         for item in path.rglob("*") if item.is_file()})
    with zipfile.ZipFile(path) as archive:
        return _stacked({name: functools.partial(archive.read, name) for name in archive.namelist()
                         if not name.endswith("/")})


def _stacked(files: dict[str, typing.Callable[[], bytes]]) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """The tumor series among ``files`` (archive path -> reader of its bytes), each ordered by file number."""
    import pydicom

    structures: dict[str, list[tuple[int, str]]] = {}
    for name in files:
        parts = name.split("/")
        number = re.search(r"(\d+)$", parts[-1])
        if len(parts) >= 3 and is_tumor_mask(parts[-2]) and number:
            structures.setdefault(parts[-2], []).append((int(number.group(1)), name))
    series = []
    for slices in structures.values():
        datasets = [pydicom.dcmread(io.BytesIO(files[name]())) for _, name in sorted(slices)]
        mask = np.stack([dataset.pixel_array > 0 for dataset in datasets])
        first = datasets[0]
        step = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
        series.append((mask, (float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), step)))
    return series


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
        sign = -1.0 if rng.random() < HYPODENSE_PROBABILITY else 1.0
        change = sign * rng.uniform(*CONTRAST_HU)
        texture = ndimage.gaussian_filter(rng.standard_normal(inside.shape).astype(np.float32), sigma=1.5)
        texture *= rng.uniform(*TEXTURE_HU) / max(float(texture.std()), 1e-6)
        shift = change + texture
        interior = ndimage.binary_erosion(inside)
        if rng.random() < RIM_PROBABILITY and interior.sum() >= 0.5 * inside.sum():
            # A one-voxel rim of the other contrast (an enhancing rim around a hypodense centre, or the reverse).
            shift = shift + (inside & ~interior) * (-change * rng.uniform(0.8, 1.6))
        # The lesion keeps the liver's own noise: liver + contrast + texture, blended over a soft edge.
        hu[box] += soft * shift
        labels[box][inside] = TUMOR
    return hu, labels


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
