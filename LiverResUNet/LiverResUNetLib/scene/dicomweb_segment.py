"""``segment`` from and to a PACS over DICOMweb: one series, or every CT series this model has not segmented yet.

``--input BASE/studies/<StudyUID>/series/<SeriesUID>`` retrieves that series (WADO-RS) into a temporary folder,
segments it exactly as a DICOM folder is segmented, and stores the DICOM SEG into the same study on ``--output
BASE`` (STOW-RS); any failure is one line and exit code 2, with nothing stored. ``--input BASE`` does the same
for every CT series on the server that has no SEG of this model yet (batch: a failed series is reported and
the others go on; the exit code is 1 when any failed).
"""

import sys
import tempfile
from pathlib import Path

from LiverResUNetLib.dicomweb.connection import DicomwebLocation, connect, is_dicomweb_url, parse_location
from LiverResUNetLib.dicomweb.pacs import ct_series, describe_series, retrieve_series, segmented_series, store_seg
from LiverResUNetLib.errors import InputError, input_error


def _locations(args):
    """(source, target) DicomwebLocations of the command's --input and --output, checked."""
    if len(args.input) != 1:
        raise input_error(args.input[0], "a DICOMweb --input is given alone (one series URL or the server's base URL)")
    if not is_dicomweb_url(args.output):
        raise input_error(args.output, "with a DICOMweb --input the SEG goes back to the PACS: --output is the "
                                       "DICOMweb base URL (http(s)://HOST/dicom-web)")
    source, target = parse_location(args.input[0]), parse_location(args.output)
    if target.series_uid:
        raise input_error(args.output, "--output is the DICOMweb base URL; the SEG is stored into the series' study")
    return source, target


def _named_after_url(error, folder, url):
    """The same InputError with the temporary folder's path replaced by the series URL it came from."""
    return InputError(str(error).replace(str(folder), url))


def segment_remote_series(client, store_client, series, target, model, table_path, args, postprocess, progress):
    """Retrieve, segment and store one series; returns the results table's rows.

    Raises:
        InputError: naming the series URL (not CT, partial, unreadable...) or the server (unreachable, refused);
            nothing is stored then.
    """
    from LiverResUNetLib.scene.segment_command import expand_inputs, segment_case

    url = series.location.url
    with tempfile.TemporaryDirectory(prefix="liverresunet-dicomweb-") as temporary:
        folder, seg_path = Path(temporary) / "series", Path(temporary) / "seg.dcm"
        try:
            progress(0.0, "retrieving the series")
            retrieve_series(client, series, folder)
            [case] = expand_inputs([folder], series.location.series_uid)
            if case.error is not None:
                raise case.error
            rows = segment_case(case, model, seg_path, table_path, args, postprocess, progress)
        except InputError as error:
            raise _named_after_url(error, folder, url) from error
        progress(1.0, "storing the SEG")
        store_seg(store_client, DicomwebLocation(target.base, series.location.study_uid), seg_path)
    return rows


def _table_path(table, name, batch):
    if table is None:
        return None
    return Path(table) / f"{name}.csv" if batch else Path(table)


def run_dicomweb(args, model, postprocess) -> int:
    """The DICOMweb form of ``segment`` (see the module's docstring); returns the exit code."""
    from LiverResUNetLib.dicomseg.highdicom_import import import_highdicom
    from LiverResUNetLib.dicomseg.writer import seg_series_description
    from LiverResUNetLib.scene.segment_command import Case, ProgressPrinter, run_summary

    source, target = _locations(args)
    import_highdicom()  # refused here, before any request, where highdicom cannot run (Slicer 5.10)
    client = connect(source.base)
    store_client = client if target.base == source.base else connect(target.base)
    if source.series_uid:
        series = describe_series(client, source)
        rows = segment_remote_series(client, store_client, series, target, model,
                                     _table_path(args.table, series.name, False), args, postprocess,
                                     ProgressPrinter(f"{series.name}:"))
        print(run_summary([(Case(series.name, Path(series.name)), (rows, f"{target.base} (study "
                                                                      f"{series.location.study_uid})"))]))
        return 0
    description = seg_series_description(model.card)
    done_by_study: dict[str, set[str]] = {}
    results: list[tuple] = []
    listed = ct_series(client, source.base)
    for number, series in enumerate(listed, start=1):
        prefix = f"[{number}/{len(listed)}] {series.name}:"
        study = series.location.study_uid or ""
        case = Case(series.name, Path(series.name))
        try:
            if study not in done_by_study:
                done_by_study[study] = segmented_series(client, source.base, study, description)
            if series.location.series_uid in done_by_study[study]:
                print(f"{prefix} skipped: already segmented by this model", file=sys.stderr)
                continue
            rows = segment_remote_series(client, store_client, series, target, model,
                                         _table_path(args.table, series.name, True), args, postprocess,
                                         ProgressPrinter(prefix))
            results.append((case, (rows, f"{target.base} (study {study})")))
        except Exception as error:  # one series' failure must not stop the batch
            message = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
            results.append((case, message))
            print(f"{prefix} FAILED {message}", file=sys.stderr)
    print(run_summary(results))
    return 1 if any(isinstance(outcome, str) for _, outcome in results) else 0
