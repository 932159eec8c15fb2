"""One lesion definition: two tumor voxels touching only by a corner are one lesion everywhere."""

import numpy as np

from LiverResUNetLib.evaluation.lesions import label_lesions
from LiverResUNetLib.evaluation.metrics import case_metrics
from LiverResUNetLib.inference.postprocessing import PostprocessOptions, postprocess
from LiverResUNetLib.measurements import measure_liver
from LiverResUNetLib.training.sampling import lesion_slices
from LiverResUNetLib.volume import LIVER, TUMOR, Volume

SPACING = (2.0, 2.0, 1.5)  # 6 mm³ per voxel: each voxel alone is under the 10 mm³ threshold, the pair is not


def corner_pair():
    """A liver block holding two tumor voxels that touch only at a corner (12 mm³ together)."""
    labels = np.zeros((6, 10, 10), np.uint8)
    labels[1:5, 2:8, 2:8] = LIVER
    labels[2, 4, 4] = labels[3, 5, 5] = TUMOR
    return labels


def test_post_processing_keeps_a_corner_connected_lesion_above_the_size_threshold():
    kept = postprocess(corner_pair(), SPACING, PostprocessOptions(min_tumor_mm3=10.0))
    assert kept[2, 4, 4] == kept[3, 5, 5] == TUMOR
    dropped = postprocess(corner_pair(), SPACING, PostprocessOptions(min_tumor_mm3=13.0))
    assert not (dropped == TUMOR).any()


def test_evaluation_results_table_and_sampling_count_one_lesion():
    labels = corner_pair()
    assert label_lesions(labels == TUMOR, SPACING).count == 1
    assert case_metrics(labels, labels, SPACING)["lesions"]["reference_lesions"] == 1
    measured = measure_liver(Volume(labels, SPACING))
    assert measured["tumor_count"] == 1
    assert measured["tumor_volume_ml"] == 0.012
    assert [list(slices) for slices in lesion_slices(labels, np.zeros(6, int))] == [[2, 3]]

