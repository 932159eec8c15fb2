"""Headless segmentation of cases: inputs named as cases, each case segmented in a scene of its own, a summary.

The ``segment`` command and its DICOMweb form run every case through the Slicer module's own logic on
Slicer's MRML (``scene.logic``), so the files written here are the files a Slicer user would save. MRML and
torch are imported when the first case is segmented, not when the command line is read.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.datasets.cases import dicom_folder_name, safe_case_name
from LiverResUNetLib.errors import InputError, input_error
from LiverResUNetLib.progress import ProgressReporter

if typing.TYPE_CHECKING:
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions
    from LiverResUNetLib.io.dicom_series import SeriesInfo
    from LiverResUNetLib.model.model_file import LoadedModel

DICOM_SEG_SUFFIX = ".dcm"
SEGMENTATION_FORMATS = (".seg.nrrd", ".nii.gz", ".nrrd", DICOM_SEG_SUFFIX)

#: The rows of a case's results table (header first), as written to its CSV.
Rows = list[list[str]]
#: What became of a case: its results table's rows and where its segmentation went, or why it failed.
Outcome = typing.Union[tuple[Rows, typing.Union[Path, str]], str]


@dataclass
class Case:
    """One volume to segment: an image file, or one series of a DICOM folder."""

    name: str
    path: Path
    series: SeriesInfo | None = None  # for DICOM input
    error: Exception | None = None  # why the input gave no volume to segment


def _image_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return path.stem


def expand_inputs(inputs: Sequence[Path], series_uid: str | None = None) -> list[Case]:
    """The cases of the given inputs, named uniquely; an input that yields none is a failed case."""
    from LiverResUNetLib.io.dicom_series import find_series

    cases = []
    for path in inputs:
        if not path.is_dir():
            cases.append(Case(safe_case_name(_image_name(path)), path))
            continue
        name = dicom_folder_name(path)
        try:
            series = [info for info in find_series(path) if info.modality.upper() == "CT"
                      and (series_uid is None or info.series_uid == series_uid)]
        except InputError as error:
            cases.append(Case(safe_case_name(name), path, error=error))
            continue
        if not series:
            which = f"with SeriesInstanceUID {series_uid}" if series_uid else "CT"
            cases.append(Case(safe_case_name(name), path, error=input_error(path, f"no {which} series found")))
        for info in series:
            label = name if len(series) == 1 else f"{name}_{info.description or info.series_uid[-12:]}"
            cases.append(Case(safe_case_name(label), path, info))
    seen: dict[str, int] = {}
    for case in cases:
        count = seen[case.name] = seen.get(case.name, 0) + 1
        if count > 1:
            case.name = f"{case.name}_{count}"
    return cases


def is_dicom_seg_path(path: str | Path) -> bool:
    """True when ``path`` names a DICOM SEG file to write."""
    return Path(path).name.lower().endswith(DICOM_SEG_SUFFIX)


def output_paths(cases: Sequence[Case], output: Path, table: Path | None,
                 file_format: str) -> list[tuple[Path, Path | None]]:
    """(segmentation path, table path or None) per case; one case writes to the given files, several to
    folders."""
    from LiverResUNetLib.scene.files import is_segmentation_path

    if len(cases) == 1:
        if not (is_segmentation_path(output) or is_dicom_seg_path(output)):
            raise input_error(output, "the output must end in .seg.nrrd, .nii.gz, .nrrd or .dcm (DICOM SEG)")
        return [(output, table)]
    for folder in (output, table):
        if folder is not None and (folder.is_file() or is_segmentation_path(folder) or is_dicom_seg_path(folder)
                                   or folder.suffix == ".csv"):
            raise input_error(folder, f"{len(cases)} cases to segment: give a folder, not a file")
    return [(output / f"{case.name}{file_format}", table / f"{case.name}.csv" if table else None) for case in cases]


def postprocess_options(enabled: bool = True,
                        min_tumor_mm3: float | None = None) -> PostprocessOptions | None:
    """The post-processing: the model's own (None: its card's over the defaults), none at all (the network's raw
    labels), and/or another tumor size."""
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions

    if enabled and min_tumor_mm3 is None:
        return None
    options = PostprocessOptions()
    if not enabled:
        options = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False,
                                     min_tumor_mm3=0.0)
    if min_tumor_mm3 is not None:
        options = replace(options, min_tumor_mm3=min_tumor_mm3)
    return options


def _check_dicom_seg_input(case: Case, path: Path) -> None:
    """Refuse, before any work, a DICOM SEG output for an image-file input (a SEG references DICOM instances)."""
    if is_dicom_seg_path(path) and case.series is None:
        raise input_error(case.path, "a DICOM SEG is written for a DICOM series input only, and this is an image "
                                     "file: write .seg.nrrd or .nii.gz instead")


@dataclass(frozen=True)
class Segmenter:
    """What every case of one run shares: the loaded model and how it runs.

    Attributes:
        model: the loaded model file.
        device: "auto", "cuda", "cuda:N", "mps" or "cpu".
        batch_size: slices per network batch; None: the predictor's choice for the device.
        postprocess: None: the default post-processing.
    """

    model: LoadedModel
    device: str = "auto"
    batch_size: int | None = None
    postprocess: PostprocessOptions | None = None

    def segment_case(self, case: Case, segmentation_path: Path, table_path: Path | None,
                     progress: Progress) -> Rows:
        """Segment one case in a scene of its own; write its files; return the results table's rows."""
        from LiverResUNetLib.scene.files import (
            new_scene,
            read_dicom_series_node,
            read_image_node,
            write_segmentation,
            write_table_csv,
        )
        from LiverResUNetLib.scene.logic import SegmentLiverLogic, SegmentOptions
        from LiverResUNetLib.scene.results_table import table_rows
        from LiverResUNetLib.scene.volume_nodes import node_to_volume

        _check_dicom_seg_input(case, segmentation_path)
        scene = new_scene()
        volume_node = read_dicom_series_node(scene, case.series) if case.series else read_image_node(scene, case.path)
        logic = SegmentLiverLogic(scene)
        options = SegmentOptions(postprocess=self.postprocess, closedSurface=False, batchSize=self.batch_size)
        segmentation = logic.process(volume_node, self.model, self.device, options, progress)
        if is_dicom_seg_path(segmentation_path):
            assert case.series is not None  # _check_dicom_seg_input refused an image file
            self._write_dicom_seg(logic.labelVolume(segmentation, volume_node), case.series, segmentation_path,
                                  progress)
        else:
            write_segmentation(segmentation, segmentation_path, node_to_volume(volume_node))
        table = logic.resultsTable(segmentation)
        if table_path is not None:
            write_table_csv(table, table_path)
        return table_rows(table)

    def _write_dicom_seg(self, labels: typing.Any, series: SeriesInfo, path: Path, progress: Progress) -> None:
        """Write ``labels`` as a DICOM SEG of the CT series they were made from; notes go to ``progress``."""
        from LiverResUNetLib.dicomseg.writer import write_seg
        from LiverResUNetLib.io.dicom_series import read_series_headers

        stack, series_uid, _ = read_series_headers(series.files)
        for note in write_seg(labels, stack, series_uid, self.model.card, path):
            progress(1.0, f"note: {note}")


