"""A synthetic abdominal CT patient whose truth is known exactly: HU image, structure masks and label map.

No real dataset can be downloaded here, yet the readers, the training and the evaluation need patients.
Every structure is an analytic shape in millimetres (LPS), drawn from a seed onto a tissue map; the HU
image, the 3D-IRCADb-style masks and the label map are all read off that one map, so they always agree.
The patient number picks a scenario that mirrors the dataset's quirks: the varied tumor folder names,
tumor-free patients, an adrenal tumor and a cyst (not liver tumors), and patient 1.7's tumor mask
lying outside its liver mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from LiverResUNetLib.volume import LIVER, TUMOR, Volume

# Typical abdomen half-width (mm) that organ sizes below are given for; each patient is scaled to its own body.
REFERENCE_HALF_WIDTH_MM = 160.0
TUMOR_DIAMETER_MM = (3.0, 40.0)
ALONG_Z = 1e5  # half-length (mm) of shapes that run through every slice: spine, vessels, ribs
# Positions, sizes and modulation amplitudes, as tuples or numpy arrays.
Vector = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Scenario:
    """What a patient's MASKS_DICOM holds beyond the liver, after a 3D-IRCADb-01 patient it imitates."""

    tumor_folders: str  # "numbered" (livertumor01..), "unpadded" (livertumor1..), or one folder name for all
    traps: tuple[str, ...] = ()  # mask folders that are NOT liver tumors
    tumor_free: bool = False
    tumor_outside_liver_mask: bool = False  # patient 1.7: the liver mask excludes the tumors


SCENARIOS = (
    Scenario("numbered", traps=("liverkyst",)),  # 1.1, 1.8
    Scenario("livertumor", traps=("leftsurretumor",)),
    Scenario("livertumor", traps=("metastasectomie", "livercyst"), tumor_free=True),  # 1.14
    Scenario("tumor", tumor_outside_liver_mask=True),  # 1.7
    Scenario("unpadded", traps=("rightsurretumor",)),  # 1.17
    Scenario("livertumors", traps=("liverkyste",)),  # 1.19
    Scenario("livertumor", traps=("leftsurretumor",), tumor_free=True),  # 1.5
)


def scenario_for(number: int) -> Scenario:
    """The scenario of patient ``number`` (1-based): the cohort cycles through :data:`SCENARIOS`."""
    return SCENARIOS[(number - 1) % len(SCENARIOS)]


@dataclass
class Tumor:
    """A liver tumor as generated: its mask folder, centre (LPS mm), diameter, mean HU and kind."""

    folder: str
    centre_mm: tuple[float, ...]
    diameter_mm: float
    hu: float
    kind: str  # "hypodense" or "hyperdense"
    tissue: int = field(default=0, repr=False)  # its id in the tissue map it was painted on


@dataclass
class PhantomPatient:
    """One generated patient: ``ct`` (int16 HU), ``label`` (uint8 0/1/2) and ``masks`` (folder name -> bool)."""

    number: int
    seed: int
    ct: Volume
    label: Volume
    masks: dict[str, np.ndarray]
    tumors: list[Tumor]
    scenario: Scenario


