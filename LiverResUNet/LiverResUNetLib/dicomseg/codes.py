"""What each segment means, in codes: the Slicer terminology of "Liver" and "Liver tumor", and the one rule
that tells a liver segment from a liver-tumor segment in a segmentation made anywhere (a SEG from a PACS
viewer, a .seg.nrrd from Slicer).
"""

import re
from dataclasses import dataclass
from typing import Optional

from LiverResUNetLib.volume import LIVER, TUMOR

LIVER_CODE = "10200004"
# Older SEG objects (dcmqi, early highdicom) use the SNOMED RT codes (scheme SRT) of the same concepts.
LIVER_CODES_ANY_SCHEME = {LIVER_CODE, "T-62000"}
NEOPLASM_CODES = {"108369006", "86049000", "14799000",  # neoplasm; primary; secondary (SCT)
                  "M-80000", "M-80003", "M-80006"}  # the same in SRT
# Names that mark a tumor segment made elsewhere (3D-IRCADb's "livertumor01", a user's "Lesion 2"...).
TUMOR_NAME = re.compile(r"tumou?r|lesion|metasta|neoplasm")


@dataclass(frozen=True)
class Code:
    """A coded concept: value, scheme and meaning (as DICOM's Code Sequence items hold them)."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class SegmentCodes:
    """The codes of one label's segment: category, type and (optionally) the anatomic region."""

    label: int
    name: str
    category: Code
    type: Code
    region: Optional[Code] = None


LIVER_REGION = Code(LIVER_CODE, "SCT", "Liver")
LIVER_CODES = SegmentCodes(LIVER, "Liver", Code("123037004", "SCT", "Anatomical Structure"), LIVER_REGION)
TUMOR_CODES = SegmentCodes(TUMOR, "Liver tumor", Code("49755003", "SCT", "Morphologically Altered Structure"),
                           Code("108369006", "SCT", "Neoplasm"), LIVER_REGION)
SEGMENT_CODES = (LIVER_CODES, TUMOR_CODES)


def segment_role(type_code: str, region_code: str | None, name: str | None) -> int | None:
    """LIVER, TUMOR or None for a segment described by its type code, anatomic region code and name.

    The terminology decides when it says liver or neoplasm (a neoplasm of another organ is not a liver
    tumor); otherwise the name does ("liver"; "livertumor01", "Lesion 2"...).
    """
    name = (name or "").strip().lower()
    if type_code in NEOPLASM_CODES:
        return TUMOR if region_code in ("", None) or region_code in LIVER_CODES_ANY_SCHEME else None
    if type_code in LIVER_CODES_ANY_SCHEME:
        return LIVER
    if TUMOR_NAME.search(name):
        return TUMOR
    return LIVER if name == "liver" else None
