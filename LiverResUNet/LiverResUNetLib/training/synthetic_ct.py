"""Whole synthetic CTs generated from label maps without CT, after SynthSeg (Billot et al., Medical Image Analysis
2023): every structure of a label map is drawn with a mean HU sampled at random, per structure and per copy, from a
range typical of portal-venous abdominal CT, then textured, shaded by a smooth random field, blurred (partial
volume) and made noisy. A network trained on them learns the shapes of livers and tumors (and what lies around
them) that the few real CTs do not show, from intensities that vary more than any one scanner's.

What is assumed (no CT of these patients is available): the HU ranges below, from typical portal-venous values;
the liver's range is learnt from real training CTs when they are given (:func:`learnt_prior`); the tumors' contrast
to the liver is drawn as ``training/synthesis.py`` draws a pasted lesion's. Labels follow ``datasets/ircadb.py``:
liver = liver mask ∪ liver tumors, tumor = liver tumor masks (cysts, ``metastasectomie`` and adrenal tumors are not
liver tumors; they are drawn, labelled as what surrounds them).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.components import label_components
from LiverResUNetLib.datasets.cases import Case, CaseSource
from LiverResUNetLib.datasets.ircadb import LIVER_MASK, is_tumor_mask
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.training.config import SynthesisConfig
from LiverResUNetLib.training.synthesis import CONTRAST_HU, MASKS, label_maps, lesion_shift, mask_series, read_mask
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

AIR_HU = -1000.0
SKIN_MASK = "skin"
# Inside the body, where no structure is drawn: fat and lean soft tissue (muscle, bowel) in smooth random patches.
FAT_HU, LEAN_HU = (-120.0, -70.0), (10.0, 60.0)
# Every synthetic case's id starts with this (``synthetic.<patient>.<copy>``).
CASE_PREFIX = "synthetic."
# Portal-venous liver when no real CT says otherwise.
LIVER_HU = (70.0, 140.0)
# Later priorities paint over earlier ones where masks overlap (a vessel in the liver, a tumor over a vessel).
_ORGAN, _LIVER, _IN_LIVER, _VESSEL, _TUMOR, _BONE, _DENSE = range(1, 8)
# (folder name pattern, case-insensitive) -> (mean HU range, priority); the first pattern that matches wins.
TISSUES: tuple[tuple[str, tuple[float, float], int], ...] = (
    (r"(left|right)?lungs?", (-900.0, -750.0), _ORGAN),
    (r"stomach", (-20.0, 40.0), _ORGAN),
    (r"spleen", (100.0, 140.0), _ORGAN),
    (r"(left|right)?kidneys?", (140.0, 220.0), _ORGAN),
    (r"pancreas", (80.0, 120.0), _ORGAN),
    (r"gallbladder", (0.0, 25.0), _ORGAN),
    (r"(left|right)?surrenalgland", (40.0, 80.0), _ORGAN),
    (r"(left|right)?surretumor", (20.0, 60.0), _ORGAN),
    (r"liverkyste?|livercyst|biliarysystem", (-5.0, 20.0), _IN_LIVER),
    (r"metastasectomie", (10.0, 50.0), _IN_LIVER),
    (r"portalvein\d*", (140.0, 200.0), _VESSEL),
    (r"venacava|venoussystem|hepaticveins?", (120.0, 190.0), _VESSEL),
    (r"artery|aorta", (130.0, 210.0), _VESSEL),
    (r"bones?", (250.0, 600.0), _BONE),
    (r"stones?", (150.0, 600.0), _DENSE),
    (r"metal", (1500.0, 3000.0), _DENSE),
)
# Any other structure (heart, colon, ...) is soft tissue.
OTHER_HU = (0.0, 70.0)
# Organs that a label map does not hold (the heart, spleen, stomach, bowel of most of 3D-IRCADb-01's) as smooth blobs
# in the unlabelled body, two kinds a CT: one about as bright as its liver (HU added to the liver's: the heart's blood
# and the spleen are as bright or brighter in the portal phase), one anywhere in the soft-tissue range. Without them
# everything liver-bright in a synthetic CT is liver, and a network learns the liver by its HU alone.
LIVER_LIKE_HU, SOFT_TISSUE_HU = (-10.0, 40.0), (-10.0, 200.0)
DISTRACTOR_SHARE = (0.03, 0.12)
# Texture (HU, per structure), shading (HU), partial-volume blur (voxels: slices, rows and columns), noise (HU).
TEXTURE_HU = (2.0, 12.0)
BIAS_HU = (0.0, 25.0)
BLUR_SLICES, BLUR_PIXELS = (0.3, 0.8), (0.4, 1.0)
NOISE_HU = (6.0, 25.0)
_BIAS_CELL_MM, _BODY_CELL_MM, _TEXTURE_CELL_MM, _DISTRACTOR_CELL_MM = 80.0, 15.0, 2.0, 40.0
_BODY, _LIVER_TISSUE = 1, 2
HU_RANGE = (-1024.0, 3071.0)
# The liver's HU is learnt from this many real CTs at most (each is read once more).
PRIOR_CASES = 10


@dataclass(frozen=True)
class IntensityPrior:
    """The liver's mean HU range and the tumors' contrast to the liver (HU, either sign) that synthetic CTs draw
    from, and where they come from."""

    liver_hu: tuple[float, float] = LIVER_HU
    contrast_hu: tuple[float, float] = CONTRAST_HU
    source: str = "assumed (typical portal-venous CT)"

    def describe(self) -> str:
        return (f"liver mean {self.liver_hu[0]:.0f}..{self.liver_hu[1]:.0f} HU, tumor contrast "
                f"{self.contrast_hu[0]:.0f}..{self.contrast_hu[1]:.0f} HU to it, {self.source}")


def learnt_prior(cases: Iterable[Case]) -> IntensityPrior:
    """The prior of real CTs: the liver's mean drawn within [lowest median - IQR, highest median + IQR] of their
    liver voxels (IQR the widest of them), the tumor contrast range widened to hold each CT's (median tumor - median
    liver) when it falls outside ``CONTRAST_HU``. The default prior when no case has a liver."""
    livers, contrasts = [], []
    for case in cases:
        hu, labels = np.asarray(case.image.array), np.asarray(case.label.array)
        liver = hu[labels == LIVER]
        if liver.size == 0:
            continue
        low, median, high = np.percentile(liver, [25, 50, 75])
        livers.append((float(median), float(high - low)))
        if (labels == TUMOR).any():
            contrasts.append(abs(float(np.median(hu[labels == TUMOR])) - float(median)))
    if not livers:
        return IntensityPrior()
    medians, spread = [median for median, _ in livers], max(iqr for _, iqr in livers)
    contrast = (min([CONTRAST_HU[0], *contrasts]), max([CONTRAST_HU[1], *contrasts]))
    return IntensityPrior((min(medians) - spread, max(medians) + spread), contrast,
                          f"learnt from {len(livers)} real CT(s) (liver median {', '.join(f'{m:.0f}' for m in medians)}"
                          f" HU, IQR up to {spread:.0f} HU)")


def usable_label_maps(folder: str | Path) -> list[Path]:
    """The label maps under ``folder`` (``<patient>/MASKS_DICOM[.zip]``, see ``synthesis.label_maps``) that have a
    liver mask.

    Raises:
        InputError: naming ``folder`` when it does not exist or none of its label maps has a liver mask.
    """
    usable = [path for path in label_maps(Path(folder)) if _has_liver(path)]
    if not usable:
        raise input_error(folder, f"holds no usable label map (<patient>/{MASKS}[.zip] with a '{LIVER_MASK}' mask)")
    return usable


def synthetic_sources(maps: list[Path], copies: int, seed: int, prior: IntensityPrior,
                      cache: Path | None = None) -> list[CaseSource]:
    """``copies`` synthetic cases of each label map of ``maps``, named ``synthetic.<patient>.<copy>``; each is
    generated when first loaded (its seed follows from ``seed``, the patient and the copy), and, with a ``cache``
    folder, kept there (HU rounded to int16, as CT stores them: about 3 bytes a voxel) for the next loads."""
    sources = []
    for path in maps:
        patient = path.parent.name
        for copy in range(1, copies + 1):
            case_id = f"{CASE_PREFIX}{patient}.{copy}"
            rng_seed = (seed, copy, zlib.crc32(patient.encode()))
            sources.append(CaseSource(case_id, path, _Generator(path, case_id, rng_seed, prior, cache)))
    return sources


def is_synthetic(case_id: str) -> bool:
    """Whether ``case_id`` names a synthetic CT (or a tumor stage's box of one)."""
    return case_id.startswith(CASE_PREFIX)


def training_sources(settings: SynthesisConfig, seed: int, real: list[CaseSource], cache: Path,
                     learn: bool = True, progress: Progress | None = None) -> list[CaseSource]:
    """The synthetic cases a training run asks for (none without ``synthesis.label_maps``), their liver's HU learnt
    from the ``real`` training CTs (each read once more) when ``learn``: every one of them (every n-th of a cohort
    larger than ``PRIOR_CASES``), validation patients included (three numbers per CT: its liver's median HU and
    spread, its tumors' median). Each is generated once and kept in ``cache`` (for the tumor stage), which the caller
    removes after training.

    Raises:
        InputError: naming the folder when it holds no usable label map.
    """
    if settings.label_maps is None:
        return []
    maps = usable_label_maps(settings.label_maps)
    prior = IntensityPrior()
    if learn and real:
        chosen = real[::-(-len(real) // PRIOR_CASES)]
        if progress:
            progress(0.0, f"synthetic CTs: reading the liver's HU of {len(chosen)} real training CT(s)")
        prior = learnt_prior(source.load() for source in chosen)
    if progress:
        # A note (at 100 %, so that it stays on a terminal and is never left out of a log).
        progress(1.0, f"synthetic CTs: {settings.copies} per label map x {len(maps)} label maps in "
                      f"{settings.label_maps}, generated as their slices are prepared ({prior.describe()})")
    return synthetic_sources(maps, settings.copies, seed, prior, cache)


@dataclass(frozen=True)
class _Generator:
    """A synthetic case's reader: a picklable callable, so that a source travels to worker processes."""

    path: Path
    case_id: str
    seed: tuple[int, ...]
    prior: IntensityPrior
    cache: Path | None = None

    def __call__(self) -> Case:
        stored = None if self.cache is None else self.cache / f"{self.case_id}.npz"
        if stored is not None and stored.is_file():
            with np.load(stored) as arrays:
                hu, labels, spacing = arrays["hu"], arrays["labels"], tuple(arrays["spacing"])
        else:
            case = synthetic_case(self.path, self.case_id, np.random.default_rng(self.seed), self.prior)
            hu, labels, spacing = np.rint(case.image.array).astype(np.int16), case.label.array, case.image.spacing
            if stored is not None:
                with atomic_path(stored) as temporary, open(temporary, "wb") as file:
                    np.savez(file, hu=hu, labels=labels, spacing=np.asarray(spacing))
        volume = Volume(hu, spacing)
        return Case(self.case_id, volume, volume.with_array(labels, source=str(self.path)), str(self.path))


def _has_liver(path: Path) -> bool:
    with mask_series(path) as structures:
        return any(name.lower() == LIVER_MASK for name in structures)


def synthetic_case(path: Path, case_id: str, rng: np.random.Generator,
                   prior: IntensityPrior = IntensityPrior()) -> Case:
    """A synthetic CT (HU, float32) and its labels (0/1/2) on the grid of one patient's label map ``path`` (its
    pixel size and slice step, slices in file-number order, axial): outside the ``skin`` mask (the body outline)
    air, inside it fat and lean tissue, each structure with its own random mean HU and texture, the liver tumors
    with a contrast to the liver, a smooth random shading, partial-volume blur and noise.

    Raises:
        InputError: naming the label map when it has no liver mask, or a structure whose grid differs.
    """
    tissues, labels, means, spacing = _tissue_map(path, rng, prior)
    hu = means[tissues]
    texture = rng.uniform(*TEXTURE_HU, size=len(means)).astype(np.float32)
    texture[0] = 0.0
    # In place and slice by slice, one volume-sized temporary at a time: these CTs are 512 x 512 x 100-260 voxels.
    field = _smooth_field(tissues.shape, spacing, _TEXTURE_CELL_MM, rng)
    for index, tissue_slice in enumerate(tissues):
        field[index] *= texture[tissue_slice]
    hu += field
    del field  # before the body's background and its blobs: two more volumes
    field = body_background(tissues.shape, spacing, rng, float(means[_LIVER_TISSUE]))
    np.copyto(hu, field, where=tissues == _BODY)
    _draw_tumors(hu, labels, rng, prior)
    inside = tissues > 0
    del tissues
    amplitude = rng.uniform(*BIAS_HU)
    field = _smooth_field(hu.shape, spacing, _BIAS_CELL_MM, rng)
    field *= inside
    field *= amplitude
    hu += field
    del inside, field
    hu = ndimage.gaussian_filter(hu, (rng.uniform(*BLUR_SLICES), *(2 * [rng.uniform(*BLUR_PIXELS)])), output=np.float32)
    _add_noise(hu, rng)
    np.clip(hu, *HU_RANGE, out=hu)
    volume = Volume(hu, spacing)
    return Case(case_id, volume, volume.with_array(labels, source=str(path)), str(path))


def _tissue_map(path: Path, rng: np.random.Generator, prior: IntensityPrior
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    """``(tissues uint8, labels uint8, mean HU of each tissue float32, spacing)`` of a label map: tissue 0 is the
    air outside the skin, 1 the body, 2 the liver (its tumors too, whose contrast is added later), then one per
    other structure, painted by priority where masks overlap. One structure's mask is read at a time."""
    means = [AIR_HU, np.nan, rng.uniform(*prior.liver_hu)]
    tissues = priorities = labels = skin = None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    with mask_series(path) as structures:
        if not any(name.lower() == LIVER_MASK for name in structures):
            raise input_error(path, f"has no '{LIVER_MASK}' mask; found: {', '.join(structures) or 'nothing'}")
        for name, slices in structures.items():
            mask, mask_spacing = read_mask(slices, path / name)
            if tissues is None or priorities is None or labels is None:
                spacing = mask_spacing
                tissues = np.full(mask.shape, _BODY, dtype=np.uint8)
                priorities, labels = np.zeros(mask.shape, dtype=np.uint8), np.zeros(mask.shape, dtype=np.uint8)
            elif mask.shape != tissues.shape:
                raise input_error(path / name, f"{mask.shape[0]} slices of {mask.shape[1]}x{mask.shape[2]}, "
                                               f"not the {tissues.shape} of the label map's other structures")
            key = name.lower()
            if key == SKIN_MASK:
                skin = mask
                continue
            if key == LIVER_MASK:
                tissue, priority = _LIVER_TISSUE, _LIVER
                labels[mask & (labels == 0)] = LIVER
            elif is_tumor_mask(name):
                tissue, priority = _LIVER_TISSUE, _TUMOR
                labels[mask] = TUMOR
            else:
                hu_range, priority = _tissue(key)
                tissue = len(means)
                means.append(rng.uniform(*hu_range))
            painted = mask & (priorities <= priority)
            tissues[painted], priorities[painted] = tissue, priority
    if tissues is None or labels is None:
        raise input_error(path, "holds no mask series")
    if skin is not None:
        tissues[~skin & (tissues == _BODY)] = 0
    return tissues, labels, np.asarray(means, dtype=np.float32), spacing


def _tissue(name: str) -> tuple[tuple[float, float], int]:
    for pattern, hu_range, priority in TISSUES:
        if re.fullmatch(pattern, name, re.IGNORECASE):
            return hu_range, priority
    return OTHER_HU, _ORGAN


def _smooth_field(shape: tuple[int, ...], spacing: tuple[float, ...], cell_mm: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A float32 random field of ``shape`` ``[k, j, i]``, about unit spread, smooth over ``cell_mm``: Gaussian
    values on a grid of that pitch, interpolated linearly (torch's trilinear resize, exact in shape)."""
    import torch

    steps = [max(1, int(np.ceil(size * mm / cell_mm))) + 1 for size, mm in zip(shape, spacing[::-1])]
    coarse = torch.from_numpy(rng.standard_normal(steps).astype(np.float32))[None, None]
    field = torch.nn.functional.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=True)
    return field[0, 0].numpy()


def body_background(shape: tuple[int, ...], spacing: tuple[float, ...], rng: np.random.Generator,
                     liver_hu: float) -> np.ndarray:
    """HU of the body where no structure is drawn: fat and lean tissue in smooth patches (a random share of fat), and
    blobs of unlabelled organs, one kind about as bright as the liver (``liver_hu``), one of any soft tissue."""
    fat, lean = rng.uniform(*FAT_HU), rng.uniform(*LEAN_HU)
    threshold = rng.uniform(-0.6, 0.6)
    share = _smooth_field(shape, spacing, _BODY_CELL_MM, rng)
    share -= threshold
    share *= -4.0
    # share -> the weight of fat: a logistic step over the field's threshold, soft as the edges of fat are on CT.
    np.exp(share, out=share)
    share += 1.0
    np.reciprocal(share, out=share)
    share *= fat - lean
    share += lean
    blobs = _smooth_field(shape, spacing, _DISTRACTOR_CELL_MM, rng)
    shares = rng.uniform(*DISTRACTOR_SHARE, size=2)
    high, low = np.quantile(blobs[::4, ::8, ::8], [1.0 - shares[0], shares[1]])
    np.copyto(share, np.float32(liver_hu + rng.uniform(*LIVER_LIKE_HU)), where=blobs > high)
    np.copyto(share, np.float32(rng.uniform(*SOFT_TISSUE_HU)), where=blobs < low)
    return share


def _draw_tumors(hu: np.ndarray, labels: np.ndarray, rng: np.random.Generator, prior: IntensityPrior) -> None:
    """Add to each liver tumor (a connected component of label 2) its own contrast to the liver, texture and,
    sometimes, rim (``synthesis.lesion_shift``), blended over a soft edge, in place."""
    tumor = labels == TUMOR
    region = ndimage.find_objects(tumor.astype(np.uint8))
    if not region or region[0] is None:
        return
    components, count = label_components(tumor[region[0]])
    for number, box in enumerate(ndimage.find_objects(components, max_label=count), start=1):
        if box is None:
            continue
        inside = components[box] == number
        soft = ndimage.gaussian_filter(inside.astype(np.float32), sigma=0.7)
        where = tuple(slice(outer.start + inner.start, outer.start + inner.stop)
                      for outer, inner in zip(region[0], box))
        hu[where] += soft * lesion_shift(inside, rng, prior.contrast_hu)


def _add_noise(hu: np.ndarray, rng: np.random.Generator) -> None:
    """Gaussian noise of a random level, slightly correlated within each slice as CT noise is, in place, slice by
    slice (no second volume in memory)."""
    level, correlation = rng.uniform(*NOISE_HU), rng.uniform(0.4, 0.9)
    for index in range(len(hu)):
        noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape[1:]).astype(np.float32), correlation)
        hu[index] += noise * (level / max(float(noise.std()), 1e-6))
