"""What ``segment`` and ``review`` ask a PACS over DICOMweb: the CT series, a series' files, the SEGs, storing a SEG.

QIDO-RS finds series (and the SEG series this model already made, by their description and the series they
reference), WADO-RS retrieves a series into a folder for the file readers, STOW-RS stores one SEG instance:
the only thing ever written to the server, in one request, after everything else has succeeded.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from LiverResUNetLib.dicomweb.connection import DicomwebLocation, request
from LiverResUNetLib.errors import input_error

if typing.TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

# DICOM JSON tags (PS3.18 F.2) read from QIDO-RS and metadata answers.
STUDY_UID, SERIES_UID, MODALITY = "0020000D", "0020000E", "00080060"
SERIES_DESCRIPTION, PATIENT_ID = "0008103E", "00100020"
SERIES_NUMBER, INSTANCE_COUNT = "00200011", "00201209"
REFERENCED_SERIES = "00081115"
CONTENT_DATE, CONTENT_TIME = "00080023", "00080033"
FAILED_SOP_SEQUENCE = "FailedSOPSequence"


def _value(attributes: dict[str, Any], tag: str, default: Any = "") -> Any:
    values = (attributes.get(tag) or {}).get("Value") or []
    return values[0] if values else default


@dataclass(frozen=True)
class RemoteSeries:
    """One series on a DICOMweb server, as QIDO-RS describes it."""

    location: DicomwebLocation
    modality: str
    description: str
    patient_id: str
    series_number: str
    instance_count: int | None

    @classmethod
    def from_qido(cls, base: str, attributes: dict[str, Any]) -> RemoteSeries:
        count = _value(attributes, INSTANCE_COUNT, None)
        return cls(DicomwebLocation(base, str(_value(attributes, STUDY_UID)), str(_value(attributes, SERIES_UID))),
                   str(_value(attributes, MODALITY)), str(_value(attributes, SERIES_DESCRIPTION)),
                   str(_value(attributes, PATIENT_ID)), str(_value(attributes, SERIES_NUMBER)),
                   None if count is None else int(count))

    @property
    def name(self) -> str:
        """A case name: patient, series number and the end of the series UID."""
        parts = (self.patient_id, self.series_number, (self.location.series_uid or "")[-8:])
        return "_".join(part for part in parts if part)


def describe_series(client: DICOMwebClient, location: DicomwebLocation) -> RemoteSeries:
    """The series ``location`` names, from QIDO-RS.

    Raises:
        InputError: the server cannot be used (see ``connection.request``) or has no such series.
    """
    found = request(location.url, "look up the series", lambda: client.search_for_series(
        location.study_uid, search_filters={"SeriesInstanceUID": location.series_uid}))
    if not found:
        raise input_error(location.url, "no such series on the server")
    return RemoteSeries.from_qido(location.base, found[0])


def ct_series(client: DICOMwebClient, base: str) -> list[RemoteSeries]:
    """Every CT series on the server (QIDO-RS, every page)."""
    found = request(base, "list the CT series", lambda: client.search_for_series(
        search_filters={"Modality": "CT"}, get_remaining=True))
    return [RemoteSeries.from_qido(base, attributes) for attributes in found]


@dataclass(frozen=True)
class RemoteSeg:
    """One SEG series on a DICOMweb server: its description, the series it references and when it was made."""

    study_uid: str
    series_uid: str
    description: str
    referenced: frozenset[str]
    created: str  # ContentDate + ContentTime (YYYYMMDDHHMMSS.FFFFFF): sorts oldest first


def seg_series(client: DICOMwebClient, base: str, study_uid: str, described: Callable[[str], bool]
               ) -> list[RemoteSeg]:
    """The SEG series of a study whose series description ``described`` accepts (e.g. this model's), with the
    series their instances reference (metadata of each, WADO-RS)."""
    found = request(base, f"list the SEG series of study {study_uid}", lambda: client.search_for_series(
        study_uid, search_filters={"Modality": "SEG"}, get_remaining=True))
    segs = []
    for attributes in found:
        description = str(_value(attributes, SERIES_DESCRIPTION))
        if not described(description):
            continue
        seg_uid = str(_value(attributes, SERIES_UID))
        instances = request(base, f"read the SEG series {seg_uid}",
                            lambda: client.retrieve_series_metadata(study_uid, seg_uid))
        referenced = {str(_value(item, SERIES_UID)) for instance in instances
                      for item in (instance.get(REFERENCED_SERIES) or {}).get("Value") or []}
        created = max((f"{_value(instance, CONTENT_DATE)}{_value(instance, CONTENT_TIME)}" for instance in instances),
                      default="")
        segs.append(RemoteSeg(study_uid, seg_uid, description, frozenset(referenced), created))
    return segs


def segmented_series(client: DICOMwebClient, base: str, study_uid: str, described: Callable[[str], bool]
                     ) -> set[str]:
    """The series of a study that already have a SEG whose series description ``described`` accepts (e.g. the one
    that names this model)."""
    return {uid for seg in seg_series(client, base, study_uid, described) for uid in seg.referenced}


def retrieve_seg(client: DICOMwebClient, base: str, seg: RemoteSeg, path: Path) -> Path:
    """Retrieve (WADO-RS) the one instance of the SEG series ``seg`` into the file ``path``.

    Raises:
        InputError: the server cannot be used or the series does not hold exactly one instance.
    """
    from LiverResUNetLib.io.pydicom_versions import save_dicom_file

    url = DicomwebLocation(base, seg.study_uid, seg.series_uid).url
    datasets = request(url, "retrieve the SEG", lambda: client.retrieve_series(seg.study_uid, seg.series_uid))
    if len(datasets) != 1:
        raise input_error(url, f"a SEG series of one instance was expected, the server returned {len(datasets)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_dicom_file(datasets[0], path)
    return path


def retrieve_series(client: DICOMwebClient, series: RemoteSeries, folder: Path) -> list[Path]:
    """Retrieve (WADO-RS) every instance of ``series`` into ``folder``, one file each.

    Raises:
        InputError: the series is not CT, the server cannot be used, or it returns fewer instances than it
            says the series holds (a partial series).
    """
    from LiverResUNetLib.io.pydicom_versions import save_dicom_file

    location = series.location
    if series.modality.upper() != "CT":
        raise input_error(location.url, f"the series is {series.modality or 'of unknown modality'}, not CT")
    study_uid, series_uid = location.series()
    datasets = request(location.url, "retrieve the series", lambda: client.retrieve_series(study_uid, series_uid))
    if series.instance_count is not None and len(datasets) < series.instance_count:
        raise input_error(location.url, f"partial series: the server returned {len(datasets)} of the "
                                        f"{series.instance_count} instances it lists")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, dataset in enumerate(datasets, start=1):
        path = folder / f"{number:05d}.dcm"
        save_dicom_file(dataset, path)
        paths.append(path)
    return paths


def store_seg(client: DICOMwebClient, location: DicomwebLocation, seg_path: Path) -> None:
    """Store (STOW-RS) the SEG file into the study of ``location``; one request, one instance.

    Raises:
        InputError: the server cannot be used or reports that it did not store the instance.
    """
    import pydicom

    seg = pydicom.dcmread(seg_path)
    answer = request(location.base, f"store the SEG in study {location.study_uid}", lambda: client.store_instances(
        [seg], study_instance_uid=location.study_uid))
    failed = answer.get(FAILED_SOP_SEQUENCE) if answer is not None else None
    if failed:
        reason = failed[0].get("FailureReason", "unknown")
        raise input_error(location.base, f"the server did not store the SEG (failure reason {reason})")
