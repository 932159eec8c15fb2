"""A review case from a DICOMweb server: the CT series retrieved (WADO-RS) into a temporary folder, the newest
DICOM SEG of this project that references it (when the server holds one), and Save's SEG stored back (STOW-RS).

The connection, the requests and their one-line errors are the ``segment`` command's (``LiverResUNetLib.dicomweb``,
``app.dicomweb``); this module only decides what the review fetches and where it goes.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from LiverResUNetLib.app.dicomweb import named_after_url
from LiverResUNetLib.datasets.cases import safe_case_name
from LiverResUNetLib.dicomweb.connection import DicomwebLocation, connect, parse_location
from LiverResUNetLib.dicomweb.pacs import (
    RemoteSeg,
    ct_series,
    describe_series,
    retrieve_seg,
    retrieve_series,
    seg_series,
    segmented_series,
    store_seg,
)
from LiverResUNetLib.errors import InputError, input_error

CT_FOLDER_NAME = "ct"
SEG_FILE_NAME = "segmentation.dcm"


def is_project_seg(description: str) -> bool:
    """True for the series description of a SEG this project wrote (any model, or a review without one)."""
    from LiverResUNetLib.dicomseg.writer import SERIES_DESCRIPTION

    return description.startswith(SERIES_DESCRIPTION)


def newest_project_seg(segs: list[RemoteSeg], series_uid: str) -> RemoteSeg | None:
    """Of ``segs``, the newest of this project's that references the series ``series_uid`` (None for none)."""
    mine = [seg for seg in segs if series_uid in seg.referenced and is_project_seg(seg.description)]
    return max(mine, key=lambda seg: seg.created, default=None)


@dataclass
class RemoteSource:
    """Where a case came from on the server, and its files here: the CT series' folder and the SEG file (None when
    not fetched). The temporary folder lives as long as this object."""

    location: DicomwebLocation
    folder: Path
    seg: Path | None
    seg_uid: str | None
    temporary: tempfile.TemporaryDirectory[str]
    stored: str | None = None  # the content digest of the last SEG stored: Save then Accept stores it once

    @property
    def url(self) -> str:
        return self.location.url

    def named(self, error: InputError) -> InputError:
        """``error`` with the temporary folder's paths replaced by the series URL they came from."""
        return named_after_url(error, Path(self.temporary.name), self.url)

    def store(self, seg_path: Path, content: str) -> str:
        """Store (STOW-RS) the SEG file ``seg_path`` into the CT's study on its server, unless the SEG of the same
        ``content`` (a digest of its labels) was the last one stored; returns a note saying which.

        Raises:
            InputError: the server cannot be used or did not store it.
        """
        base, study = self.location.base, self.location.study_uid
        if content == self.stored:
            return f"already stored in study {study} on {base}"
        store_seg(connect(base), DicomwebLocation(base, study), seg_path)
        self.stored = content
        return f"stored in study {study} on {base}"


def fetch(url: str, with_seg: bool) -> RemoteSource:
    """Retrieve the CT series the DICOMweb series URL ``url`` names and, with ``with_seg``, the newest SEG of this
    project that references it (QIDO-RS, WADO-RS), into a temporary folder.

    Raises:
        InputError: naming the URL: not a series URL, unreachable server, refused credentials, no such series,
            not CT, a partial series.
    """
    location = parse_location(url)
    study_uid, series_uid = location.series()
    client = connect(location.base)
    series = describe_series(client, location)
    temporary = tempfile.TemporaryDirectory(prefix="liverresunet-review-")
    folder = Path(temporary.name) / CT_FOLDER_NAME
    try:
        retrieve_series(client, series, folder)
    except InputError as error:
        temporary.cleanup()
        raise named_after_url(error, Path(temporary.name), location.url) from error
    seg = newest_project_seg(seg_series(client, location.base, study_uid, is_project_seg), series_uid) \
        if with_seg else None
    if seg is None:
        return RemoteSource(location, folder, None, None, temporary)
    path = retrieve_seg(client, location.base, seg, Path(temporary.name) / SEG_FILE_NAME)
    return RemoteSource(location, folder, path, seg.series_uid, temporary)


def reviewable_series(url: str) -> list[tuple[str, str]]:
    """(case name, series URL) of every CT series on the DICOMweb server ``url`` (its base URL) that has a DICOM
    SEG of this project: a worklist's cases, in the server's order.

    Raises:
        InputError: a series URL instead of the base URL, a server that cannot be used, or none such series.
    """
    location = parse_location(url)
    if location.series_uid:
        raise input_error(url, "a worklist is a whole server: give its DICOMweb base URL (http(s)://HOST/dicom-web)")
    client = connect(location.base)
    reviewed_by_study: dict[str, set[str]] = {}
    found = []
    for series in ct_series(client, location.base):
        study = series.location.study_uid or ""
        if study not in reviewed_by_study:
            reviewed_by_study[study] = segmented_series(client, location.base, study, is_project_seg)
        if series.location.series_uid in reviewed_by_study[study]:
            found.append((safe_case_name(series.name), series.location.url))
    if not found:
        raise input_error(location.base, "the server holds no CT series with a DICOM SEG of this project")
    return found


def no_segmentation(source: RemoteSource) -> InputError:
    """The error of a series URL given without --segmentation or --model when the server holds no SEG of it."""
    return input_error(source.url, "the server holds no DICOM SEG of this project for this series: give "
                                   "--segmentation, or --model to segment it first")
