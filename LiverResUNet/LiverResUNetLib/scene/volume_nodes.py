"""Core Volume <-> MRML volume node: the one place where DICOM's LPS meets Slicer's RAS.

A Volume keeps its voxel-to-patient mapping in LPS; a Slicer node keeps an IJK-to-RAS matrix. Both index the
same array ``[k, j, i]``, so converting is a sign flip of the first two patient axes and nothing else.
A node under a parent transform is read in its own (local) coordinates; results made from it belong under the
same transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import slicer
import vtk

from LiverResUNetLib.errors import input_error
from LiverResUNetLib.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse: RAS_TO_LPS is the same matrix


def lps_to_ras(point: Sequence[float]) -> list[float]:
    """A patient-space point (LPS mm) in Slicer's RAS mm."""
    return [-float(point[0]), -float(point[1]), float(point[2])]


def ijk_to_ras(volume: Volume) -> np.ndarray:
    """4x4 numpy matrix mapping (i, j, k, 1) voxel indices of ``volume`` to RAS millimetres."""
    return LPS_TO_RAS @ volume.ijk_to_lps()


def vtk_matrix(matrix: npt.ArrayLike) -> vtk.vtkMatrix4x4:
    """A vtkMatrix4x4 holding a 4x4 numpy matrix."""
    values = np.asarray(matrix, dtype=float)
    result = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            result.SetElement(row, column, float(values[row, column]))
    return result


def volume_from_ijk_to_ras(array: np.ndarray, matrix: npt.ArrayLike | vtk.vtkMatrix4x4,
                           metadata: dict[str, Any] | None = None) -> Volume:
    """A Volume holding ``array`` ``[k, j, i]`` placed by an IJK-to-RAS ``matrix`` (numpy or vtkMatrix4x4)."""
    if isinstance(matrix, vtk.vtkMatrix4x4):
        matrix = slicer.util.arrayFromVTKMatrix(matrix)
    lps = LPS_TO_RAS @ np.asarray(matrix, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return Volume(array, tuple(spacing), tuple(lps[:3, 3]), lps[:3, :3] / spacing[None, :], dict(metadata or {}))


def fill_volume_node(node: slicer.vtkMRMLScalarVolumeNode, volume: Volume) -> slicer.vtkMRMLScalarVolumeNode:
    """Give ``node`` (in a scene or not) the voxels and the exact geometry of ``volume``."""
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras(volume)))
    return node


def node_to_volume(node: slicer.vtkMRMLScalarVolumeNode | None) -> Volume:
    """The voxels and geometry of a scalar volume node as a Volume (a copy: later edits of the node do not
    reach it). Refuses nodes without voxels and multi-component (colour, vector) volumes."""
    image = node.GetImageData() if node is not None else None
    name = node.GetName() if node is not None else "volume"
    if node is None or image is None or image.GetNumberOfPoints() == 0:
        raise input_error(name, "the volume node holds no image data")
    if image.GetNumberOfScalarComponents() != 1:
        raise input_error(name, f"expected a scalar (grey-level) volume, got {image.GetNumberOfScalarComponents()} "
                                "components per voxel")
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    return volume_from_ijk_to_ras(array, matrix, {"source": name})
