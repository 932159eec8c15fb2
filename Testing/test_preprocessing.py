"""THE preprocessing function: each step against hand-computed values, and batch-wise = volume-wise."""

import numpy as np
import pytest
from stretched_slices import resize_slices

from LiverResUNetLib.preprocessing.intensity import (
    PreprocessingParams,
    equalize_slices,
    preprocess_slices,
    resize_labels,
    window_hu,
)


def test_window_clips_and_scales_hu_to_0_1():
    hu = np.array([[[-1024, -100, 0, 150, 400, 3071]]], dtype=np.int16)
    np.testing.assert_allclose(window_hu(hu, (-100.0, 400.0)), [[[0.0, 0.0, 0.2, 0.5, 1.0, 1.0]]], atol=1e-7)
    assert window_hu(hu, (-100.0, 400.0)).dtype == np.float32


def test_window_leaves_its_input_untouched():
    hu = np.array([[[-500.0, 50.0, 900.0]]], dtype=np.float32)
    windowed = window_hu(hu, (0.0, 100.0))
    np.testing.assert_array_equal(hu, [[[-500.0, 50.0, 900.0]]])
    np.testing.assert_allclose(windowed, [[[0.0, 0.5, 1.0]]])


def test_window_reads_a_reversed_view():
    hu = np.arange(12, dtype=np.int16).reshape(1, 3, 4) * 10
    np.testing.assert_allclose(window_hu(hu[:, ::-1], (0.0, 110.0)), (hu[:, ::-1] / 110.0).astype(np.float32))


