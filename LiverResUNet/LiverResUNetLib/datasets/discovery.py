"""Which dataset a folder holds: every reader is asked in turn, and the first that recognises it lists its cases.

Training, evaluation and ``prepare`` see every dataset through :func:`discover_cases`.
"""

from pathlib import Path

from LiverResUNetLib.datasets import dicom_seg_cases, ircadb, nifti_datasets
from LiverResUNetLib.datasets.cases import CaseSource
from LiverResUNetLib.errors import input_error

DATASET_KINDS = ("a prepared dataset (dataset.json)", "an MSD Task03 folder (imagesTr/ + labelsTr/)",
                 "a 3D-IRCADb-01 root or patient folder (PATIENT_DICOM or PATIENT_DICOM.zip)",
                 "a LiTS folder (volume-N.nii + segmentation-N.nii)",
                 "a folder of DICOM CT series with DICOM SEG objects")


def discover_cases(path: str | Path) -> list[CaseSource]:
    """Every case of the dataset at ``path``, in a stable order.

    Recognises, in this order: a prepared dataset, an MSD Task03 folder, a single 3D-IRCADb-01 patient
    folder, a 3D-IRCADb-01 root (or the folder holding ``3Dircadb1/``), a LiTS folder, and a folder of DICOM
    CT series with DICOM SEG objects (each SEG the reference of the series it names).

    Raises:
        InputError: ``path`` is missing, is a file, or holds no dataset of a kind listed above.
    """
    path = Path(path)
    if not path.exists():
        raise input_error(path, "does not exist")
    if not path.is_dir():
        raise input_error(path, "is a file; give the folder that holds the dataset")
    for finder in (nifti_datasets.prepared_cases, nifti_datasets.msd_cases, ircadb.ircadb_cases,
                   nifti_datasets.lits_cases, dicom_seg_cases.dicom_seg_cases):
        sources = finder(path)
        if sources:
            return sources
    raise input_error(path, "no dataset found here; expected " + ", or ".join(DATASET_KINDS))
