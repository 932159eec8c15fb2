"""A folder of CT series with DICOM SEG objects (radiologists' corrected results exported from a PACS viewer) as
cases: each SEG is the reference of the CT series it names.

Every SEG in the folder becomes one case, its CT found by the SeriesInstanceUID the SEG references. A SEG that
names no series, names one that is not in the folder, or does not match its CT (see ``dicomseg.reader``) is
refused with the SEG file's name: a dataset is never built from references on the wrong images.
"""

import functools
from pathlib import Path

from LiverResUNetLib.datasets.cases import Case, CaseSource, dicom_folder_name, safe_case_name
from LiverResUNetLib.dicomseg.reader import read_seg_labels, referenced_series_uids
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.dicom_series import SeriesInfo, find_series, read_series

SEG_MODALITY = "SEG"


def _read_case(case_id: str, ct_files: list[Path], seg_path: Path) -> Case:
    ct = read_series(ct_files)
    return Case(case_id, ct, read_seg_labels(seg_path, ct), str(seg_path))


def dicom_seg_cases(folder: str | Path) -> list[CaseSource]:
    """One :class:`CaseSource` per DICOM SEG under ``folder`` (none when it holds no SEG), ids unique.

    Raises:
        InputError: naming the SEG file, when it references no series or a series that is not a CT series in
            ``folder``; a damaged DICOM file (see ``find_series``).
    """
    root = Path(folder)
    infos = find_series(root)
    ct_series = {info.series_uid: info for info in infos if info.modality.upper() == "CT"}
    sources: list[CaseSource] = []
    seen: dict[str, int] = {}
    for info in infos:
        if info.modality.upper() != SEG_MODALITY:
            continue
        for seg_path in info.files:
            ct = _referenced_ct(seg_path, ct_series, root)
            name = safe_case_name(ct.patient_id or dicom_folder_name(ct.folder))
            count = seen[name] = seen.get(name, 0) + 1
            case_id = name if count == 1 else f"{name}_{count}"
            sources.append(CaseSource(case_id, Path(seg_path),
                                      functools.partial(_read_case, case_id, ct.files, Path(seg_path))))
    return sources


def _referenced_ct(seg_path: Path, ct_series: dict[str, SeriesInfo], folder: Path) -> SeriesInfo:
    import pydicom

    header = pydicom.dcmread(seg_path, stop_before_pixels=True)
    referenced = referenced_series_uids(header)
    if not referenced:
        raise input_error(seg_path, "this DICOM SEG names no source series (no ReferencedSeriesSequence), so its "
                                    "CT cannot be found")
    for uid in referenced:
        if uid in ct_series:
            return ct_series[uid]
    raise input_error(seg_path, f"this DICOM SEG was made from series {', '.join(referenced)}, which is not a CT "
                                f"series in {folder}")
