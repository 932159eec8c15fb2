"""The golden model: `segment` with a committed model on a real fixture CT must give the committed label map.

Testing/Data/golden/ holds a tiny model trained on phantoms and the fixture's liver, with the default
preprocessing (1.5 mm pixels, interior equalisation), and the label map it produced on
Testing/Data/totalsegmentator-example/ct_dicom (both made by scripts/make_golden_model.py). Any change in
DICOM reading, preprocessing, the network, inference or post-processing that moves the result fails here;
when the change is intended, run that script again and commit both files.

Tolerance: CPU floating-point non-determinism (thread count, instruction set) can flip a voxel whose two
largest class scores are nearly tied; at most GOLDEN_TOLERANCE (0.05 %) of the voxels labelled in either map
may differ (on the development machine none does, with 1 or 2 threads). Each change below moves more than ten
times that (measured 2026-12-02: HU window shifted by 20 HU 0.95 %, first convolution's weights scaled by 2 %
0.61 %, pixel size 1.6 mm instead of 1.5 mm 2.3 %, a card without a pixel size, read as an old model's and
stretched, 4.3 %), so the tolerance cannot hide a real change. The old models' path (stretching, global
equalisation) is pinned piece by piece in test_physical_scale.py.
"""

import numpy as np
import pytest
import torch

from LiverResUNetLib import cli
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.model.model_file import load_model, read_card
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

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
    assert np.count_nonzero(expected.array == 2) > 0
    assert set(np.unique(expected.array)) <= {0, 1, 2}


def test_the_golden_model_is_fed_with_the_default_preprocessing(golden):
    """When the defaults change, the golden model must be made again, or it pins a path new models do not take."""
    model, _ = golden
    assert read_card(model)["preprocessing"] == PreprocessingParams().to_dict()


def test_segment_reproduces_the_golden_label_map(golden, fixture_ct, tmp_path):
    model, expected = golden
    output = tmp_path / "labels.nii.gz"
    assert cli.main(["segment", "--model", str(model), "--input", str(fixture_ct), "--output", str(output)]) == 0
    labels = read_image(output)
    assert labels.same_grid(expected)
    assert changed_share(labels.array, expected.array) <= GOLDEN_TOLERANCE


def shift_window(model):
    low, high = model.preprocessing.window
    model.card["preprocessing"]["window"] = [low + 20.0, high + 20.0]


def scale_first_weights(model):
    with torch.no_grad():
        next(model.network.parameters()).mul_(1.02)


def coarser_pixels(model):
    model.card["preprocessing"]["pixel_size_mm"] = 1.6


def as_old_card(model):
    del model.card["preprocessing"]["pixel_size_mm"]


@pytest.mark.parametrize("change", [shift_window, scale_first_weights, coarser_pixels, as_old_card])
def test_a_changed_preprocessing_or_network_breaks_the_golden_comparison(golden, fixture_ct, change):
    model_path, expected = golden
    model = load_model(model_path)
    change(model)
    labels = predict_volume(read_series(fixture_ct), model)
    assert changed_share(labels.array, expected.array) > 10 * GOLDEN_TOLERANCE
