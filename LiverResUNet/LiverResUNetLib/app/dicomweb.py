"""``segment`` from and to a PACS over DICOMweb: one series, or every CT series this model has not segmented yet.

``--input BASE/studies/<StudyUID>/series/<SeriesUID>`` retrieves that series (WADO-RS) into a temporary folder,
segments it exactly as a DICOM folder is segmented, and stores the DICOM SEG into the same study on ``--output
BASE`` (STOW-RS); any failure is one line and exit code 2, with nothing stored. ``--input BASE`` does the same
for every CT series on the server that has no SEG of this model yet (batch: a failed series is reported and
the others go on; the exit code is 1 when any failed).
"""

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from LiverResUNetLib.app.segment_cases import (
    Case,
    Outcome,
    Rows,
    Segmenter,
    exit_code,
    expand_inputs,
    report_failure,
    run_summary,
)
from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.dicomseg.highdicom_import import import_highdicom
from LiverResUNetLib.dicomweb.connection import DicomwebLocation, connect, is_dicomweb_url, parse_location
from LiverResUNetLib.dicomweb.pacs import (
    RemoteSeries,
    ct_series,
    describe_series,
    retrieve_series,
    segmented_series,
    store_seg,
)
from LiverResUNetLib.errors import InputError, input_error
from LiverResUNetLib.progress import ProgressReporter


def _locations(inputs: Sequence[str], output: str) -> tuple[DicomwebLocation, DicomwebLocation]:
    """(source, target) DicomwebLocations of the command's --input and --output, checked."""
    if len(inputs) != 1:
        raise input_error(inputs[0], "a DICOMweb --input is given alone (one series URL or the server's base URL)")
    if not is_dicomweb_url(output):
        raise input_error(output, "with a DICOMweb --input the SEG goes back to the PACS: --output is the "
                                  "DICOMweb base URL (http(s)://HOST/dicom-web)")
    source, target = parse_location(inputs[0]), parse_location(output)
    if target.series_uid:
        raise input_error(output, "--output is the DICOMweb base URL; the SEG is stored into the series' study")
    return source, target


def named_after_url(error: InputError, folder: Path, url: str) -> InputError:
    """The same InputError with the temporary folder's path replaced by the series URL it came from."""
    return InputError(str(error).replace(str(folder), url))


def segment_remote_series(client: Any, store_client: Any, series: RemoteSeries, target: DicomwebLocation,
                          segmenter: Segmenter, table_path: Path | None, progress: Progress) -> Rows:
    """Retrieve, segment and store one series; returns the results table's rows.

    Raises:
        InputError: naming the series URL (not CT, partial, unreadable...) or the server (unreachable, refused);
            nothing is stored then.
    """
    url = series.location.url
    with tempfile.TemporaryDirectory(prefix="liverresunet-dicomweb-") as temporary:
        folder, seg_path = Path(temporary) / "series", Path(temporary) / "seg.dcm"
        try:
            progress(0.0, "retrieving the series")
            retrieve_series(client, series, folder)
            [case] = expand_inputs([folder], series.location.series_uid)
            if case.error is not None:
                raise case.error
            rows = segmenter.segment_case(case, seg_path, table_path, progress)
        except InputError as error:
            raise named_after_url(error, folder, url) from error
        progress(1.0, "storing the SEG")
        store_seg(store_client, DicomwebLocation(target.base, series.location.study_uid), seg_path)
    return rows


def _table_path(table: Path | None, name: str, batch: bool) -> Path | None:
    if table is None:
        return None
    return Path(table) / f"{name}.csv" if batch else Path(table)


def run_dicomweb(inputs: Sequence[str], output: str, table: Path | None, segmenter: Segmenter) -> int:
    """The DICOMweb form of ``segment`` (see the module's docstring); returns the exit code."""
    from LiverResUNetLib.dicomseg.writer import seg_series_description

    source, target = _locations(inputs, output)
    import_highdicom()  # refused here, before any request, where highdicom cannot run (Slicer 5.10)
    client = connect(source.base)
    store_client = client if target.base == source.base else connect(target.base)
    if source.series_uid:
        series = describe_series(client, source)
        with ProgressReporter(f"{series.name}: ") as progress:
            rows = segment_remote_series(client, store_client, series, target, segmenter,
                                         _table_path(table, series.name, False), progress)
        print(run_summary([(Case(series.name, Path(series.name)), (rows, f"{target.base} (study "
                                                                      f"{series.location.study_uid})"))]))
        return 0
    description = seg_series_description(segmenter.model.card)
    done_by_study: dict[str, set[str]] = {}
    results: list[tuple[Case, Outcome]] = []
    listed = ct_series(client, source.base)
    for number, series in enumerate(listed, start=1):
        prefix = f"[{number}/{len(listed)}] {series.name}:"
        study = series.location.study_uid or ""
        case = Case(series.name, Path(series.name))
        try:
            if study not in done_by_study:
                done_by_study[study] = segmented_series(client, source.base, study,
                                                         lambda text: text == description)
            if series.location.series_uid in done_by_study[study]:
                print(f"{prefix} skipped: already segmented by this model", file=sys.stderr)
                continue
            with ProgressReporter(f"{prefix} ") as progress:
                rows = segment_remote_series(client, store_client, series, target, segmenter,
                                             _table_path(table, series.name, True), progress)
            results.append((case, (rows, f"{target.base} (study {study})")))
        except Exception as error:  # one series' failure must not stop the batch
            results.append((case, report_failure(prefix, error)))
    print(run_summary(results))
    return exit_code(results)
