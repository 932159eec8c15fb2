"""benchmarks/ceiling_pyliverlesionseg.py puts the pretrained package's masks back on the CT's exact voxel grid.

The package writes its masks as RAS-canonical NIfTI: for a CT stored like 3D-IRCADb-01 (LPS axes, identity
direction) that is the CT's grid with the i and j axes reversed. The ceiling's scores are only right if those
masks land voxel for voxel where the package put them, and a mask on any other grid is refused. Neither needs
the ceiling's own environment (TensorFlow): only the project's image IO, as here.
"""

import numpy as np
import pytest
from benchmark_script import load_benchmark

from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.volume import Volume


@pytest.fixture(scope="module")
def ceiling():
    return load_benchmark("ceiling_pyliverlesionseg")


@pytest.fixture
def ct():
    """A small CT on an anisotropic LPS grid, positioned like 3D-IRCADb-01 (origin [x, y, z], identity axes)."""
    return Volume(np.zeros((5, 7, 9), dtype=np.int16), (0.57, 0.57, 1.6), (-140.0, -120.5, 33.6))


def mask_of(ct):
    """An asymmetric mask: any axis reversed by mistake moves it."""
    mask = np.zeros(ct.shape, dtype=np.uint8)
    mask[1:3, 2:6, 1:4] = 1
    mask[4, 6, 8] = 1
    return mask


def ras_canonical(volume, mask):
    """``mask`` as the package writes it: its array reversed along i and j, the origin at the far i, j corner."""
    far_corner = volume.ijk_to_lps() @ np.array([volume.shape[2] - 1, volume.shape[1] - 1, 0, 1.0])
    return Volume(np.flip(mask, axis=(1, 2)), volume.spacing, far_corner[:3], np.diag([-1.0, -1.0, 1.0]))


def test_a_ras_canonical_nifti_mask_lands_on_the_ct_voxels_it_came_from(ceiling, ct, tmp_path):
    mask = mask_of(ct)
    written = write_image(ras_canonical(ct, mask), tmp_path / "mask.nii.gz")
    on_grid = ceiling.on_ct_grid(read_image(written), ct)
    assert on_grid.dtype == bool and on_grid.shape == ct.shape
    assert np.array_equal(on_grid, mask.astype(bool))


def test_a_mask_on_the_ct_grid_itself_is_taken_as_it_is(ceiling, ct, tmp_path):
    mask = mask_of(ct)
    written = write_image(ct.with_array(mask), tmp_path / "mask.nii.gz")
    assert np.array_equal(ceiling.on_ct_grid(read_image(written), ct), mask.astype(bool))


def test_a_mask_shifted_by_a_voxel_is_refused_naming_its_file(ceiling, ct, tmp_path):
    shifted = ras_canonical(ct, mask_of(ct))
    shifted.origin = tuple(np.add(shifted.origin, (0.0, 0.0, 1.6)))
    written = write_image(shifted, tmp_path / "shifted.nii.gz")
    with pytest.raises(InputError, match="shifted.nii.gz.*not on the CT's voxel grid"):
        ceiling.on_ct_grid(read_image(written), ct)
