"""Lesion-by-lesion review on Slicer's scene: jump the views to a lesion, reject one, grow one from a click.

What a lesion is and what an edit does is decided by :mod:`LiverResUNetLib.lesion_review` (the core, shared with
the browser review); this module reads the segmentation node as a label Volume, lets the core edit it, writes
back only the voxels that changed (through the Segmentations logic, as the Segment Editor does, so undo and
shared layers keep working) and replaces the segmentation's results table with one that counts the new lesions.
"""

from collections.abc import Sequence

import numpy as np
import slicer
import vtk

from LiverResUNetLib.lesion_review import grow_lesion, reject_lesion, voxel_at_lps
from LiverResUNetLib.measurements import measure_liver
from LiverResUNetLib.scene.logic import RESULTS_TABLE_ROLE
from LiverResUNetLib.scene.results_table import lesion_of_row, results_table
from LiverResUNetLib.scene.segmentation_nodes import (
    oriented_image,
    segment_mask,
    segment_roles,
    segmentation_to_labels,
)
from LiverResUNetLib.scene.volume_nodes import LPS_TO_RAS, node_to_volume
from LiverResUNetLib.volume import LIVER, TUMOR, Volume


def _through_parents(node: slicer.vtkMRMLTransformableNode, point: tuple[float, ...],
                     to_world: bool) -> tuple[float, ...]:
    """A point in ``node``'s own coordinates in world RAS (the views' coordinates) through its parent transforms,
    or back (``to_world=False``)."""
    parent = node.GetParentTransformNode()
    if parent is None:
        return tuple(point)
    transform = vtk.vtkGeneralTransform()
    (parent.GetTransformToWorld if to_world else parent.GetTransformFromWorld)(transform)
    return tuple(transform.TransformPoint(point))


def write_label_changes(segmentation_node: slicer.vtkMRMLSegmentationNode, before: Volume, after: Volume) -> None:
    """Write the voxels where label Volume ``after`` differs from ``before`` (what the node holds now) into the
    node's liver and tumor segments, through the Segmentations logic as the Segment Editor does."""
    changed = before.array != after.array
    if not changed.any():
        return
    liver_ids, tumor_ids = segment_roles(segmentation_node)
    for ids, label in ((liver_ids, LIVER), (tumor_ids, TUMOR)):
        for position, segment_id in enumerate(ids):
            mask = segment_mask(segmentation_node, segment_id, before)
            # The first segment of a role takes the role's new voxels; any other one loses the changed voxels.
            mask[changed] = (after.array[changed] == label) if position == 0 else 0
            slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
                oriented_image(before, mask.astype(np.uint8)), segmentation_node, segment_id,
                slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def jump_slices_to(scene: slicer.vtkMRMLScene, point_ras: Sequence[float]) -> None:
    """Centre every slice view of ``scene`` on ``point_ras`` (world RAS): Slicer's markups idiom,
    ``vtkMRMLSliceNode.JumpAllSlices`` with centred jumps. The Slicer module's table and the browser's list both
    jump with it."""
    r, a, s = point_ras
    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, r, a, s, slicer.vtkMRMLSliceNode.CenteredJumpSlice)


class LesionReviewLogic:
    """The results table's lesion rows made actionable, on an explicit scene (``slicer.mrmlScene`` in Slicer)."""

    def __init__(self, scene: slicer.vtkMRMLScene) -> None:
        self.scene = scene

    def jumpToRow(self, segmentationNode: slicer.vtkMRMLSegmentationNode, row: int) -> int | None:
        """Centre every slice view on the lesion of results-table ``row`` (Slicer's markups idiom:
        ``vtkMRMLSliceNode.JumpAllSlices`` with centred jumps). Returns the lesion number, None for other rows."""
        table = segmentationNode.GetNodeReference(RESULTS_TABLE_ROLE)
        lesion = lesion_of_row(table, row) if table is not None else None
        if lesion is None:
            return None
        number, centre = lesion
        jump_slices_to(self.scene, _through_parents(segmentationNode, centre, to_world=True))
        return number

    def rejectLesion(self, segmentationNode: slicer.vtkMRMLSegmentationNode,
                     inputVolume: slicer.vtkMRMLScalarVolumeNode, number: int) -> Volume:
        """Remove lesion ``number`` (a false positive): its voxels become liver. Returns the new label Volume."""
        before = segmentation_to_labels(segmentationNode, node_to_volume(inputVolume))
        after = reject_lesion(before, number)
        self._apply(segmentationNode, inputVolume, before, after)
        return after

    def addLesionAt(self, segmentationNode: slicer.vtkMRMLSegmentationNode,
                    inputVolume: slicer.vtkMRMLScalarVolumeNode, pointRas: tuple[float, float, float]) -> Volume:
        """Grow a lesion from one click at world RAS ``pointRas`` inside the liver (the core's seeded region
        growing); it stays editable in the Segment Editor. Returns the new label Volume.

        Raises:
            lesion_review.SeedOutsideLiver: the click is not on the liver.
        """
        ct = node_to_volume(inputVolume)
        before = segmentation_to_labels(segmentationNode, ct)
        pointLps = LPS_TO_RAS[:3, :3] @ np.asarray(_through_parents(inputVolume, pointRas, to_world=False))
        after = grow_lesion(ct, before, voxel_at_lps(ct, pointLps))
        self._apply(segmentationNode, inputVolume, before, after)
        return after

    def _apply(self, segmentationNode: slicer.vtkMRMLSegmentationNode, inputVolume: slicer.vtkMRMLScalarVolumeNode,
               before: Volume, after: Volume) -> None:
        write_label_changes(segmentationNode, before, after)
        self.replaceResultsTable(segmentationNode, inputVolume, after)

    def replaceResultsTable(self, segmentationNode: slicer.vtkMRMLSegmentationNode,
                            inputVolume: slicer.vtkMRMLScalarVolumeNode, labels: Volume) -> None:
        """Give ``segmentationNode`` a new results table measuring ``labels``; the old one leaves the scene."""
        table = results_table(measure_liver(labels), f"{inputVolume.GetName()} liver results")
        table.SetName(self.scene.GenerateUniqueName(table.GetName()))
        self.scene.AddNode(table)
        old = segmentationNode.GetNodeReference(RESULTS_TABLE_ROLE)
        segmentationNode.SetNodeReferenceID(RESULTS_TABLE_ROLE, table.GetID())
        if old is not None:
            self.scene.RemoveNode(old)
