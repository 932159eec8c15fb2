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
from pathlib import Path

from LiverResUNetLib.app.dicomweb import run_dicomweb
from LiverResUNetLib.app.segment_cases import (
    SEGMENTATION_FORMATS,
    Segmenter,
    exit_code,
    expand_inputs,
    is_dicom_seg_path,
    output_paths,
    postprocess_options,
    run_summary,
    segment_cases,
)
from LiverResUNetLib.devices import DEVICES
from LiverResUNetLib.dicomseg.highdicom_import import import_highdicom
from LiverResUNetLib.dicomweb.connection import is_dicomweb_url
from LiverResUNetLib.errors import input_error

SUMMARY = "segment CT series or images into .seg.nrrd / label maps, with a results table"


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
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the network runs (default: auto = CUDA, then MPS, then CPU)")
    parser.add_argument("--batch-size", type=int, help="slices per network batch (default: chosen for the device)")
    parser.add_argument("--min-tumor-mm3", type=float,
                        help="drop predicted tumors smaller than this (default: the post-processing's default)")
    parser.add_argument("--no-postprocessing", action="store_true",
                        help="keep the network's raw labels (no largest-liver, hole filling or tumor clean-up)")


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.model.model_file import load_model

    if not args.model.is_file():
        raise input_error(args.model, "model file does not exist")
    segmenter = Segmenter(load_model(args.model), args.device, args.batch_size,
                          postprocess_options(not args.no_postprocessing, args.min_tumor_mm3))
    if any(is_dicomweb_url(text) for text in args.input):
        return run_dicomweb(args.input, args.output, args.table, segmenter)
    if is_dicomweb_url(args.output):
        raise input_error(args.output, "a DICOM SEG is stored over DICOMweb for a DICOMweb --input only")
    cases = expand_inputs([Path(text) for text in args.input], args.series_uid)
    outputs = output_paths(cases, Path(args.output), args.table, args.format)
    if any(is_dicom_seg_path(path) for path, _ in outputs):
        import_highdicom()  # refused here, before any work, where highdicom cannot run (Slicer 5.10)
    results = segment_cases(cases, outputs, segmenter)
    print(run_summary(results))
    return exit_code(results)
