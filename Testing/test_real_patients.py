"""The two real 3D-IRCADb-01 patients in ../shared/data, read by the project's own reader, hold what IRCAD says.

Patient 1.1 is zipped (seven ``livertumorNN`` masks), patient 1.7 has an unzipped CT and a ``tumor`` mask
lying outside its ``liver`` mask; their pixel sizes differ (0.57 and 0.78 mm). Skipped in a clone without
../shared, a failure in CI (see the ``real_patients`` fixture).
"""

import numpy as np
import pytest

from LiverResUNetLib.datasets.ircadb import read_ircadb_patient
from LiverResUNetLib.evaluation.lesions import label_lesions
from LiverResUNetLib.measurements import measure_liver
from LiverResUNetLib.volume import TUMOR

pytestmark = pytest.mark.dicom

EXPECTED = {  # slices, pixel size (mm), tumor masks, lesions (3D connected components of label 2)
    "3Dircadb1.1": (129, 0.57, [f"livertumor0{n}" for n in range(1, 8)], 7),
    "3Dircadb1.7": (151, 0.782, ["tumor"], 2),
}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def patient(request, real_patients):
    return request.param, read_ircadb_patient(real_patients / request.param)


def test_ct_grid_hu_and_tumor_masks(patient):
    name, case = patient
    slices, pixel_mm, masks, _ = EXPECTED[name]
    assert case.image.shape == (slices, 512, 512)
    assert case.image.spacing == pytest.approx((pixel_mm, pixel_mm, 1.6), abs=1e-3)
    assert case.label.same_grid(case.image)
    assert case.label.metadata["tumor_masks"] == masks
    assert -1030 <= case.image.array.min() and case.image.array.max() <= 3100
    liver_hu = float(np.median(case.image.array[case.label.array == 1]))
    assert 40 < liver_hu < 200, f"{name}: liver median {liver_hu} HU, not soft tissue (flipped mask?)"


def test_lesions_are_counted_alike_by_the_evaluation_and_the_results_table(patient):
    name, case = patient
    lesions = label_lesions(case.label.array == TUMOR, case.label.spacing)
    assert lesions.count == EXPECTED[name][3]
    measured = measure_liver(case.label)
    assert measured["tumor_count"] == lesions.count
    assert measured["tumor_volume_ml"] == pytest.approx(sum(lesions.volumes_ml))
    assert 0 < measured["tumor_burden_percent"] < 50
