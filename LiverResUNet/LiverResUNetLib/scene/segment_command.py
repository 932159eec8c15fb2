"""Segment the liver and liver tumors of CT series or image files, headless.

Each --input is a DICOM folder (every CT series found in it is one case) or an image file (.nii, .nii.gz,
.nrrd, .mha). Each case goes through the Slicer module's own logic on Slicer's MRML (slicer-core), so the
.seg.nrrd written here is the file a Slicer user would save.

One case: --output is the file to write, a .seg.nrrd (segments "Liver" and "Liver tumor"), a label map
.nii.gz / .nrrd (0 background, 1 liver, 2 liver tumor, on the input's grid) or, for a DICOM series, a DICOM
SEG .dcm (same patient and study, a new series referencing the CT; send it to the PACS); --table the CSV of results
(liver volume, tumor count, volume and burden, per-lesion volume, longest axial diameter and centroid).
Several cases: --output (and --table) are folders receiving <case><--format> (and <case>.csv). A case is
named after its file or DICOM folder (after the folder above for one called PATIENT_DICOM or DICOM, as in
3D-IRCADb-01), with the series description added when a folder holds several CT series.
A case that fails is reported and the others go on; a summary ends the run; the exit code is 1 when any failed.

examples:
  python -m LiverResUNetLib segment --model liver.pt --input CT_DIR --output liver.seg.nrrd --table results.csv
  python -m LiverResUNetLib segment --model liver.pt --input a.nii.gz --input DICOM_ROOT --output out/
  python -m LiverResUNetLib segment --model liver.pt --input CT_DIR --output liver_seg.dcm
  python -m LiverResUNetLib segment --model liver.pt \
      --input https://pacs/dicom-web/studies/<StudyUID>/series/<SeriesUID> --output https://pacs/dicom-web
  python -m LiverResUNetLib segment --model liver.pt --input https://pacs/dicom-web --output https://pacs/dicom-web

DICOMweb: the series is retrieved (WADO-RS), segmented, and its DICOM SEG stored into its study (STOW-RS);
BASE alone segments every CT series with no SEG of this model yet. Credentials come from the environment
(LIVERRESUNET_DICOMWEB_USER and LIVERRESUNET_DICOMWEB_PASSWORD, or LIVERRESUNET_DICOMWEB_TOKEN) or a JSON file
named by LIVERRESUNET_DICOMWEB_CREDENTIALS, never from the command line; TLS certificates are verified (a private
CA: REQUESTS_CA_BUNDLE). A series that cannot be segmented is one line and exit code 2, nothing stored.
"""

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DICOM_SEG_SUFFIX = ".dcm"
SEGMENTATION_FORMATS = (".seg.nrrd", ".nii.gz", ".nrrd", DICOM_SEG_SUFFIX)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="model file (from the train command)")
    parser.add_argument("--input", required=True, action="append", metavar="DICOM_DIR|IMAGE|URL",
                        help="a DICOM folder or an image file (repeat for a batch), or a DICOMweb URL: "
                             "BASE/studies/<StudyUID>/series/<SeriesUID> for one series, BASE for every CT series "
                             "on the server that this model has not segmented yet")
    parser.add_argument("--output", required=True, metavar="FILE|FOLDER|URL",
                        help="segmentation file (one case: .seg.nrrd, .nii.gz, .nrrd, or .dcm = DICOM SEG of a DICOM "
                             "series), folder (several cases), or for a DICOMweb input the DICOMweb BASE URL that "
                             "receives the DICOM SEG (into the series' study)")
    parser.add_argument("--table", type=Path, metavar="CSV|FOLDER",
                        help="results table: a CSV file (one case) or a folder (several cases)")
    parser.add_argument("--format", choices=SEGMENTATION_FORMATS, default=".seg.nrrd",
                        help="file type written for each case when --output is a folder (default: .seg.nrrd; .dcm: "
                             "DICOM SEG)")
    parser.add_argument("--series-uid", help="segment only the DICOM series with this SeriesInstanceUID")
    parser.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto",
                        help="where the network runs (default: auto = CUDA, then MPS, then CPU)")
    parser.add_argument("--batch-size", type=int, help="slices per network batch (default: chosen for the device)")
    parser.add_argument("--min-tumor-mm3", type=float,
                        help="drop predicted tumors smaller than this (default: the post-processing's default)")
    parser.add_argument("--no-postprocessing", action="store_true",
                        help="keep the network's raw labels (no largest-liver, hole filling or tumor clean-up)")


@dataclass
class Case:
    """One volume to segment: an image file, or one series of a DICOM folder."""

    name: str
    path: Path
    series: object = None  # io.dicom_series.SeriesInfo for DICOM input
    error: Exception | None = None  # why the input gave no volume to segment


def _image_name(path):
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd"):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return path.stem


def expand_inputs(inputs, series_uid=None):
    """The cases of the given inputs, named uniquely; an input that yields none is a failed case."""
    from LiverResUNetLib.datasets.cases import dicom_folder_name, safe_case_name
    from LiverResUNetLib.errors import InputError, input_error
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
    seen = {}
    for case in cases:
        count = seen[case.name] = seen.get(case.name, 0) + 1
        if count > 1:
            case.name = f"{case.name}_{count}"
    return cases


def is_dicom_seg_path(path):
    """True when ``path`` names a DICOM SEG file to write."""
    return Path(path).name.lower().endswith(DICOM_SEG_SUFFIX)


