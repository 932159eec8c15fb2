"""What made a segmentation, as a DICOM SEG of it names it: an algorithm (its name, version, family and, for this
project's models, the model's identity), or no algorithm at all.

A SEG's segments say how they were made: AUTOMATIC (an algorithm alone), SEMIAUTOMATIC (an algorithm, then a
reader's corrections) or MANUAL (a reader; DICOM then names no algorithm). A reviewed segmentation keeps the
algorithm it came from: the model file given (its card), else the algorithm its input DICOM SEG names. A
segmentation that names none (a ``.seg.nrrd`` or label map carries no provenance) is the reader's: MANUAL, and
called "manual review", never given an algorithm it cannot be shown to come from.
"""

from dataclasses import dataclass
from typing import Any

from LiverResUNetLib import __version__
from LiverResUNetLib.dicomseg.codes import Code
from LiverResUNetLib.model.model_file import model_identity

ALGORITHM_NAME = "LiverResUNet"
MANUFACTURER = "LiverResUNet"
ARTIFICIAL_INTELLIGENCE = Code("123109", "DCM", "Artificial Intelligence")
AUTOMATIC, SEMIAUTOMATIC, MANUAL = "AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"
MANUAL_REVIEW = "manual review"


@dataclass(frozen=True)
class Provenance:
    """What made a segmentation: the algorithm as a SEG's Segmentation Algorithm Identification names it
    (``algorithm`` None: a reader alone), this project's model when known (``model_id``), and whether a reader
    already corrected the algorithm's result (``corrected``)."""

    algorithm: str | None
    version: str = ""
    family: Code = ARTIFICIAL_INTELLIGENCE
    model_id: str | None = None
    corrected: bool = False

    def algorithm_type(self, edited: bool) -> str:
        """The segments' algorithm type once saved, ``edited`` telling whether the reader changed them now."""
        if self.algorithm is None:
            return MANUAL
        return SEMIAUTOMATIC if edited or self.corrected else AUTOMATIC

    @property
    def label(self) -> str:
        """What the SEG's series description says made it: the model, the algorithm, or a manual review."""
        if self.model_id is not None:
            return f"model {self.model_id}"
        return f"algorithm {self.algorithm}" if self.algorithm is not None else MANUAL_REVIEW

    @property
    def device_serial_number(self) -> str:
        return self.model_id or self.algorithm or MANUAL_REVIEW


def of_card(card: dict[str, Any]) -> Provenance:
    """The provenance of a segmentation made by the model whose card is ``card``."""
    identity = model_identity(card)
    version = f"{(card.get('software') or {}).get('liverresunet', __version__)} model {identity}"
    return Provenance(ALGORITHM_NAME, version, ARTIFICIAL_INTELLIGENCE, identity)


MANUAL_PROVENANCE = Provenance(None)


def _first(dataset: Any, keyword: str) -> Any:
    sequence = dataset.get(keyword) if dataset is not None else None
    return sequence[0] if sequence else None


def of_seg(seg: Any) -> Provenance:
    """The provenance a DICOM SEG (a pydicom Dataset) records: the algorithm its first segment names, the model
    of a SEG this project wrote (its device serial number), whether it was already corrected; MANUAL when its
    segments name no algorithm."""
    segment = _first(seg, "SegmentSequence")
    identification = _first(segment, "SegmentationAlgorithmIdentificationSequence")
    kind = str(segment.get("SegmentAlgorithmType", "")) if segment is not None else ""
    name = str(identification.get("AlgorithmName", "") if identification is not None else "") or \
        (str(segment.get("SegmentAlgorithmName", "")) if segment is not None else "")
    if kind == MANUAL or not name:
        return MANUAL_PROVENANCE
    family = _first(identification, "AlgorithmFamilyCodeSequence")
    code = Code(str(family.get("CodeValue", "")), str(family.get("CodingSchemeDesignator", "")),
                str(family.get("CodeMeaning", ""))) if family is not None else ARTIFICIAL_INTELLIGENCE
    version = str(identification.get("AlgorithmVersion", "")) if identification is not None else ""
    model_id = None
    if seg.get("Manufacturer") == MANUFACTURER:  # this project's SEG: its device serial number is the model's id
        model_id = str(seg.get("DeviceSerialNumber", "")) or None
    return Provenance(name, version, code, model_id, corrected=kind == SEMIAUTOMATIC)