def test_resize_up_is_bilinear_on_pixel_centres():
    """A 2-pixel ramp [0, 1] at twice the size: centres at 1/4 and 3/4 of a pixel interpolate 0, .25, .75, 1."""
    image = np.array([[[0.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
    resized = resize_slices(image, 4)
    np.testing.assert_allclose(resized[0], np.tile([0.0, 0.25, 0.75, 1.0], (4, 1)), atol=1e-6)


def test_resize_down_averages_with_a_triangle_filter():
    """Halving uses taps 1/8, 3/8, 3/8, 1/8 (renormalised at the border): no aliasing of fine detail."""
    stripes = np.tile(np.array([0.0, 1.0], dtype=np.float32), (8, 4))[None]  # columns alternate 0, 1
    resized = resize_slices(stripes, 4)
    # Interior output pixels see 0, 1, 0, 1 with weights 1/8, 3/8, 3/8, 1/8 -> 1/2. The edge columns lose their
    # out-of-image tap: (3/8 * 0 + 3/8 * 1 + 1/8 * 0) / (7/8) = 3/7 and (1/8 * 1 + 3/8 * 0 + 3/8 * 1) / (7/8) = 4/7.
    np.testing.assert_allclose(resized[0, :, 1:3], 0.5, atol=1e-6)
    np.testing.assert_allclose(resized[0, :, 0], 3.0 / 7.0, atol=1e-6)
    np.testing.assert_allclose(resized[0, :, 3], 4.0 / 7.0, atol=1e-6)
    constant = np.full((2, 10, 6), 0.3, dtype=np.float32)
    np.testing.assert_allclose(resize_slices(constant, 8), 0.3, atol=1e-6)


def test_global_equalisation_maps_each_value_to_its_cumulative_share():
    """Half the pixels are 0, one is 0.5, one is 1: the cdf at bin centres is 0.5, 0.75, 1.0 (256 bins).

    0 lies below the first bin centre (cdf 0.5); 0.5 lies halfway between the centres of bins 127 (cdf 0.5)
    and 128 (cdf 0.75), so 0.625; 1 lies above the last centre (cdf 1).
    """
    images = np.array([[[0.0, 0.0], [0.5, 1.0]]], dtype=np.float32)
    np.testing.assert_allclose(equalize_slices(images.copy(), "global"), [[[0.5, 0.5], [0.625, 1.0]]], atol=1e-6)


def test_equalisation_works_slice_by_slice():
    rng = np.random.default_rng(0)
    images = rng.random((3, 16, 16), dtype=np.float32) ** np.array([1.0, 2.0, 4.0], dtype=np.float32)[:, None, None]
    together = equalize_slices(images.copy(), "global")
    for index in range(3):
        np.testing.assert_array_equal(together[index], equalize_slices(images[index:index + 1].copy(), "global")[0])
        # An equalised slice has an almost flat histogram: its values spread evenly over [0, 1].
        assert abs(np.median(together[index]) - 0.5) < 0.05


def test_clahe_raises_local_contrast_and_none_changes_nothing():
    rng = np.random.default_rng(1)
    images = (0.45 + 0.05 * rng.random((1, 64, 64))).astype(np.float32)  # a low-contrast patch
    clahe = equalize_slices(images.copy(), "clahe", clahe_clip=0.02)
    assert clahe.shape == images.shape and clahe.dtype == np.float32
    assert 0.0 <= clahe.min() and clahe.max() <= 1.0
    assert clahe.std() > 3 * images.std()
    np.testing.assert_array_equal(equalize_slices(images.copy(), "none"), images)


def test_preprocess_without_a_pixel_size_is_window_then_stretch_then_equalise():
    """What models from before the physical scale saw, and still see."""
    rng = np.random.default_rng(2)
    hu = rng.integers(-1024, 1500, size=(4, 40, 24)).astype(np.int16)
    params = PreprocessingParams(input_size=16, equalization="global", pixel_size_mm=None)
    expected = equalize_slices(resize_slices(window_hu(hu, params.window), 16), "global")
    result = preprocess_slices(hu, params)
    assert result.shape == (4, 16, 16) and result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("equalization", ["interior", "global", "clahe", "none"])
def test_a_batch_of_slices_gets_exactly_what_the_whole_volume_gets(equalization):
    """Training preprocesses whole volumes, inference batches of slices: the network must see the same."""
    rng = np.random.default_rng(3)
    hu = rng.normal(60, 150, size=(7, 32, 32)).astype(np.float32)
    params = PreprocessingParams(input_size=16, equalization=equalization)
    whole = preprocess_slices(hu, params, (0.8, 0.8))
    batches = [preprocess_slices(hu[:3], params, (0.8, 0.8)), preprocess_slices(hu[3:], params, (0.8, 0.8))]
    np.testing.assert_array_equal(np.concatenate(batches), whole)


def test_labels_are_resized_by_nearest_neighbour_on_the_same_pixel_centres():
    labels = np.zeros((1, 16, 16), dtype=np.uint8)
    labels[0, :, 8:] = 1
    labels[0, 14:, 14:] = 2
    resized = resize_labels(labels, PreprocessingParams(input_size=8, pixel_size_mm=None))
    assert resized.dtype == np.uint8
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[:, 4:] = 1
    expected[7, 7] = 2  # output pixel o samples input pixel floor((o + 0.5) * 2) = 2o + 1: 15, not 13
    np.testing.assert_array_equal(resized[0], expected)
    upsized = resize_labels(resized, PreprocessingParams(input_size=16, pixel_size_mm=None))
    np.testing.assert_array_equal(upsized[0], np.kron(expected, np.ones((2, 2), dtype=np.uint8)))


def test_params_round_trip_through_a_dict_and_refuse_nonsense():
    params = PreprocessingParams(window=(-150, 250), equalization="clahe", clahe_clip=0.02, input_size=128,
                                 context_slices=2, pixel_size_mm=1.2)
    assert PreprocessingParams.from_dict(params.to_dict()) == params
    assert PreprocessingParams.from_dict({**params.to_dict(), "pixel_size_mm": None}).pixel_size_mm is None
    assert params.to_dict()["window"] == [-150.0, 250.0]
    assert params.channels == 5
    with pytest.raises(ValueError, match="unknown preprocessing parameters: gamma"):
        PreprocessingParams.from_dict({"gamma": 2})
    for bad in (dict(window=(400, -100)), dict(equalization="adaptive"), dict(input_size=4),
                dict(context_slices=-1), dict(clahe_clip=0.0), dict(pixel_size_mm=0.0)):
        with pytest.raises(ValueError):
            PreprocessingParams(**bad)


def body_slice(air_rows, rng):
    """A 64-column slice: 24 rows of soft tissue, liver and bone, then ``air_rows`` rows of air."""
    body = rng.normal(80, 120, size=(24, 64)).clip(-300, 900)
    return np.concatenate([body, np.full((air_rows, 64), -1000.0)]).astype(np.float32)


def test_interior_equalisation_does_not_depend_on_the_air_in_the_slice():
    """The same body with 8 or 100 rows of air around it: the same values inside the window, whatever the air."""
    rng = np.random.default_rng(6)
    little, much = body_slice(8, rng), None
    much = np.concatenate([little[:24], np.full((100, 64), -1000.0, dtype=np.float32)])
    for equalization, same in (("interior", True), ("global", False)):
        params = PreprocessingParams(equalization=equalization, pixel_size_mm=None)
        first = equalize_slices(window_hu(little[None], params.window), equalization)[0, :24]
        second = equalize_slices(window_hu(much[None], params.window), equalization)[0, :24]
        assert np.allclose(first, second, atol=1e-6) == same, equalization


def test_interior_equalisation_keeps_the_window_ends_and_the_order():
    """Clipped pixels stay 0 and 1; inside, the cumulative share of the interior pixels, in the same order."""
    image = np.array([[0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0]], dtype=np.float32)
    equalised = equalize_slices(image[None].copy(), "interior")[0]
    assert equalised[0, 0] == 0.0 and equalised[0, 7] == 1.0
    assert np.all(np.diff(equalised[0]) >= 0)
    # 0.4, the second of four interior values, lies alone in bin 102 = [102/256, 103/256), 0.4 of the way up
    # it: the cumulative share, linear within the bin, goes from 1/4 to 2/4 there, so 1/4 + 0.4 / 4.
    np.testing.assert_allclose(equalised[0, 4], 0.35, atol=1e-5)


def test_a_slice_with_nothing_inside_the_window_stays_as_it_is():
    """Global equalisation turns an all-air slice into a constant 0.5; interior keeps it 0."""
    air = np.zeros((1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(equalize_slices(air.copy(), "interior"), air)
    assert not np.array_equal(equalize_slices(air.copy(), "global"), air)
