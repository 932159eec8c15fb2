"""Post-processing: each rule on a hand-made label map, each rule switched off, and the size threshold in mm³."""

import numpy as np
import pytest

from LiverResUNetLib.inference.postprocessing import PostprocessOptions, postprocess

BACKGROUND, LIVER, TUMOR = 0, 1, 2
OFF = dict(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False, min_tumor_mm3=0.0)


def liver_with_extras():
    """A 12 x 20 x 20 map: a big liver block, a small separate liver blob, an axial hole, tumors of each kind."""
    labels = np.zeros((12, 20, 20), dtype=np.uint8)
    labels[2:10, 3:15, 3:15] = LIVER  # the liver: 8 x 12 x 12 = 1152 voxels
    labels[4:6, 17:19, 17:19] = LIVER  # a separate liver-like blob (spleen?), 8 voxels
    labels[5, 7:10, 7:10] = BACKGROUND  # a hole in one axial slice, enclosed by liver in that slice
    labels[3:8, 5:9, 10:14] = TUMOR  # a tumor inside the liver: 5 x 4 x 4 = 80 voxels
    labels[8, 12, 5] = TUMOR  # a one-voxel tumor speck inside the liver
    labels[1, 17:19, 2:4] = TUMOR  # a tumor touching no liver voxel (kidney?), 4 voxels
    return labels


def test_default_post_processing_applies_every_rule():
    labels = liver_with_extras()
    result = postprocess(labels, (1.0, 1.0, 1.0))
    assert result.dtype == np.uint8
    assert np.all(result[4:6, 17:19, 17:19] == BACKGROUND)  # small blob gone
    assert np.all(result[5, 7:10, 7:10] == LIVER)  # hole filled
    assert np.all(result[3:8, 5:9, 10:14] == TUMOR)  # real tumor kept
    assert result[8, 12, 5] == LIVER  # speck became liver
    assert np.all(result[1, 17:19, 2:4] == BACKGROUND)  # tumor outside the liver dropped
    assert np.count_nonzero(result == TUMOR) == 80
    assert np.count_nonzero(result) == 8 * 12 * 12


def test_input_is_not_modified_and_everything_off_changes_nothing():
    labels = liver_with_extras()
    before = labels.copy()
    np.testing.assert_array_equal(postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(**OFF)), before)
    postprocess(labels, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize("switched_off, unchanged", [
    (dict(keep_largest_liver=False), (slice(4, 6), slice(17, 19), slice(17, 19))),
    (dict(fill_liver_holes=False), (5, slice(7, 10), slice(7, 10))),
    # The outside tumor is its own component and below the size threshold: only with those rules off too
    # does it show what tumor_inside_liver does alone.
    (dict(tumor_inside_liver=False, keep_largest_liver=False, min_tumor_mm3=0.0), (1, slice(17, 19), slice(2, 4))),
    (dict(min_tumor_mm3=0.0), (8, 12, 5)),
])
def test_each_rule_can_be_turned_off(switched_off, unchanged):
    labels = liver_with_extras()
    result = postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(**switched_off))
    np.testing.assert_array_equal(result[unchanged], labels[unchanged])
    assert not np.array_equal(postprocess(labels, (1.0, 1.0, 1.0))[unchanged], labels[unchanged])


def test_largest_component_counts_tumor_voxels_as_liver():
    """A liver split by the network into a liver part and a tumor part is still one organ."""
    labels = np.zeros((4, 10, 10), dtype=np.uint8)
    labels[1:3, 1:5, 1:4] = LIVER  # 24 voxels
    labels[1:3, 1:5, 4:8] = TUMOR  # 32 voxels, touching the liver part
    labels[1:3, 7:9, 8:10] = LIVER  # 8 voxels apart
    result = postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(min_tumor_mm3=0.0))
    np.testing.assert_array_equal(result[1:3, 1:5, 1:8], labels[1:3, 1:5, 1:8])
    assert np.all(result[1:3, 7:9, 8:10] == BACKGROUND)


def test_holes_are_filled_per_axial_slice_even_when_open_in_3d():
    """A vessel running through the liver along k: a hole in every axial slice, open at both ends in 3D."""
    labels = np.zeros((6, 12, 12), dtype=np.uint8)
    labels[:, 2:10, 2:10] = LIVER
    labels[:, 5:7, 5:7] = BACKGROUND  # a channel through every slice, reaching both ends of the volume
    labels[2, 0:12, 5] = BACKGROUND  # in slice 2 the channel is cut open to the edge: not a hole there
    result = postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(keep_largest_liver=False))
    for k in (0, 1, 3, 4, 5):
        assert np.all(result[k, 5:7, 5:7] == LIVER)
    np.testing.assert_array_equal(result[2], labels[2])
    # Background only diagonally enclosed is not a hole: the filling uses 4-connected background.
    ring = np.zeros((1, 5, 5), dtype=np.uint8)
    ring[0, 1:4, 1:4] = LIVER
    ring[0, 2, 2] = BACKGROUND
    assert postprocess(ring, (1.0, 1.0, 1.0))[0, 2, 2] == LIVER


def test_tumor_size_threshold_is_in_cubic_millimetres():
    """The same 8-voxel tumor is kept at 2 mm³ voxels (16 mm³) and becomes liver at 1 mm³ voxels (8 mm³)."""
    labels = np.zeros((6, 10, 10), dtype=np.uint8)
    labels[1:5, 1:9, 1:9] = LIVER
    labels[2:4, 4:6, 4:6] = TUMOR
    options = PostprocessOptions(min_tumor_mm3=10.0)
    assert np.count_nonzero(postprocess(labels, (1.0, 1.0, 2.0), options) == TUMOR) == 8
    assert np.count_nonzero(postprocess(labels, (1.0, 1.0, 1.0), options) == TUMOR) == 0
    assert np.count_nonzero(postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(min_tumor_mm3=0.0)) == TUMOR) == 8


def test_empty_and_liver_free_maps():
    empty = np.zeros((3, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(postprocess(empty, (1.0, 1.0, 1.0)), empty)
    tumor_only = empty.copy()
    tumor_only[1, 1:3, 1:3] = TUMOR
    np.testing.assert_array_equal(postprocess(tumor_only, (1.0, 1.0, 1.0)), empty)


def test_options_round_trip_and_refuse_unknown_keys():
    options = PostprocessOptions(keep_largest_liver=False, min_tumor_mm3=25.0)
    assert PostprocessOptions.from_dict(options.to_dict()) == options
    with pytest.raises(ValueError, match="unknown post-processing options: smooth"):
        PostprocessOptions.from_dict({"smooth": True})


def test_tumor_inside_liver_alone_drops_only_tumors_touching_no_liver():
    labels = liver_with_extras()
    result = postprocess(labels, (1.0, 1.0, 1.0), PostprocessOptions(**{**OFF, "tumor_inside_liver": True}))
    assert np.all(result[1, 17:19, 2:4] == BACKGROUND)
    outside = np.zeros(labels.shape, dtype=bool)
    outside[1, 17:19, 2:4] = True
    np.testing.assert_array_equal(result[~outside], labels[~outside])
