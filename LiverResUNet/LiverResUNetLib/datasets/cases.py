"""One case = a CT Volume in HU and its 0/1/2 label Volume on the same grid, whatever dataset it came from.

Every dataset reader returns :class:`CaseSource` objects that load one case at a time, so a 20-patient dataset
is never held in memory at once; ``datasets.discovery`` finds which reader a folder needs.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from LiverResUNetLib.volume import Volume


@dataclass
class Case:
    """A CT (``image``, HU) with its reference ``label`` (uint8: 0 background, 1 liver, 2 tumor)."""

    case_id: str  # "3Dircadb1.17", "lits.12", "msd.liver_3"
    image: Volume
    label: Volume  # on the image's grid
    source: str  # where it was read from


@dataclass
class CaseSource:
    """A case found on disk but not read yet; :meth:`load` reads it.

    ``note`` warns about a case's provenance: LiTS volumes 28-47 are reported to be the 3D-IRCADb-01
    patients, so a model trained on 3D-IRCADb-01 must never be tested on them.
    """

    case_id: str
    source: Path
    reader: Callable[[], Case] = field(repr=False, compare=False)
    note: str = ""

    def load(self):
        return self.reader()


# DICOM folder names that say nothing about the patient: a case is named after the folder holding them
# (3D-IRCADb-01 keeps every patient's CT in <patient>/PATIENT_DICOM).
GENERIC_DICOM_FOLDERS = {"patient_dicom", "dicom"}


def safe_case_name(text: str) -> str:
    """``text`` reduced to the characters a case id (a folder or file name) may hold."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "case"


def dicom_folder_name(path: Path) -> str:
    """The name a DICOM folder's case goes by: the folder's, or the one above for PATIENT_DICOM or DICOM."""
    path = Path(path).resolve()
    if path.name.lower() in GENERIC_DICOM_FOLDERS and path.parent.name:
        return path.parent.name
    return path.name


def natural_order(path):
    """Sort key that puts numbered names in number order: 3Dircadb1.2 before 3Dircadb1.10, liver_2 before liver_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", Path(path).name)]
