"""Reading DICOM series and image files into nodes, writing segmentations: Slicer's own readers and writers."""

import numpy as np
import pytest
import slicer

from dicom_factory import phantom_hu, rotation, write_series
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.io.dicom_series import find_series, read_series
from LiverResUNetLib.io.image_file import read_image, write_image
from LiverResUNetLib.scene.files import read_dicom_series_node, read_image_node, write_segmentation
from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation
from LiverResUNetLib.scene.volume_nodes import node_to_volume
from LiverResUNetLib.volume import Volume

pytestmark = pytest.mark.dicom  # run again with pydicom 2.4.4 by scripts/test.sh

DIRECTIONS = {
    "feet-first flipped": np.diag([-1.0, 1.0, -1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "oblique": rotation(20.0, 15.0),
}


@pytest.mark.parametrize("name", DIRECTIONS)
def test_dicom_series_loads_where_its_headers_place_it(tmp_path, name):
    hu = phantom_hu((5, 18, 22))
    write_series(tmp_path, hu, direction=DIRECTIONS[name], series=name, description="Abdomen")
    scene = slicer.vtkMRMLScene()
    [series] = find_series(tmp_path)
    node = read_dicom_series_node(scene, series)
    loaded, expected = node_to_volume(node), read_series(tmp_path)
    assert loaded.same_grid(expected, tolerance=1e-4)
    np.testing.assert_array_equal(loaded.array, expected.array)
    assert node.GetName() == "Abdomen"
    assert node.GetStorageNode() is not None and node.GetDisplayNode() is not None
    assert scene.GetNodeByID(node.GetID()) is node


@pytest.mark.parametrize("fixture, hu_range", [("totalsegmentator-example/ct_dicom", (-1024, 1839)),
                                               ("dcmqi-ct-3slice", (-3024, 1381))])
def test_real_scanner_series_load(real_fixtures, fixture, hu_range):
    [series] = [s for s in find_series(real_fixtures / fixture) if s.modality == "CT"]
    volume = node_to_volume(read_dicom_series_node(slicer.vtkMRMLScene(), series))
    assert (int(volume.array.min()), int(volume.array.max())) == hu_range
    assert volume.shape[0] == series.slice_count


def test_dicom_series_pixels_are_decoded_once_by_slicers_reader(real_fixtures, monkeypatch):
    """The core checks the grid from the headers alone; decoding the pixels a second time would fail here."""
    from LiverResUNetLib.io import dicom_pixels

    def refuse(*args):
        raise AssertionError("the core decoded a slice")

    monkeypatch.setattr(dicom_pixels, "_stored_values", refuse)
    [series] = [s for s in find_series(real_fixtures / "dcmqi-ct-3slice") if s.modality == "CT"]
    volume = node_to_volume(read_dicom_series_node(slicer.vtkMRMLScene(), series))
    assert volume.shape[0] == series.slice_count


def test_a_slice_cut_short_is_refused_before_slicers_reader_runs(tmp_path):
    paths = write_series(tmp_path, phantom_hu((4, 80, 80)))  # 12800 bytes per slice: deferred when headers are read
    paths[2].write_bytes(paths[2].read_bytes()[:-3000])
    [series] = find_series(tmp_path)
    with pytest.raises(InputError, match=rf"{paths[2].name} is truncated or corrupt: its pixel data has 9800 of the "
                                         "12800 bytes"):
        read_dicom_series_node(slicer.vtkMRMLScene(), series)


def test_a_series_the_core_refuses_adds_nothing(tmp_path):
    paths = write_series(tmp_path, phantom_hu((8, 8, 8)))
    paths[4].unlink()  # a missing slice in the middle
    [series] = find_series(tmp_path)
    scene = slicer.vtkMRMLScene()
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError):
        read_dicom_series_node(scene, series)
    assert scene.GetNumberOfNodes() == before


def test_image_file_loads_on_the_cores_grid(tmp_path):
    volume = Volume(phantom_hu((4, 6, 8)), (0.8, 0.9, 3.0), (1.0, 2.0, 3.0), DIRECTIONS["oblique"])
    path = write_image(volume, tmp_path / "case_7.nii.gz")
    node = read_image_node(slicer.vtkMRMLScene(), path)
    assert node.GetName() == "case_7"
    loaded = node_to_volume(node)
    assert loaded.same_grid(volume, tolerance=1e-4)
    np.testing.assert_array_equal(loaded.array, volume.array)


@pytest.mark.parametrize("name, reason", [("missing.nii.gz", "does not exist"), ("notes.txt", "neither")])
def test_bad_image_paths_are_refused(tmp_path, name, reason):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=reason):
        read_image_node(slicer.vtkMRMLScene(), tmp_path / name)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_label_map_outputs_hold_0_1_2_on_the_input_grid(tmp_path, suffix):
    grid = Volume(np.zeros((5, 9, 11), np.int16), (0.6, 0.7, 2.0), (3.0, -4.0, 5.0), DIRECTIONS["permuted"])
    labels = grid.with_array(np.zeros(grid.shape, np.uint8))
    labels.array[1:4, 2:7, 2:9] = 1
    labels.array[2, 3:5, 4:6] = 2
    path = write_segmentation(labels_to_segmentation(labels, closed_surface=False), tmp_path / f"out{suffix}",
                              grid)
    written = read_image(path)
    assert written.same_grid(grid, tolerance=1e-4)
    np.testing.assert_array_equal(written.array, labels.array)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_unknown_output_type_is_refused_and_writes_nothing(tmp_path):
    labels = Volume(np.ones((2, 3, 4), np.uint8))
    with pytest.raises(InputError, match="use .seg.nrrd or a label map"):
        write_segmentation(labels_to_segmentation(labels, closed_surface=False), tmp_path / "out.vtk", labels)
    assert not list(tmp_path.iterdir())
