"""Files in and out of a scene without the Slicer application: the readers and writers Slicer itself uses.

A DICOM series is read by Slicer's volume storage node from the file list sorted along the slice normal (the
way Slicer's DICOM module loads it), and checked against the grid the core's DICOM reader derives from the
headers alone (the pixels are decoded once, by Slicer), so a series ITK would misplace is refused rather than
segmented in the wrong place. Outputs are written
atomically by Slicer's storage nodes: ``.seg.nrrd`` (segments, names, colours, terminology), or a label map
``.nii.gz`` / ``.nrrd`` (0/1/2 on the input's grid).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import slicer
import vtk

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.dicom_series import SeriesInfo, read_series_headers
from LiverResUNetLib.io.image_file import is_image_file
from LiverResUNetLib.scene.results_table import table_rows
from LiverResUNetLib.scene.segmentation_nodes import segmentation_to_labels
from LiverResUNetLib.scene.volume_nodes import fill_volume_node, node_to_volume
from LiverResUNetLib.volume import Volume

SEGMENTATION_SUFFIX = ".seg.nrrd"
LABELMAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def _add_loaded(scene: slicer.vtkMRMLScene, node: slicer.vtkMRMLScalarVolumeNode,
                storage_node: slicer.vtkMRMLStorageNode, name: str) -> slicer.vtkMRMLScalarVolumeNode:
    """Put a node read outside the scene into it, with its storage and display nodes."""
    node.SetName(scene.GenerateUniqueName(name))
    scene.AddNode(storage_node)
    scene.AddNode(node)
    node.SetAndObserveStorageNodeID(storage_node.GetID())
    node.CreateDefaultDisplayNodes()
    return node


def _read_with_storage_node(files: Sequence[str | Path], where: str | Path
                            ) -> tuple[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLVolumeArchetypeStorageNode]:
    """A scalar volume node (outside any scene) read by Slicer's archetype reader from ``files`` in order."""
    storage_node = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage_node.SetFileName(str(files[0]))
    if len(files) > 1:
        storage_node.ResetFileNameList()
        for path in files:
            storage_node.AddFileName(str(path))
        storage_node.SetSingleFile(0)
    node = slicer.vtkMRMLScalarVolumeNode()
    if not storage_node.ReadData(node) or node.GetImageData() is None:
        raise input_error(where, "Slicer's volume reader could not read it")
    return node, storage_node


def read_dicom_series_node(scene: slicer.vtkMRMLScene, series: SeriesInfo) -> slicer.vtkMRMLScalarVolumeNode:
    """Load a DICOM series (a ``SeriesInfo`` from ``find_series``) into a new volume node of ``scene``, from
    its file list sorted along the slice normal, as Slicer's DICOM module does.

    Raises:
        InputError: what the core's header checks refuse (not CT, missing or inconsistent slices, a transfer
            syntax with no decoder...), a file Slicer cannot read, or a series that Slicer's reader would place
            differently from its headers.
    """
    stack, _, _ = read_series_headers(series.files)
    node, storage_node = _read_with_storage_node(series.files, series.folder)
    if not node_to_volume(node).same_grid(stack.grid(), tolerance=1e-3):
        raise input_error(series.folder, f"series {series.series_uid}: Slicer's DICOM reader places its voxels "
                                         "differently from what its headers say; convert it to NIfTI/NRRD first")
    return _add_loaded(scene, node, storage_node, series.description or series.folder.name)


def read_image_node(scene: slicer.vtkMRMLScene, path: str | Path) -> slicer.vtkMRMLScalarVolumeNode:
    """Load an image file (.nii, .nii.gz, .nrrd, .mha...) into a new volume node of ``scene``."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "does not exist")
    if not is_image_file(path):
        raise input_error(path, "is neither a DICOM folder nor an image file (.nii, .nii.gz, .nrrd, .mha)")
    node, storage_node = _read_with_storage_node([path], path)
    return _add_loaded(scene, node, storage_node, path.name.split(".")[0])


# The MRML types the layers above name without importing slicer themselves.
Scene = slicer.vtkMRMLScene
VolumeNode = slicer.vtkMRMLScalarVolumeNode
SegmentationNode = slicer.vtkMRMLSegmentationNode


def new_scene() -> slicer.vtkMRMLScene:
    """A bare MRML scene for headless work, VTK's warnings about colour tables only the application has silenced."""
    vtk.vtkObject.GlobalWarningDisplayOff()
    return slicer.vtkMRMLScene()


def read_seg_nrrd(path: str | Path, ct: Volume) -> Volume:
    """The label Volume of a .seg.nrrd file on ``ct``'s grid."""
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    node = slicer.vtkMRMLSegmentationNode()
    if not storage.ReadData(node):
        raise input_error(path, "Slicer's segmentation reader could not read it")
    return segmentation_to_labels(node, ct)


def is_segmentation_path(path: str | Path) -> bool:
    """True when ``path`` names a file :func:`write_segmentation` writes."""
    return Path(path).name.lower().endswith((SEGMENTATION_SUFFIX,) + LABELMAP_SUFFIXES)


def write_segmentation(segmentation_node: slicer.vtkMRMLSegmentationNode, path: str | Path, reference: Volume
                       ) -> Path:
    """Write a segmentation as ``.seg.nrrd``, or as a label map (0/1/2) on ``reference``'s grid (a Volume)
    for ``.nii.gz`` / ``.nii`` / ``.nrrd``. The file appears complete or not at all."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(SEGMENTATION_SUFFIX):
        node, storage_node = segmentation_node, slicer.vtkMRMLSegmentationStorageNode()
    elif name.endswith(LABELMAP_SUFFIXES):
        node = fill_volume_node(slicer.vtkMRMLLabelMapVolumeNode(), segmentation_to_labels(segmentation_node,
                                                                                            reference))
        storage_node = slicer.vtkMRMLVolumeArchetypeStorageNode()
    else:
        raise input_error(path, f"cannot be written: use {SEGMENTATION_SUFFIX} or a label map "
                                f"({', '.join(LABELMAP_SUFFIXES)})")
    storage_node.SetUseCompression(True)
    with atomic_path(path) as temporary:
        temporary.unlink()  # the storage node would announce that it replaces the empty placeholder
        storage_node.SetFileName(str(temporary))
        if not storage_node.WriteData(node):
            raise OSError(f"{path}: Slicer's writer failed")
    return path


def write_table_csv(table_node: slicer.vtkMRMLTableNode, path: str | Path) -> Path:
    """Write a table node as CSV, header first, with the strings Slicer shows."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows(table_rows(table_node))
    return Path(path)
