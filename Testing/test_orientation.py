"""Canonical orientation: the same CT stored any way gives the same masks in patient space."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import LoadedModel
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.preprocessing.orientation import canonical_axes, from_canonical, to_canonical
from LiverResUNetLib.volume import Volume

SHAPE = (10, 14, 18)  # k, j, i: every axis a different length, so a wrong permutation cannot go unnoticed


class StandInNetwork(torch.nn.Module):
    """A deterministic 'network' that is sensitive to every geometric mistake.

    Liver where the slice below is bright, tumor where the slice above is brighter still; both logits
    carry a ramp along the rows and the columns, so a flip, a transposition or swapped neighbour channels
    change the labels.
    """

    def forward(self, inputs):
        below, centre, above = inputs[:, 0], inputs[:, 1], inputs[:, 2]
        rows = torch.linspace(0.0, 0.4, inputs.shape[-2])[:, None]
        columns = torch.linspace(0.0, 0.3, inputs.shape[-1])[None, :]
        background = torch.full_like(centre, 0.9)
        liver = below + 0.5 * centre + rows
        tumor = 1.5 * above + columns - 0.2
        return torch.stack([background, liver, tumor], dim=1)


def stand_in_model(input_size=16):
    params = PreprocessingParams(input_size=input_size, equalization="none", window=(-100.0, 300.0))
    return LoadedModel(StandInNetwork(), {"preprocessing": params.to_dict()})


def reference_ct():
    rng = np.random.default_rng(7)
    hu = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 1.5)
    hu = (hu - hu.mean()) / hu.std() * 150 + 80
    direction = np.eye(3)
    return Volume(hu.astype(np.float32), (0.8, 0.7, 2.5), (-12.0, 30.0, 400.0), direction)


def rotation(axis, degrees):
    angle = np.radians(degrees)
    cosine, sine = np.cos(angle), np.sin(angle)
    a, b = [index for index in range(3) if index != axis]
    matrix = np.eye(3)
    matrix[a, a], matrix[a, b], matrix[b, a], matrix[b, b] = cosine, -sine, sine, cosine
    return matrix


def restored(volume, voxel_axes, flips):
    """The same CT stored another way: voxel axis v of the new grid is old voxel axis ``voxel_axes[v]``,
    reversed where ``flips[v]``. Every voxel keeps its place in patient space."""
    array = np.transpose(volume.array, [2 - voxel_axes[axis] for axis in (2, 1, 0)])
    flip_axes = tuple(2 - axis for axis in range(3) if flips[axis])
    if flip_axes:
        array = np.flip(array, axis=flip_axes)
    corner = np.array([volume.array.shape[2 - voxel_axes[axis]] - 1 if flips[axis] else 0 for axis in range(3)])
    old_corner = np.zeros(3)
    old_corner[list(voxel_axes)] = corner
    origin = volume.ijk_to_lps()[:3] @ np.append(old_corner, 1.0)
    direction = np.stack([volume.direction[:, voxel_axes[axis]] * (-1 if flips[axis] else 1) for axis in range(3)],
                         axis=1)
    spacing = [volume.spacing[voxel_axes[axis]] for axis in range(3)]
    return Volume(np.ascontiguousarray(array), spacing, origin, direction)


def lps_of_every_voxel(volume):
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij")
    voxels = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(k.size)])
    return (volume.ijk_to_lps() @ voxels)[:3].T


def as_patient_space_dict(volume):
    """{rounded LPS position: value} for every voxel: what the CT (or mask) is, independent of storage."""
    positions = np.round(lps_of_every_voxel(volume), 3)
    return dict(zip(map(tuple, positions), volume.array.ravel().tolist()))


STORAGES = {
    "feet-first (k reversed)": ((0, 1, 2), (False, False, True)),
    "transposed (i and j swapped)": ((1, 0, 2), (False, False, False)),
    "sagittal slices (axes permuted, flipped)": ((2, 0, 1), (True, False, False)),
    "coronal slices, rows reversed": ((0, 2, 1), (False, True, True)),
}


@pytest.mark.parametrize("storage", STORAGES)
def test_the_same_ct_stored_another_way_is_the_same_ct(storage):
    """The test's own re-storage keeps every voxel's value at its patient-space position."""
    ct = reference_ct()
    other = restored(ct, *STORAGES[storage])
    assert as_patient_space_dict(other) == as_patient_space_dict(ct)


@pytest.mark.parametrize("storage", STORAGES)
def test_canonical_view_is_the_same_whatever_the_storage(storage):
    ct = reference_ct()
    other = restored(ct, *STORAGES[storage])
    canonical = to_canonical(other)
    np.testing.assert_array_equal(canonical.array, ct.array)
    np.testing.assert_allclose(canonical.spacing, ct.spacing)
    np.testing.assert_allclose(canonical.origin, ct.origin, atol=1e-9)
    np.testing.assert_allclose(canonical.direction, np.eye(3), atol=1e-12)
    assert np.shares_memory(canonical.array, other.array), "the canonical array must be a view, not a copy"
    np.testing.assert_array_equal(from_canonical(canonical.array, canonical), other.array)


@pytest.mark.parametrize("storage", STORAGES)
def test_predicted_masks_are_the_same_in_patient_space(storage):
    ct = reference_ct()
    model = stand_in_model()
    reference = predict_volume(ct, model, device="cpu")
    assert set(np.unique(reference.array)) == {0, 1, 2}, "the stand-in must produce every label"
    other = restored(ct, *STORAGES[storage])
    labels = predict_volume(other, model, device="cpu")
    assert labels.same_grid(other)
    assert as_patient_space_dict(labels) == as_patient_space_dict(reference)


def test_the_stand_in_would_notice_a_geometric_mistake():
    """Guards the test above: reversing or transposing the slices before predicting changes the masks."""
    ct = reference_ct()
    model = stand_in_model()
    reference = predict_volume(ct, model, device="cpu").array
    for axis in range(3):
        wrong = predict_volume(Volume(np.flip(ct.array, axis).copy(), ct.spacing), model, device="cpu").array
        assert not np.array_equal(np.flip(wrong, axis), reference)
    wrong = predict_volume(Volume(ct.array.transpose(0, 2, 1).copy(), ct.spacing), model, device="cpu").array
    assert not np.array_equal(wrong.transpose(0, 2, 1), reference)


@pytest.mark.parametrize("axis, degrees", [(2, 20.0), (0, -15.0), (1, 30.0)])
def test_an_oblique_ct_is_sliced_along_its_nearest_axial_axes(axis, degrees):
    """A slightly oblique acquisition is not resampled: it is sliced along its own axes, the nearest to axial.

    The same voxels stored obliquely (rotated direction) and then transposed / reversed give the same masks
    on every voxel as the oblique CT stored plainly.
    """
    ct = reference_ct()
    oblique = Volume(ct.array, ct.spacing, ct.origin, rotation(axis, degrees) @ ct.direction)
    model = stand_in_model()
    reference = predict_volume(oblique, model, device="cpu")
    np.testing.assert_array_equal(reference.array, predict_volume(ct, model, device="cpu").array)
    for voxel_axes, flips in STORAGES.values():
        other = restored(oblique, voxel_axes, flips)
        assert as_patient_space_dict(predict_volume(other, model, device="cpu")) == as_patient_space_dict(reference)


def test_nearest_axes_are_chosen_jointly():
    """At 45 degrees between i and j the joint best assignment still uses every axis once."""
    direction = rotation(2, 45.0)
    axes, flipped = canonical_axes(direction)
    assert sorted(axes) == [0, 1, 2]
    np.testing.assert_array_equal(canonical_axes(-np.eye(3)), ((0, 1, 2), (True, True, True)))
    permuted = np.eye(3)[:, [2, 0, 1]]  # i -> S, j -> L, k -> P
    assert canonical_axes(permuted) == ((1, 2, 0), (False, False, False))


def test_from_canonical_refuses_an_array_of_another_shape():
    canonical = to_canonical(reference_ct())
    with pytest.raises(ValueError, match="canonical grid"):
        from_canonical(np.zeros((3, 3, 3)), canonical)
