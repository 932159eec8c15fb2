"""Generate a synthetic abdominal CT cohort in the exact 3D-IRCADb-01 layout, then read it back.

Writes OUT/3Dircadb1/3Dircadb1.1 .. 3Dircadb1.N (PATIENT_DICOM and MASKS_DICOM zipped, unzipped, both or
mixed, varied tumor mask names, adrenal-tumor and cyst traps, tumor-free patients) and prints what the
project's own 3D-IRCADb-01 reader finds in it: slices, spacing, liver volume and tumors per patient.
The same seed always writes the same cohort.

example: python -m LiverResUNetLib phantom --out /tmp/phantoms --patients 4 --size 512 --seed 0
"""

import argparse
from collections.abc import Callable
from pathlib import Path

from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "generate a synthetic abdominal CT cohort in the 3D-IRCADb-01 layout"


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum``."""
    def convert(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write 3Dircadb1/ into")
    parser.add_argument("--patients", type=_at_least(1), default=4, metavar="N",
                        help="number of patients (default 4)")
    parser.add_argument("--size", type=_at_least(16), default=512, metavar="PX",
                        help="in-plane matrix, 512 like the real dataset (default); 64 is enough for tests")
    parser.add_argument("--first", type=_at_least(1), default=1, metavar="K",
                        help="number of the first patient (default 1): the same --seed with --first N+1 gives "
                             "patients distinct from a first cohort of N, e.g. a held-out test cohort")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="cohort seed (default 0)")
    parser.add_argument("--slices", type=_at_least(1), default=None, metavar="K",
                        help="slices per patient (default: each patient's abdominal coverage at its spacing)")


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.datasets.ircadb import list_ircadb_patients, read_ircadb_patient
    from LiverResUNetLib.measurements import measure_liver
    from LiverResUNetLib.phantom.ircadb_writer import storage_for, write_cohort

    numbers = range(args.first, args.first + args.patients)
    with ProgressReporter() as progress:
        root = write_cohort(args.out, numbers, size=args.size, seed=args.seed, slices=args.slices, progress=progress)
    print(f"wrote {args.patients} phantom patients to {root}")
    print(f"{'patient':<14} {'stored as':<9} {'slices':>6} {'pixel mm':>8} {'slice mm':>8} {'liver mL':>9} "
          f"{'tumors':>7} {'tumor mL':>9}  tumor masks")
    for folder in list_ircadb_patients(root):
        case = read_ircadb_patient(folder)
        measures = measure_liver(case.label)
        number = int(folder.name.rsplit(".", 1)[1])
        print(f"{case.case_id:<14} {storage_for(number):<9} {case.image.shape[0]:>6} {case.image.spacing[0]:>8.3f} "
              f"{case.image.spacing[2]:>8.2f} {measures['liver_volume_ml']:>9.1f} {measures['tumor_count']:>7} "
              f"{measures['tumor_volume_ml']:>9.2f}  {', '.join(case.label.metadata['tumor_masks']) or '-'}")
    return 0
