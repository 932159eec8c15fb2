"""Physical scale: any matrix at any pixel size reaches the network at the model's pixel size and comes back."""

import numpy as np
import pytest
import torch
from recording_network import RecordingNetwork
from stretched_slices import resize_slices

from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import LoadedModel
from LiverResUNetLib.preprocessing.geometry import from_network, slice_grid, to_network
from LiverResUNetLib.preprocessing.intensity import (
    PreprocessingParams,
    equalize_slices,
    preprocess_slices,
    resize_labels,
    window_hu,
)
from LiverResUNetLib.volume import Volume

PARAMS = PreprocessingParams(input_size=32, pixel_size_mm=4.0, equalization="none")  # a 128 mm field of view


def disc_slice(shape, pixel_mm, radius_mm=30.0, centre_mm=(0.0, 0.0)):
    """uint8 ``[1, rows, columns]``: 1 inside a disc (about the slice's centre), 2 on a 20 mm square to its right."""
    rows, columns = shape
    y = (np.arange(rows) - (rows - 1) / 2) * pixel_mm[0] - centre_mm[0]
    x = (np.arange(columns) - (columns - 1) / 2) * pixel_mm[1] - centre_mm[1]
    labels = (y[:, None] ** 2 + x[None, :] ** 2 < radius_mm ** 2).astype(np.uint8)
    labels[(np.abs(y)[:, None] < 10) & (np.abs(x - 45)[None, :] < 10)] = 2
    return labels[None]


@pytest.mark.parametrize("shape, pixel_mm", [((96, 96), (1.333, 1.333)), ((40, 72), (3.0, 3.0)),
                                             ((50, 60), (2.5, 2.0))])
def test_the_same_anatomy_on_any_matrix_reaches_the_network_at_the_same_size(shape, pixel_mm):
    """A 64 x 64 slice of 2 mm pixels, a finer square one, a non-square one, one with non-square pixels."""
    reference = resize_labels(disc_slice((64, 64), (2.0, 2.0)), PARAMS, (2.0, 2.0))[0]
    seen = resize_labels(disc_slice(shape, pixel_mm), PARAMS, pixel_mm)[0]
    assert seen.shape == (32, 32)
    disc_area = np.pi * (30.0 / 4.0) ** 2 + 25.0  # disc + square, in 4 mm network pixels
    for labels in (reference, seen):
        assert abs(np.count_nonzero(labels) - disc_area) < 0.1 * disc_area
    overlap = np.count_nonzero((reference > 0) & (seen > 0)) / np.count_nonzero((reference > 0) | (seen > 0))
    assert overlap > 0.85
    rows, columns = np.nonzero(seen == 2)
    assert abs(columns.mean() - (15.5 + 45 / 4)) <= 1.0 and abs(rows.mean() - 15.5) <= 1.0


def test_old_models_stretch_every_slice_to_the_input():
    """Without a pixel size, the non-square slice is squeezed: what old models were trained on."""
    stretched = resize_labels(disc_slice((40, 72), (3.0, 3.0)), PreprocessingParams(input_size=32, pixel_size_mm=None))
    rows, columns = np.nonzero(stretched[0] == 1)
    assert np.ptp(columns) < 0.7 * np.ptp(rows)


def test_network_pixels_lie_at_their_physical_positions():
    """Each column of a slice holds its centre's distance (mm) from the slice's left edge; after resampling,
    each network pixel holds its own centre's distance: the scale is exact, not rounded to the frame's size."""
    pixel_mm = (0.7, 0.77)
    shape = (50, 181)
    ramp = np.broadcast_to(((np.arange(shape[1]) + 0.5) * pixel_mm[1]).astype(np.float32), shape)[None]
    grid = slice_grid(shape, pixel_mm, 32, 4.0)
    assert grid.frame == (9, 35) and grid.offset == (-12, 1)
    seen = to_network(torch.from_numpy(ramp.copy()), grid)[0].numpy()
    expected = (np.arange(32) + grid.offset[1] + 0.5) * 4.0
    np.testing.assert_allclose(seen[14, 2:30], expected[2:30], atol=0.05)  # mm: the filter's taps, not the scale
    assert (seen[:12] == 0).all() and (seen[21:] == 0).all(), "rows beyond the slice are not the fill value"