def output_paths(cases, output, table, file_format):
    """(segmentation path, table path or None) per case; one case writes to the given files, several to
    folders."""
    from LiverResUNetLib.errors import input_error
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


def _postprocess_options(args):
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions

    if not args.no_postprocessing and args.min_tumor_mm3 is None:
        return None  # the model's own: its card's post-processing over the defaults
    options = PostprocessOptions()
    if args.no_postprocessing:
        options = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False,
                                     min_tumor_mm3=0.0)
    if args.min_tumor_mm3 is not None:
        options = replace(options, min_tumor_mm3=args.min_tumor_mm3)
    return options


class ProgressPrinter:
    """Progress lines on standard error, one per message or per 10 %, prefixed with the case."""

    def __init__(self, prefix):
        self.prefix, self.last = prefix, None

    def __call__(self, fraction, message):
        step = (message, int(fraction * 10))
        if step != self.last:
            self.last = step
            print(f"{self.prefix} {fraction:4.0%} {message}", file=sys.stderr, flush=True)


def _check_dicom_seg_input(case, path):
    """Refuse, before any work, a DICOM SEG output for an image-file input (a SEG references DICOM instances)."""
    from LiverResUNetLib.errors import input_error

    if is_dicom_seg_path(path) and case.series is None:
        raise input_error(case.path, "a DICOM SEG is written for a DICOM series input only, and this is an image "
                                     "file: write .seg.nrrd or .nii.gz instead")


def write_dicom_seg(logic, segmentation, volume_node, series, card, path, progress):
    """Write the segmentation as a DICOM SEG of the CT series it was made from; notes go to ``progress``."""
    from LiverResUNetLib.dicomseg.writer import write_seg
    from LiverResUNetLib.io.dicom_series import read_series_headers

    stack, series_uid, _ = read_series_headers(series.files)
    for note in write_seg(logic.labelVolume(segmentation, volume_node), stack, series_uid, card, path):
        progress(1.0, f"note: {note}")


def segment_case(case, model, segmentation_path, table_path, args, postprocess, progress):
    """Segment one case in a scene of its own; write its files; return the results table's rows."""
    import slicer

    from LiverResUNetLib.scene.files import read_dicom_series_node, read_image_node, write_segmentation, write_table_csv
    from LiverResUNetLib.scene.logic import SegmentLiverLogic, SegmentOptions
    from LiverResUNetLib.scene.results_table import table_rows
    from LiverResUNetLib.scene.volume_nodes import node_to_volume

    _check_dicom_seg_input(case, segmentation_path)
    scene = slicer.vtkMRMLScene()
    volume_node = read_dicom_series_node(scene, case.series) if case.series else read_image_node(scene, case.path)
    logic = SegmentLiverLogic(scene)
    options = SegmentOptions(postprocess=postprocess, closedSurface=False, batchSize=args.batch_size)
    segmentation = logic.process(volume_node, model, args.device, options, progress)
    if is_dicom_seg_path(segmentation_path):
        write_dicom_seg(logic, segmentation, volume_node, case.series, model.card, segmentation_path, progress)
    else:
        write_segmentation(segmentation, segmentation_path, node_to_volume(volume_node))
    table = logic.resultsTable(segmentation)
    if table_path is not None:
        write_table_csv(table, table_path)
    return table_rows(table)


def run_summary(results):
    """The end-of-run table from [(case, (rows, output) or error message)]: one line per case with its key
    numbers, or its error."""
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


def run(args: argparse.Namespace) -> int:
    import vtk

    from LiverResUNetLib.dicomseg.highdicom_import import import_highdicom
    from LiverResUNetLib.dicomweb.connection import is_dicomweb_url
    from LiverResUNetLib.errors import InputError, input_error
    from LiverResUNetLib.model.model_file import load_model

    vtk.vtkObject.GlobalWarningDisplayOff()  # a bare scene warns about colour tables only the application has
    if not args.model.is_file():
        raise input_error(args.model, "model file does not exist")
    model = load_model(args.model)
    postprocess = _postprocess_options(args)
    if any(is_dicomweb_url(text) for text in args.input):
        from LiverResUNetLib.scene.dicomweb_segment import run_dicomweb

        return run_dicomweb(args, model, postprocess)
    if is_dicomweb_url(args.output):
        raise input_error(args.output, "a DICOM SEG is stored over DICOMweb for a DICOMweb --input only")
    cases = expand_inputs([Path(text) for text in args.input], args.series_uid)
    outputs = output_paths(cases, Path(args.output), args.table, args.format)
    if any(is_dicom_seg_path(path) for path, _ in outputs):
        import_highdicom()  # refused here, before any work, where highdicom cannot run (Slicer 5.10)
    results: list[tuple[Any, Any]] = []
    for number, (case, (segmentation_path, table_path)) in enumerate(zip(cases, outputs), start=1):
        prefix = f"[{number}/{len(cases)}] {case.name}:"
        try:
            if case.error is not None:
                raise case.error
            rows = segment_case(case, model, segmentation_path, table_path, args, postprocess,
                                ProgressPrinter(prefix))
            results.append((case, (rows, segmentation_path)))
        except Exception as error:  # one case's failure (bad input, out of memory...) must not stop the batch
            message = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
            results.append((case, message))
            print(f"{prefix} FAILED {message}", file=sys.stderr)
    print(run_summary(results))
    return 1 if any(isinstance(outcome, str) for _, outcome in results) else 0
