"""Read a 3D-IRCADb-01 patient folder (zipped, unzipped or mixed) as a CT Volume and a 0/1/2 label Volume.

The dataset's quirks, each handled here (../shared/reference/3dircadb.md):
- PATIENT_DICOM and MASKS_DICOM come as zips, folders or both; the folder wins, a zip is read from a private
  temporary copy (:mod:`safe_zip`).
- Slice files have no extension and names that sort wrongly: slices are ordered by position (``read_series``),
  and each mask series is placed on the CT grid by position, not paired by file name.
- Tumor mask folders are named ``livertumor``, ``livertumor01``, ``livertumor1``, ``livertumors`` or ``tumor``;
  ``leftsurretumor``/``rightsurretumor`` (adrenal), ``liverkyst``/``livercyst`` and ``metastasectomie`` are not
  liver tumors, so a ``*tumor*`` glob would be wrong. Names are compared case-insensitively.
- A patient without a tumor mask is tumor-free. Patient 1.7's ``tumor`` mask lies outside its ``liver`` mask,
  so the liver label is liver ∪ tumors and the tumor label is the tumors.
"""

import contextlib
import functools
import re
from pathlib import Path

import numpy as np

from LiverResUNetLib.datasets.cases import Case, CaseSource, natural_order
from LiverResUNetLib.datasets.safe_zip import extracted
from LiverResUNetLib.errors import InputError, input_error
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

PATIENT_PART, MASKS_PART = "PATIENT_DICOM", "MASKS_DICOM"
LIVER_MASK = "liver"
TUMOR_MASK = re.compile(r"(livertumor(s|\d+)?|tumor)", re.IGNORECASE)
ROOT_FOLDER = "3Dircadb1"


def is_tumor_mask(name: str) -> bool:
    """True for a liver-tumor mask folder name; False for the liver, adrenal tumors, cysts and the rest."""
    return TUMOR_MASK.fullmatch(name) is not None


def _entries(folder: Path) -> dict[str, Path]:
    return {path.name.lower(): path for path in folder.iterdir()}


def is_ircadb_patient(folder: str | Path) -> bool:
    """True when ``folder`` holds a PATIENT_DICOM folder or PATIENT_DICOM.zip."""
    path = Path(folder)
    if not path.is_dir():
        return False
    entries = _entries(path)
    return (PATIENT_PART.lower() in entries and entries[PATIENT_PART.lower()].is_dir()) \
        or f"{PATIENT_PART.lower()}.zip" in entries


def _patient_folders(root: Path) -> list[Path]:
    return sorted((path for path in root.iterdir() if is_ircadb_patient(path)), key=natural_order)


def list_ircadb_patients(root: str | Path) -> list[Path]:
    """The patient folders of a 3D-IRCADb-01 root, in patient order (1.2 before 1.10).

    Raises:
        InputError: ``root`` holds no patient folder.
    """
    folder = Path(root)
    patients = _patient_folders(folder) if folder.is_dir() else []
    if not patients:
        raise input_error(folder, f"no 3D-IRCADb-01 patient folder (holding {PATIENT_PART} or {PATIENT_PART}.zip)")
    return patients


def ircadb_cases(path: str | Path) -> list[CaseSource]:
    """Case sources for a patient folder, a root, or the folder holding ``3Dircadb1/``; [] when none of these."""
    given = Path(path)
    folders = [given] if is_ircadb_patient(given) else []
    for root in (given, given / ROOT_FOLDER):
        if not folders and root.is_dir():
            folders = _patient_folders(root)
    return [CaseSource(folder.name, folder, functools.partial(read_ircadb_patient, folder)) for folder in folders]


class _PatientParts:
    """Finds PATIENT_DICOM / MASKS_DICOM as a folder or a zip; names zip contents by the zip in messages."""

    def __init__(self, folder: Path, stack: contextlib.ExitStack) -> None:
        self.folder, self.stack = folder, stack
        self.shown_as: dict[str, str] = {}  # temporary extraction folder -> how the user knows it

    def find(self, part: str) -> Path | None:
        """The folder holding ``part``'s contents, or None. An unzipped folder is preferred over the zip."""
        entries = _entries(self.folder)
        if part.lower() in entries and entries[part.lower()].is_dir():
            return entries[part.lower()]
        archive = entries.get(f"{part.lower()}.zip")
        if archive is None:
            return None
        temporary = self.stack.enter_context(extracted(archive))
        self.shown_as[str(temporary)] = f"{archive}:"
        inside = _entries(temporary)
        if part.lower() in inside and inside[part.lower()].is_dir():
            return inside[part.lower()]
        return temporary

    def user_error(self, error: InputError) -> InputError:
        """``error`` with temporary extraction paths replaced by the zip they came from."""
        message = str(error)
        for temporary, shown in self.shown_as.items():
            message = message.replace(temporary + "/", shown).replace(temporary, shown)
        return InputError(message)