@pytest.mark.parametrize("shape", [(27, 19), (31, 32)])
def test_at_the_network_pixel_size_the_round_trip_is_the_identity(shape):
    rng = np.random.default_rng(0)
    maps = torch.from_numpy(rng.random((2, 2, *shape), dtype=np.float32))
    grid = slice_grid(shape, (4.0, 4.0), 32, 4.0)
    forward = torch.stack([to_network(maps[:, channel], grid) for channel in range(2)], dim=1)
    back = from_network(forward, grid, fill=-1.0)
    assert torch.equal(back, maps)


def test_the_inverse_puts_the_output_back_on_the_slices_exact_grid():
    """A 0.75 mm slice seen at 1.5 mm: a linear ramp comes back on the original pixels (bilinear is exact on
    it away from the edges); the part cropped away from the field of view gets the fill value."""
    shape = (70, 90)
    rows = np.arange(shape[0], dtype=np.float32)[:, None] * 0.75
    columns = np.arange(shape[1], dtype=np.float32)[None, :] * 0.75
    ramp = torch.from_numpy((rows + 2 * columns)[None])
    grid = slice_grid(shape, (0.75, 0.75), 32, 1.5)
    assert grid.frame == (35, 45) and grid.offset == (1, 6)
    back = from_network(to_network(ramp, grid)[:, None], grid, fill=-7.0)[0, 0]
    assert back.shape == shape
    seen_rows, seen_columns = slice(2 * 1 + 2, 2 * 33 - 2), slice(2 * 6 + 2, 2 * 38 - 2)
    np.testing.assert_allclose(back[seen_rows, seen_columns], ramp[0][seen_rows, seen_columns], atol=1e-3)
    assert (back[:, :11] == -7.0).all() and (back[:, 77:] == -7.0).all()


@pytest.mark.parametrize("shape, pixel_mm", [((64, 64), (2.0, 2.0)), ((96, 80), (1.333, 1.6))])
def test_predicted_labels_land_on_the_anatomy_whatever_the_matrix(shape, pixel_mm):
    labels = disc_slice(shape, pixel_mm, centre_mm=(8.0, -6.0)) == 1  # one liver: post-processing keeps it
    hu = np.where(labels, 300, -1000).astype(np.int16).repeat(3, axis=0)
    ct = Volume(hu, (pixel_mm[1], pixel_mm[0], 2.5), (0.0, 0.0, 0.0), np.eye(3))
    network = RecordingNetwork(liver_above=0.5)
    params = PreprocessingParams(input_size=32, pixel_size_mm=4.0, equalization="none", context_slices=0)
    predicted = predict_volume(ct, LoadedModel(network, {"preprocessing": params.to_dict()}), device="cpu").array
    assert predicted.shape == hu.shape
    liver = predicted[1] > 0
    assert np.count_nonzero(liver & labels[0]) / np.count_nonzero(liver | labels[0]) > 0.85
    for axis in (0, 1):
        assert abs(np.nonzero(liver)[axis].mean() - np.nonzero(labels[0])[axis].mean()) < 0.5
    assert network.inputs[0].shape == (3, 1, 32, 32)


def test_a_card_without_a_pixel_size_is_fed_as_before():
    """A model card written before the physical scale: slices stretched, equalised over every pixel."""
    old_card = {"window": [-100.0, 400.0], "equalization": "global", "clahe_clip": 0.01, "input_size": 16,
                "context_slices": 0}
    params = PreprocessingParams.from_dict(old_card)
    assert params.pixel_size_mm is None
    rng = np.random.default_rng(4)
    hu = rng.normal(50, 300, size=(2, 20, 36)).astype(np.float32)
    ct = Volume(hu, (0.6, 0.9, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    network = RecordingNetwork(liver_above=0.5)
    predict_volume(ct, LoadedModel(network, {"preprocessing": old_card}), device="cpu")
    expected = equalize_slices(resize_slices(window_hu(hu, (-100.0, 400.0)), 16), "global")
    np.testing.assert_array_equal(network.inputs[0][:, 0].numpy(), expected)
    np.testing.assert_array_equal(preprocess_slices(hu, params), expected)
