"""Volume <-> MRML volume node on real MRML (slicer-core): the one LPS <-> RAS conversion."""

import numpy as np
import pytest
import slicer
import vtk

from dicom_factory import rotation
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.image_file import write_image
from LiverResUNetLib.scene.volume_nodes import lps_to_ras, node_to_volume
from LiverResUNetLib.volume import Volume
from scene_factory import add_volume_node

DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "oblique": rotation(25.0, 12.0),
}


def test_lps_to_ras_negates_the_first_two_axes():
    assert lps_to_ras((10.0, -20.0, 30.0)) == [-10.0, 20.0, 30.0]


def test_a_volume_node_gets_slicers_ras_geometry():
    volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), (0.5, 0.7, 2.0), (10.0, 20.0, 30.0))
    scene = slicer.vtkMRMLScene()
    node = add_volume_node(volume, scene, "CT")
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix),
                               [[-0.5, 0, 0, -10.0], [0, -0.7, 0, -20.0], [0, 0, 2.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), volume.array)
    assert scene.GetNodeByID(node.GetID()) is node
    assert node.GetDisplayNode() is not None


@pytest.mark.parametrize("name", DIRECTIONS)
def test_round_trip_keeps_voxels_and_geometry(name):
    volume = Volume(np.random.default_rng(1).integers(-1000, 1000, (5, 6, 7)).astype(np.int16),
                    (0.8, 0.6, 2.5), (-12.0, 40.0, 7.5), DIRECTIONS[name])
    back = node_to_volume(add_volume_node(volume, slicer.vtkMRMLScene(), name))
    assert back.same_grid(volume, tolerance=1e-9)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.array.dtype == volume.array.dtype


@pytest.mark.parametrize("name", ["flipped", "oblique"])
def test_slicers_own_nifti_reader_agrees_with_the_core(tmp_path, name):
    """A file read by Slicer's storage node (RAS) lands on the grid the core (LPS) wrote."""
    volume = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), (0.9, 1.1, 3.0), (5.0, -6.0, 7.0),
                    DIRECTIONS[name])
    path = write_image(volume, tmp_path / "ct.nii.gz")
    node = slicer.vtkMRMLScalarVolumeNode()
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    back = node_to_volume(node)
    assert back.same_grid(volume, tolerance=1e-4)
    np.testing.assert_array_equal(back.array, volume.array)


def test_node_to_volume_is_a_copy():
    node = add_volume_node(Volume(np.zeros((2, 2, 2), np.int16)), slicer.vtkMRMLScene(), "CT")
    volume = node_to_volume(node)
    slicer.util.arrayFromVolume(node)[:] = 5
    assert not volume.array.any()


def test_node_without_voxels_is_refused_by_name():
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Empty CT")
    with pytest.raises(InputError, match="Empty CT.*no image data"):
        node_to_volume(node)


def test_colour_volume_is_refused():
    node = slicer.vtkMRMLVectorVolumeNode()
    node.SetName("Photo")
    slicer.util.updateVolumeFromArray(node, np.zeros((2, 3, 4, 3), np.uint8))
    with pytest.raises(InputError, match="Photo.*3 components"):
        node_to_volume(node)