def _mask_on_grid(mask: Volume, ct: Volume, where: str | Path) -> np.ndarray:
    """The mask series as booleans on the CT grid, its slices placed by position (any non-zero is inside).

    Raises:
        InputError: the mask's pixels or slices do not coincide with the CT's.
    """
    if mask.same_grid(ct):
        return mask.array != 0
    normal = ct.direction[:, 2]
    offset = np.subtract(mask.origin, ct.origin)
    position = float(offset @ normal) / ct.spacing[2]  # the CT slice index of the mask's first slice
    k0 = int(round(position))
    same_pixels = mask.shape[1:] == ct.shape[1:] and np.allclose(mask.spacing[:2], ct.spacing[:2], atol=1e-4) \
        and np.allclose(mask.direction, ct.direction, atol=1e-4)
    on_a_slice = abs(position - k0) <= 1e-3 and np.allclose(offset - k0 * ct.spacing[2] * normal, 0.0, atol=1e-3)
    same_step = mask.shape[0] == 1 or np.isclose(mask.spacing[2], ct.spacing[2], atol=1e-4)
    if not (same_pixels and on_a_slice and same_step and 0 <= k0 and k0 + mask.shape[0] <= ct.shape[0]):
        raise input_error(where, f"this mask series ({mask.shape[0]} slices of {mask.shape[1]}x{mask.shape[2]}, "
                                 f"pixel {mask.spacing[0]:g} mm, first slice at {np.round(mask.origin, 3).tolist()}) "
                                 f"does not lie on the CT grid ({ct.shape[0]} slices of {ct.shape[1]}x{ct.shape[2]}, "
                                 f"pixel {ct.spacing[0]:g} mm, first slice at {np.round(ct.origin, 3).tolist()})")
    placed = np.zeros(ct.shape, dtype=bool)
    placed[k0:k0 + mask.shape[0]] = mask.array != 0
    return placed


def read_ircadb_patient(folder: str | Path) -> Case:
    """Read one 3D-IRCADb-01 patient folder as a :class:`Case` (CT in HU, label 0/1/2 on the CT grid).

    Raises:
        InputError: naming the folder (or zip) and the reason: no PATIENT_DICOM, no MASKS_DICOM, no liver mask,
            a mask off the CT grid, an unsafe or damaged zip, or any DICOM refusal of ``read_series``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise input_error(folder, "is not a folder")
    with contextlib.ExitStack() as stack:
        parts = _PatientParts(folder, stack)
        try:
            patient_dicom = parts.find(PATIENT_PART)
            if patient_dicom is None:
                raise input_error(folder, f"no {PATIENT_PART} folder or {PATIENT_PART}.zip: "
                                          "not a 3D-IRCADb-01 patient folder")
            masks_dicom = parts.find(MASKS_PART)
            if masks_dicom is None:
                raise input_error(folder, f"no {MASKS_PART} folder or {MASKS_PART}.zip: "
                                          "the reference masks are missing")
            structures = {path.name.lower(): path for path in masks_dicom.iterdir() if path.is_dir()}
            if LIVER_MASK not in structures:
                raise input_error(masks_dicom, f"no '{LIVER_MASK}' mask folder; found: "
                                               f"{', '.join(sorted(structures)) or 'nothing'}")
            ct = read_series(patient_dicom, modality="CT")
            liver = _mask_on_grid(read_series(structures[LIVER_MASK], modality=None), ct, structures[LIVER_MASK])
            tumor_masks = sorted(name for name in structures if is_tumor_mask(name))
            tumors = np.zeros(ct.shape, dtype=bool)
            for name in tumor_masks:
                tumors |= _mask_on_grid(read_series(structures[name], modality=None), ct, structures[name])
        except InputError as error:
            raise parts.user_error(error) from error
    label = np.zeros(ct.shape, dtype=np.uint8)
    label[liver | tumors] = LIVER
    label[tumors] = TUMOR
    return Case(folder.name, ct, ct.with_array(label, source=str(folder), tumor_masks=tumor_masks), str(folder))