def report_failure(prefix: str, error: Exception) -> str:
    """Print one case's failure on standard error; return its message for the summary."""
    message = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    print(f"{prefix} FAILED {message}", file=sys.stderr)
    return message


def segment_cases(cases: Sequence[Case], outputs: Sequence[tuple[Path, Path | None]],
                  segmenter: Segmenter) -> list[tuple[Case, Outcome]]:
    """Segment every case into its (segmentation, table) paths; a case that fails is reported and the others
    go on."""
    results: list[tuple[Case, Outcome]] = []
    for number, (case, (segmentation_path, table_path)) in enumerate(zip(cases, outputs), start=1):
        prefix = f"[{number}/{len(cases)}] {case.name}:"
        try:
            if case.error is not None:
                raise case.error
            with ProgressReporter(f"{prefix} ") as progress:
                rows = segmenter.segment_case(case, segmentation_path, table_path, progress)
            results.append((case, (rows, segmentation_path)))
        except Exception as error:  # one case's failure (bad input, out of memory...) must not stop the batch
            results.append((case, report_failure(prefix, error)))
    return results


def run_summary(results: Sequence[tuple[Case, Outcome]]) -> str:
    """The end-of-run table: one line per case with its key numbers, or its error."""
    from LiverResUNetLib.scene.results_table import LIVER_ROW, TUMORS_ROW

    lines = [f"{'case':<24} {'status':<7} {'liver mL':>9} {'tumors':>6} {'tumor mL':>9}  output / error"]
    for case, outcome in results:
        if isinstance(outcome, str):
            lines.append(f"{case.name:<24} {'FAILED':<7} {'-':>9} {'-':>6} {'-':>9}  {outcome}")
            continue
        rows, path = outcome
        by_structure = {row[0]: row for row in rows[1:]}
        liver, tumors = by_structure[LIVER_ROW], by_structure[TUMORS_ROW]
        lines.append(f"{case.name:<24} {'ok':<7} {liver[1]:>9} {tumors[2]:>6} {tumors[1]:>9}  {path}")
    failed = sum(isinstance(outcome, str) for _, outcome in results)
    lines.append(f"{len(results) - failed} of {len(results)} cases segmented"
                 + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)


def exit_code(results: Sequence[tuple[Case, Outcome]]) -> int:
    """1 when any case failed, 0 otherwise."""
    return 1 if any(isinstance(outcome, str) for _, outcome in results) else 0