@dataclass
class _Grid:
    """Voxel centres in mm (LPS, identity direction) and the index boxes that bound a shape."""

    shape: tuple[int, int, int]  # (k, j, i)
    spacing: tuple[float, float, float]  # (di, dj, dk)
    origin: tuple[float, float, float]  # (x, y, z) of voxel [0, 0, 0]

    def box(self, centre: Vector, half_size: Vector) -> tuple[slice, ...]:
        """Index slices ``(k, j, i)`` of the voxels within ``half_size`` mm (x, y, z) of ``centre``."""
        bounds = []
        for axis in (2, 1, 0):
            first = int(np.floor((centre[axis] - half_size[axis] - self.origin[axis]) / self.spacing[axis]))
            last = int(np.ceil((centre[axis] + half_size[axis] - self.origin[axis]) / self.spacing[axis]))
            size = self.shape[2 - axis]
            bounds.append(slice(min(max(first, 0), size), min(max(last + 1, 0), size)))
        return tuple(bounds)

    def coordinates(self, box: Sequence[slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, z (mm) of the voxel centres in ``box``, shaped to broadcast over it."""
        k, j, i = (np.arange(b.start, b.stop, dtype=np.float32) for b in box)
        return (self.origin[0] + i * self.spacing[0])[None, None, :], \
            (self.origin[1] + j * self.spacing[1])[None, :, None], \
            (self.origin[2] + k * self.spacing[2])[:, None, None]

    def whole(self) -> tuple[slice, ...]:
        return tuple(slice(0, n) for n in self.shape)

    def contains(self, centre: Vector, half_size: Vector) -> bool:
        """True when the box of ``half_size`` mm around ``centre`` lies inside the field of view."""
        return all(self.origin[axis] <= centre[axis] - half_size[axis]
                   and centre[axis] + half_size[axis] <= self.origin[axis] + (n - 1) * self.spacing[axis]
                   for axis, n in zip((0, 1, 2), self.shape[::-1]))


def _blob(grid: _Grid, box: Sequence[slice], centre: Vector, semi_axes: Vector, wobble: Vector = (0.0,) * 5,
          taper: float = 0.0) -> np.ndarray:
    """Mask over ``box`` of a smoothly deformed ellipsoid: an organ-like shape.

    Args:
        wobble: amplitudes of five low-order modulations of the surface radius (zeros give the ellipsoid).
        taper: how much the shape thins in y and z towards +x (the liver's left lobe is thin).
    """
    x, y, z = grid.coordinates(box)
    u = (x - centre[0]) / semi_axes[0]
    thinning = 1.0 - taper * np.clip((u + 1.0) / 2.0, 0.0, 1.0)
    v = (y - centre[1]) / semi_axes[1] / thinning
    w = (z - centre[2]) / semi_axes[2] / thinning
    radius = np.sqrt(u * u + v * v + w * w) + 1e-6
    du, dv, dw = u / radius, v / radius, w / radius
    surface = 1.0 + wobble[0] * du * dv + wobble[1] * dv * dw + wobble[2] * du * dw \
        + wobble[3] * (du * du - dv * dv) + wobble[4] * dw * dw * dw
    return radius <= surface


def _ellipse(grid: _Grid, box: Sequence[slice], centre: Vector, semi_axes: Vector) -> np.ndarray:
    """Mask over ``box`` of an elliptic cylinder along z (vessels, spine parts, ribs)."""
    x, y, _ = grid.coordinates(box)
    inside = ((x - centre[0]) / semi_axes[0]) ** 2 + ((y - centre[1]) / semi_axes[1]) ** 2 <= 1.0
    return np.broadcast_to(inside, tuple(b.stop - b.start for b in box))


class _TissueMap:
    """A uint8 map of tissue ids painted in anatomical order; a tissue may be told which tissues it can cover."""

    def __init__(self, grid: _Grid) -> None:
        self.grid = grid
        self.ids = np.zeros(grid.shape, dtype=np.uint8)
        self.hu = [-1000.0]  # id 0: air

    def new(self, hu: float) -> int:
        self.hu.append(float(hu))
        return len(self.hu) - 1

    def paint(self, tissue: int, box: Sequence[slice], mask: np.ndarray, over: Sequence[int] | None = None) -> None:
        """Set ``tissue`` where ``mask`` (over ``box``) is true and the current tissue is one of ``over``."""
        region = self.ids[tuple(box)]
        if over is not None:
            mask = mask & np.isin(region, over)
        region[mask] = tissue

    def paint_blob(self, tissue: int, centre: Vector, semi_axes: Vector, wobble: Vector = (0.0,) * 5,
                   taper: float = 0.0, over: Sequence[int] | None = None) -> None:
        reach = 1.0 + float(np.abs(wobble).sum())
        box = self.grid.box(centre, tuple(reach * a for a in semi_axes))
        self.paint(tissue, box, _blob(self.grid, box, centre, semi_axes, wobble, taper), over)

    def paint_cylinder(self, tissue: int, centre: Vector, semi_axes: Vector, over: Sequence[int] | None = None) -> None:
        """An elliptic cylinder through every slice, around the z-parallel axis through ``centre`` (x, y)."""
        axis = (centre[0], centre[1], 0.0)
        box = self.grid.box(axis, (*semi_axes, ALONG_Z))
        self.paint(tissue, box, _ellipse(self.grid, box, axis, semi_axes), over)

    def mask(self, tissues: Sequence[int]) -> np.ndarray:
        return np.isin(self.ids, tissues)

    def image(self) -> np.ndarray:
        return np.asarray(self.hu, dtype=np.float32)[self.ids]


def generate_patient(seed: int, size: int = 64, number: int = 1, slices: int | None = None,
                     slice_spacing: float | None = None) -> PhantomPatient:
    """Generate phantom patient ``number`` of the cohort drawn from ``seed``.

    Args:
        seed: cohort seed; the patient draws from ``(seed, number)``, so patients are independent.
        size: in-plane matrix (the real dataset is 512); the pixel size scales so the body fills the field.
        number: patient number (1-based); it also picks the :class:`Scenario`.
        slices: slice count; the default covers the abdomen (about 200-300 mm).
        slice_spacing: mm between slices; the default is drawn in 1-4 mm like 3D-IRCADb-01.

    Returns:
        A :class:`PhantomPatient`; its ``label`` is what a correct 3D-IRCADb-01 reader makes of its ``masks``.
    """
    rng = np.random.default_rng([seed, number])
    scenario = scenario_for(number)
    half_width = rng.uniform(135.0, 185.0)
    # The field of view is framed on the body, as a CT technologist does: 0.5-0.9 mm pixels at 512.
    pixel_at_512 = float(np.clip(2.0 * half_width / rng.uniform(0.8, 0.92) / 512, 0.5, 0.9))
    pixel = round(pixel_at_512 * 512 / size, 4)
    dz = round(float(slice_spacing or rng.uniform(1.0, 4.0)), 2)
    count = int(slices or round(rng.uniform(200.0, 300.0) / dz))
    scale = half_width / REFERENCE_HALF_WIDTH_MM
    liver_z = 0.0
    field_centre_z = liver_z + rng.uniform(-0.1, 0.1) * min(count * dz, 150.0 * scale)
    grid = _Grid((count, size, size), (pixel, pixel, dz), (0.0, 0.0, round(field_centre_z - (count - 1) * dz / 2, 2)))

    tissues = _TissueMap(grid)
    body = _Body(grid, rng, half_width, scale, liver_z)
    body.paint_wall_and_cavity(tissues)
    body.paint_thorax_and_bowel(tissues)
    body.paint_skeleton_and_vessels(tissues)
    organs = body.paint_organs(tissues, scenario)
    tumors = body.paint_lesions(tissues, scenario, organs)

    hu = ndimage.gaussian_filter(tissues.image(), sigma=(0.0, 0.6, 0.6), truncate=2.5)
    noise_rng = np.random.default_rng([seed, number, 1])  # its own stream: the same patient at any matrix size
    hu += noise_rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(noise_sd(noise_rng.uniform(10, 20), size))
    ct_array = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    masks = _structure_masks(tissues, organs, tumors, scenario)
    tumor_voxels = np.zeros(grid.shape, dtype=bool)
    for tumor in tumors:
        tumor_voxels |= masks[tumor.folder]
    label = np.zeros(grid.shape, dtype=np.uint8)
    label[masks["liver"] | tumor_voxels] = LIVER
    label[tumor_voxels] = TUMOR

    description = f"LiverResUNet phantom, seed {seed}, patient {number}"
    ct = Volume(ct_array, grid.spacing, grid.origin, np.eye(3), {"description": description})
    return PhantomPatient(number, seed, ct, ct.with_array(label, description=description), masks, tumors, scenario)


def noise_sd(sd_at_512: float, size: int) -> float:
    """Standard deviation (HU) of the image noise at matrix ``size`` for a CT with ``sd_at_512`` at 512.

    Quantum noise variance falls with the voxel's area: averaging 2 x 2 pixels of a 512 matrix, as a
    256-pixel phantom (or a real CT downsampled to the network's input) does, halves the standard deviation.
    """
    return sd_at_512 * size / 512


def _structure_masks(tissues: _TissueMap, organs: dict[str, Any], tumors: Sequence[Tumor], scenario: Scenario
                     ) -> dict[str, np.ndarray]:
    """The MASKS_DICOM folders: organs, one or several tumor folders, the traps; empty masks are left out."""
    liver_tissue = [organs["liver"], organs["liver vessel"], *organs["liver lesions"].values()]
    if not scenario.tumor_outside_liver_mask:
        liver_tissue += [tumor.tissue for tumor in tumors]
    masks = {"liver": tissues.mask(liver_tissue)}
    for name in ("spleen", "leftkidney", "rightkidney", "aorta"):
        masks[name] = tissues.mask([organs[name]])
    for tumor in tumors:
        masks[tumor.folder] = masks.get(tumor.folder, False) | (tissues.ids == tumor.tissue)
    for trap, tissue in {**organs["adrenal tumors"], **organs["liver lesions"]}.items():
        masks[trap] = tissues.ids == tissue
    return {name: mask for name, mask in masks.items() if name == "liver" or mask.any()}


class _Body:
    """One patient's body plan (positions and sizes in mm) and the painting of each group of tissues."""

    def __init__(self, grid: _Grid, rng: np.random.Generator, half_width: float, scale: float, liver_z: float
                 ) -> None:
        self.grid, self.rng, self.scale, self.liver_z = grid, rng, scale, liver_z
        extent = grid.shape[1] * grid.spacing[0]
        self.centre = (extent / 2.0, extent * rng.uniform(0.48, 0.53))
        self.half = (half_width, half_width * rng.uniform(0.68, 0.8))
        self.fat = rng.uniform(8.0, 30.0) * scale
        self.muscle = rng.uniform(8.0, 14.0) * scale
        self.cavity = (self.half[0] - self.fat - self.muscle, self.half[1] - self.fat - self.muscle)
        self.liver_top = liver_z + 80.0 * scale
        self.swell_phase = rng.uniform(0, 2 * np.pi)
        self.soft: list[int] = []  # tissues an organ may cover: visceral fat, bowel, gas, lung, heart
        self.lesions: list[int] = []

    def at(self, fx: float, fy: float, z: float) -> tuple[float, float, float]:
        """A point given as fractions of the body half-axes from its centre, at height ``z`` mm."""
        return (self.centre[0] + fx * self.half[0], self.centre[1] + fy * self.half[1], z)

    def _outline(self, tissues: _TissueMap, hu: float, inset: float, over: Sequence[int] | None = None) -> int:
        """The body outline moved ``inset`` mm inwards, swelling gently along z."""
        box = self.grid.whole()
        x, y, z = self.grid.coordinates(box)
        swell = 1.0 + 0.03 * np.sin(z / (60.0 * self.scale) + self.swell_phase)
        semi_x, semi_y = (self.half[0] - inset) * swell, (self.half[1] - inset) * swell
        tissue = tissues.new(hu)
        tissues.paint(tissue, box, ((x - self.centre[0]) / semi_x) ** 2 + ((y - self.centre[1]) / semi_y) ** 2 <= 1,
                      over)
        return tissue

    def paint_wall_and_cavity(self, tissues: _TissueMap) -> None:
        self._outline(tissues, self.rng.uniform(-110, -90), 0.0)
        muscle = self._outline(tissues, self.rng.uniform(40, 60), self.fat)
        self.visceral_fat = self._outline(tissues, self.rng.uniform(-100, -80), self.fat + self.muscle, over=[muscle])
        self.soft = [self.visceral_fat]

    def paint_thorax_and_bowel(self, tissues: _TissueMap) -> None:
        """Bowel loops and gas below the liver; lung bases above a domed diaphragm, with the heart between them."""
        grid, rng, s = self.grid, self.rng, self.scale
        bowel, gas = tissues.new(rng.uniform(20, 40)), tissues.new(rng.uniform(-900, -700))
        for _ in range(int(rng.integers(10, 18))):
            centre = self.at(rng.uniform(-0.5, 0.5), rng.uniform(-0.7, 0.2), self.liver_top - rng.uniform(60, 260) * s)
            tissues.paint_blob(gas if rng.random() < 0.25 else bowel, centre, tuple(rng.uniform(12, 30, 3) * s),
                               over=[self.visceral_fat])
        lung = tissues.new(rng.uniform(-870, -820))
        dome = self.liver_top + 5.0 * s
        first_slice = max(0, int(np.ceil((dome - 30.0 * s - grid.origin[2]) / grid.spacing[2])))
        box = (slice(min(first_slice, grid.shape[0]), grid.shape[0]), *grid.whole()[1:])
        x, y, z = grid.coordinates(box)
        radial = ((x - self.centre[0]) / self.cavity[0]) ** 2 + ((y - self.centre[1]) / self.cavity[1]) ** 2
        tissues.paint(lung, box, z >= dome - 30.0 * s * radial, over=[self.visceral_fat, bowel, gas])
        heart = tissues.new(rng.uniform(40, 60))
        heart_centre = self.at(0.15, -0.3, self.liver_top + 50.0 * s)
        tissues.paint_blob(heart, heart_centre, (55 * s, 45 * s, 50 * s), over=[lung])
        self.soft = [self.visceral_fat, bowel, gas, lung, heart]

    def paint_skeleton_and_vessels(self, tissues: _TissueMap) -> None:
        """Paraspinal muscles, vertebrae with discs, canal and spinous process, ribs, then aorta and vena cava."""
        grid, rng, s = self.grid, self.rng, self.scale
        cortical, cancellous = tissues.new(rng.uniform(700, 1000)), tissues.new(rng.uniform(250, 400))
        disc, canal, paraspinal = tissues.new(rng.uniform(70, 100)), tissues.new(rng.uniform(5, 20)), \
            tissues.new(rng.uniform(40, 60))
        radius = self.vertebra_radius = 18.0 * s
        vertebra = self.vertebra = self.at(0.0, 0.4, 0.0)
        canal_centre = (vertebra[0], vertebra[1] + radius + 8 * s, 0.0)
        for side in (-1, 1):
            tissues.paint_cylinder(paraspinal, (vertebra[0] + side * 33 * s, canal_centre[1] + 10 * s),
                                   (20 * s, 17 * s))
        box = grid.box(vertebra, (radius, radius, ALONG_Z))
        z = grid.coordinates(box)[2]
        is_disc = ((z - rng.uniform(0, 32.0 * s)) % (32.0 * s)) < 7.0 * s
        outer = _ellipse(grid, box, vertebra, (radius, radius * 0.85))
        tissues.paint(cortical, box, outer & ~is_disc)
        tissues.paint(cancellous, box, _ellipse(grid, box, vertebra, (radius - max(2.5 * s, grid.spacing[0]),) * 2)
                      & ~is_disc)
        tissues.paint(disc, box, outer & is_disc)
        tissues.paint_cylinder(cortical, canal_centre, (13 * s, 12 * s))
        tissues.paint_cylinder(canal, canal_centre, (7 * s, 6 * s))
        start, end = canal_centre[1] + 12 * s, self.centre[1] + self.half[1] - self.fat - 3 * s
        if end > start:
            tissues.paint_cylinder(cortical, (vertebra[0], (start + end) / 2), (4 * s, (end - start) / 2))
        self._paint_ribs(tissues, cortical)
        self.aorta = tissues.new(rng.uniform(150, 200))
        vena_cava = tissues.new(rng.uniform(110, 140))
        aorta_radius, cava_radius = rng.uniform(9, 13) * s, rng.uniform(9, 12) * s
        front = vertebra[1] - radius
        tissues.paint_cylinder(self.aorta, (vertebra[0] + 14 * s, front - aorta_radius - 2 * s), (aorta_radius,) * 2)
        tissues.paint_cylinder(vena_cava, (vertebra[0] - 20 * s, front - cava_radius - 4 * s), (cava_radius,) * 2)

    def _paint_ribs(self, tissues: _TissueMap, cortical: int) -> None:
        """Rib cross-sections in the wall of the upper abdomen, cut obliquely so they come and go along z."""
        grid, rng, s = self.grid, self.rng, self.scale
        period = rng.uniform(28, 36) * s
        fraction = 1.0 - (self.fat + 0.5 * self.muscle) / self.half[0]
        for degrees in np.arange(-165.0, 180.0, 22.5) + rng.uniform(-5, 5):
            if min(abs(degrees - 90), abs(degrees + 90)) < 30:  # no ribs at the sternum or the spine
                continue
            angle = np.deg2rad(degrees)
            centre = (self.centre[0] + fraction * self.half[0] * np.cos(angle),
                      self.centre[1] - fraction * self.half[1] * np.sin(angle), 0.0)
            box = grid.box(centre, (6 * s, 6 * s, ALONG_Z))
            z = grid.coordinates(box)[2]
            present = (np.sin(2 * np.pi * (z - angle * 10 * s) / period) > 0.2) & (z > self.liver_z - 50 * s)
            tissues.paint(cortical, box, _ellipse(grid, box, centre, (5 * s, 4 * s)) & present)

    def paint_organs(self, tissues: _TissueMap, scenario: Scenario) -> dict[str, Any]:
        """Adrenal tumors (traps outside the liver), the liver with its vessels, then spleen and kidneys.

        Fat around the great vessels (the retroperitoneum) keeps the liver and spleen off the aorta; only the
        kidneys and adrenals may lie in it.
        """
        grid, rng, s = self.grid, self.rng, self.scale
        organs: dict[str, Any] = {"aorta": self.aorta, "adrenal tumors": {}}
        retroperitoneum = tissues.new(tissues.hu[self.visceral_fat])
        tissues.paint_cylinder(retroperitoneum, (self.vertebra[0] + 10 * s, self.vertebra[1]),
                               (45 * s, self.vertebra_radius + 32 * s), over=self.soft)
        retroperitoneal = self.soft + [retroperitoneum]
        kidney_z = self.liver_z - rng.uniform(40, 60) * s
        for trap in (trap for trap in scenario.traps if trap.endswith("surretumor")):
            side = 1 if trap.startswith("left") else -1
            radius = max(rng.uniform(8, 17) * s, 1.5 * max(grid.spacing))
            organs["adrenal tumors"][trap] = tissue = tissues.new(rng.uniform(10, 40))
            tissues.paint_blob(tissue, self.at(side * 0.2, 0.4, self.liver_z - rng.uniform(0, 10) * s), (radius,) * 3,
                               over=retroperitoneal)
        organs["liver"] = liver = tissues.new(rng.uniform(55, 70))
        self.liver_centre = self.at(-rng.uniform(0.28, 0.38), rng.uniform(-0.1, 0.05), self.liver_z)
        self.liver_semi = (self.half[0] * rng.uniform(0.55, 0.68), self.half[1] * rng.uniform(0.55, 0.7),
                           rng.uniform(70.0, 90.0) * s)
        tissues.paint_blob(liver, self.liver_centre, self.liver_semi, wobble=rng.uniform(-0.15, 0.15, 5),
                           taper=rng.uniform(0.3, 0.5), over=self.soft)
        organs["liver vessel"] = self._paint_liver_vessels(tissues, liver)
        spleen_z = self.liver_z + rng.uniform(-10, 20) * s
        for name, fx, fy, z, semi in (("spleen", 0.55, 0.3, spleen_z, (28 * s, 45 * s, 50 * s)),
                                      ("leftkidney", 0.4, 0.42, kidney_z + 10 * s, (25 * s, 30 * s, 55 * s)),
                                      ("rightkidney", -0.4, 0.42, kidney_z - 10 * s, (25 * s, 30 * s, 55 * s))):
            centre = self.at(fx, fy, z)
            organs[name] = tissues.new(rng.uniform(40, 55) if name == "spleen" else rng.uniform(140, 180))
            tissues.paint_blob(organs[name], centre, semi, wobble=rng.uniform(-0.1, 0.1, 5),
                               over=self.soft if name == "spleen" else retroperitoneal)
            if name != "spleen":
                tissues.paint_blob(tissues.new(rng.uniform(20, 40)), centre, tuple(0.45 * a for a in semi),
                                   over=[organs[name]])
        return organs

    def _paint_liver_vessels(self, tissues: _TissueMap, liver: int) -> int:
        """Portal branches: bright tubes from the hilum that belong to the liver label, as in the real masks."""
        grid, rng, s = self.grid, self.rng, self.scale
        vessel = tissues.new(rng.uniform(140, 180))
        hilum = np.asarray(self.liver_centre) + np.asarray(self.liver_semi) * (0.35, 0.3, -0.2)
        for _ in range(int(rng.integers(3, 6))):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            length = rng.uniform(0.4, 0.8) * min(self.liver_semi)
            radius = max(rng.uniform(2.0, 5.0) * s, 0.6 * grid.spacing[0])
            box = grid.box(hilum + length * direction / 2, tuple(np.abs(length * direction) / 2 + radius))
            x, y, z = grid.coordinates(box)
            offset = (x - hilum[0], y - hilum[1], z - hilum[2])
            along = np.clip(sum(o * d for o, d in zip(offset, direction)) / length, 0.0, 1.0) * length
            distance2 = sum((o - along * d) ** 2 for o, d in zip(offset, direction))
            tissues.paint(vessel, box, distance2 <= radius * radius, over=[liver])
        return vessel

    def paint_lesions(self, tissues: _TissueMap, scenario: Scenario, organs: dict[str, Any]) -> list[Tumor]:
        """Cysts and resection sites (liver label), then the tumors: each wholly inside liver tissue."""
        rng = self.rng
        liver_tissue = [organs["liver"], organs["liver vessel"]]
        organs["liver lesions"] = {}
        for trap in (trap for trap in scenario.traps if not trap.endswith("surretumor")):
            is_cyst = "kyst" in trap or "cyst" in trap
            tissue = tissues.new(rng.uniform(0, 20) if is_cyst else rng.uniform(25, 45))
            if self._place_lesion(tissues, tissue, liver_tissue, rng.uniform(8, 25)):
                organs["liver lesions"][trap] = tissue
        tumors: list[Tumor] = []
        for _ in range(0 if scenario.tumor_free else int(rng.integers(1, 6))):
            kind = "hyperdense" if rng.random() < 0.3 else "hypodense"
            hu = rng.uniform(100, 140) if kind == "hyperdense" else rng.uniform(20, 45)
            tissue = tissues.new(hu)
            diameter = np.exp(rng.uniform(*np.log(TUMOR_DIAMETER_MM)))  # small tumors are the common ones
            placed = self._place_lesion(tissues, tissue, liver_tissue, diameter)
            if placed:
                index = len(tumors) + 1
                folder = {"numbered": f"livertumor{index:02d}", "unpadded": f"livertumor{index}"}.get(
                    scenario.tumor_folders, scenario.tumor_folders)
                tumors.append(Tumor(folder, *placed, hu, kind, tissue))
        return tumors

    def _place_lesion(self, tissues: _TissueMap, tissue: int, liver_tissue: Sequence[int], diameter: float,
                      attempts: int = 80) -> tuple[tuple[float, ...], float] | None:
        """Paint a round lesion wholly in liver tissue, inside the field of view, and apart from other lesions.

        Apart means more than a voxel diagonal away, so each lesion is its own 3D connected component.

        A lesion that finds no room shrinks attempt by attempt, but never below the 2 voxels it needs to hold a
        voxel centre. Returns ``(centre, longest diameter)`` in mm, or None when it found no room.
        """
        grid, rng = self.grid, self.rng
        for attempt in range(attempts):
            size = max(diameter * (1.0 - attempt / attempts), 2.0 * max(grid.spacing), TUMOR_DIAMETER_MM[0])
            if size > TUMOR_DIAMETER_MM[1]:
                return None
            centre = tuple(np.asarray(self.liver_centre) + rng.uniform(-0.7, 0.7, 3) * np.asarray(self.liver_semi))
            stretch = rng.uniform(0.9, 1.0, 3)
            semi = tuple(size / 2.0 * stretch / stretch.max())  # the longest diameter is ``size``
            margin = tuple(a + float(np.linalg.norm(grid.spacing)) for a in semi)
            if not grid.contains(centre, semi):
                continue
            box = grid.box(centre, margin)
            ball, clearance = _blob(grid, box, centre, semi), _blob(grid, box, centre, margin)
            region = tissues.ids[box]
            if ball.any() and np.isin(region[ball], liver_tissue).all() \
                    and not np.isin(region[clearance], self.lesions).any():
                tissues.paint(tissue, box, ball)
                self.lesions.append(tissue)
                return centre, float(size)
        return None
