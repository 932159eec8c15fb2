"""A real CT with a segmentation that has tumors, for the browser review's tests, screenshots and benchmark.

The CT is the TotalSegmentator example series in Testing/Data (real, Apache-2.0); its liver is TotalSegmentator's
(label 5 of the example label map). The real series has no tumor annotation, so three spherical "lesions" of
known size are placed inside the liver: what a model's output with three lesions looks like.
"""

from pathlib import Path

import numpy as np

from LiverResUNetLib.io.dicom_series import find_series, read_series
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

DATA = Path(__file__).resolve().parent / "Data" / "totalsegmentator-example"
CT_FOLDER = DATA / "ct_dicom"
TOTALSEGMENTATOR_LIVER = 5
# (k, j, i) centre and radius (mm) of each placed lesion, largest first.
LESIONS = (((10, 230, 180), 14.0), ((12, 285, 225), 9.0), ((6, 175, 140), 6.0))


def fixture_labels() -> Volume:
    """The label Volume (0/1/2) on the CT's grid: TotalSegmentator's liver with three spherical lesions."""
    ct = read_series(find_series(CT_FOLDER)[0].files)
    organs = read_image(DATA / "example_seg_dicom.nii.gz")
    array = np.where(organs.array == TOTALSEGMENTATOR_LIVER, LIVER, 0).astype(np.uint8)
    k, j, i = np.ogrid[tuple(slice(0, n) for n in array.shape)]
    di, dj, dk = ct.spacing
    for (ck, cj, ci), radius in LESIONS:
        ball = ((k - ck) * dk) ** 2 + ((j - cj) * dj) ** 2 + ((i - ci) * di) ** 2 <= radius ** 2
        array[ball & (array == LIVER)] = TUMOR
    return ct.with_array(array)


def write_fixture_segmentation(folder: Path) -> Path:
    return write_image(fixture_labels(), Path(folder) / "fixture_labels.nii.gz")


def write_pacs_ready_ct(folder: Path) -> Path:
    """The fixture CT in ``folder`` with the UIDs its anonymisation emptied filled in (a PACS refuses instances
    without them): each instance's from its file meta, the series' and study's as the SEG writer derives them.
    Decompressed from JPEG 2000: the Debian Orthanc cannot transcode it for WADO-RS's default transfer syntax."""
    import pydicom

    from LiverResUNetLib.dicomseg.writer import derived_study_uid
    from LiverResUNetLib.io.dicom_series import read_series_headers

    files = find_series(CT_FOLDER)[0].files
    stack, series_uid, _ = read_series_headers(files)
    study_uid = derived_study_uid(stack.headers[0])
    folder.mkdir(parents=True)
    for path in files:
        dataset = pydicom.dcmread(path)
        dataset.decompress()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
        dataset.SeriesInstanceUID, dataset.StudyInstanceUID = series_uid, study_uid
        dataset.save_as(folder / Path(path).name)
    return folder
