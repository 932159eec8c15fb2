"""Convert a raw dataset into one folder per case: OUT/<case id>/image.nii.gz (HU) and label.nii.gz (0/1/2).

RAW is a 3D-IRCADb-01 root or patient folder (zipped, unzipped or mixed), a LiTS folder, an MSD Task03_Liver
folder, or a dataset prepared before. OUT/dataset.json lists every case with its slices, spacing, tumor
voxels and source. Training and evaluation then read small compressed files instead of DICOM zips.
The dataset is built in a temporary folder beside OUT and renamed into place: a case that fails leaves
no half dataset, and an existing OUT stays as it was.

example: python -m LiverResUNetLib prepare --data ~/data/3Dircadb1 --out ~/data/ircadb-prepared
"""

import argparse
from pathlib import Path

from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "convert a raw 3D-IRCADb-01 / LiTS / MSD folder into one image/label folder per case"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, metavar="RAW",
                        help="raw dataset folder: 3D-IRCADb-01 root or patient, LiTS, MSD Task03, or prepared")
    parser.add_argument("--out", required=True, type=Path, metavar="DATASET",
                        help="prepared dataset folder to create (an older prepared dataset there is replaced)")


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.datasets.nifti_datasets import DATASET_JSON
    from LiverResUNetLib.datasets.prepare import prepare_dataset

    with ProgressReporter() as progress:
        out = prepare_dataset(args.data, args.out, progress=progress)
    print(out / DATASET_JSON)
    return 0
