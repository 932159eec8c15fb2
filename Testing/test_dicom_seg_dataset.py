"""A SEG made elsewhere (dcmqi) beside its CT series is a training case, with pydicom 2.4 and 3 alike."""

import shutil

import numpy as np
import pytest

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.prepare import prepare_dataset
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.volume import LIVER

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh


def test_prepare_reads_a_dcmqi_seg_beside_its_ct_as_a_case(real_fixtures, tmp_path):
    fixture = real_fixtures / "dcmqi-ct-3slice"
    export = tmp_path / "export"
    export.mkdir()
    for path in fixture.glob("*.dcm"):
        shutil.copy(path, export)
    [case] = [source.load() for source in discover_cases(prepare_dataset(export, tmp_path / "dataset"))]
    expected = read_image(fixture / "liver_seg.nrrd").array
    assert expected.any()
    np.testing.assert_array_equal(case.label.array, np.where(expected > 0, LIVER, 0))
    np.testing.assert_array_equal(case.image.array, read_series(fixture).array)
