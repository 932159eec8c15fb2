"""The golden model: `segment` with a committed model on a real fixture CT must give the committed label map.

Testing/Data/golden/ holds a tiny model trained on phantoms and the label map it produced on
Testing/Data/totalsegmentator-example/ct_dicom (both made by scripts/make_golden_model.py). Any change in
DICOM reading, preprocessing, the network, inference or post-processing that moves the result fails here;
when the change is intended, run that script again and commit both files.

Tolerance: CPU floating-point non-determinism (thread count, instruction set) can flip a voxel whose two
largest class scores are nearly tied; at most GOLDEN_TOLERANCE (0.05 %) of the voxels labelled in either map
may differ (on the development machine none does). A HU window shifted by 20 HU, or the first convolution's
weights scaled by 2 %, moves more than ten times that (tests below), so the tolerance cannot hide a real change.
"""

import numpy as np
import pytest
import torch

from LiverResUNetLib import cli
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.model.model_file import load_model

GOLDEN_TOLERANCE = 0.0005


@pytest.fixture(scope="module")
def golden(real_fixtures):
    folder = real_fixtures / "golden"
    return folder / "model.pth", read_image(folder / "expected_labels.nii.gz")


@pytest.fixture(scope="module")
def fixture_ct(real_fixtures):
    return real_fixtures / "totalsegmentator-example" / "ct_dicom"


def changed_share(labels, expected):
    """Share of the voxels labelled in either map whose label differs."""
    labelled = (labels > 0) | (expected > 0)
    return np.count_nonzero(labels != expected) / max(np.count_nonzero(labelled), 1)


def test_the_golden_label_map_is_not_trivial(golden):
    _, expected = golden
    assert np.count_nonzero(expected.array == 1) > 10_000
    assert set(np.unique(expected.array)) <= {0, 1, 2}


def test_segment_reproduces_the_golden_label_map(golden, fixture_ct, tmp_path):
    model, expected = golden
    output = tmp_path / "labels.nii.gz"
    assert cli.main(["segment", "--model", str(model), "--input", str(fixture_ct), "--output", str(output)]) == 0
    labels = read_image(output)
    assert labels.same_grid(expected)
    assert changed_share(labels.array, expected.array) <= GOLDEN_TOLERANCE


def test_a_shifted_hu_window_breaks_the_golden_comparison(golden, fixture_ct):
    model_path, expected = golden
    model = load_model(model_path)
    low, high = model.preprocessing.window
    model.card["preprocessing"]["window"] = [low + 20.0, high + 20.0]
    labels = predict_volume(read_series(fixture_ct), model)
    assert changed_share(labels.array, expected.array) > 10 * GOLDEN_TOLERANCE


def test_weights_changed_by_two_percent_break_the_golden_comparison(golden, fixture_ct):
    model_path, expected = golden
    model = load_model(model_path)
    with torch.no_grad():
        next(model.network.parameters()).mul_(1.02)
    labels = predict_volume(read_series(fixture_ct), model)
    assert changed_share(labels.array, expected.array) > 10 * GOLDEN_TOLERANCE
