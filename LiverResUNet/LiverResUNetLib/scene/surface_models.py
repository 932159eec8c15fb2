"""The segmentation's 3D surfaces as model nodes, and VTK's warnings held while views are built: what the browser
review's page needs of the scene (trame-slicer's streamed 3D view draws model nodes, not a segmentation's own
surfaces), so that the page itself names no MRML or VTK class.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import slicer
import vtk

from LiverResUNetLib.scene.segmentation_nodes import (
    CLOSED_SURFACE,
    LIVER_SEGMENT,
    SEGMENTS,
    add_closed_surfaces,
    register_surface_converters,
)

LIVER_SURFACE_OPACITY = 0.4  # translucent: the lesions inside show through


def update_surface_models(scene: slicer.vtkMRMLScene, segmentation_node: slicer.vtkMRMLSegmentationNode,
                          models: dict[str, slicer.vtkMRMLModelNode]) -> None:
    """Recompute the liver and tumor surfaces of ``segmentation_node`` into model nodes of ``scene``, one per
    segment id in ``models`` (added there the first time: the segment's colour, 3D only, the liver translucent)."""
    register_surface_converters()
    add_closed_surfaces(segmentation_node)
    for spec in SEGMENTS:
        surface = vtk.vtkPolyData()
        surface.DeepCopy(segmentation_node.GetSegmentation().GetSegment(spec.segment_id)
                         .GetRepresentation(CLOSED_SURFACE))
        model = models.get(spec.segment_id)
        if model is None:
            model = scene.AddNewNodeByClass("vtkMRMLModelNode", f"{spec.name} surface")
            model.CreateDefaultDisplayNodes()
            display = model.GetDisplayNode()
            display.SetColor(*(channel / 255.0 for channel in spec.color))
            display.SetVisibility2D(False)
            display.SetOpacity(LIVER_SURFACE_OPACITY if spec is LIVER_SEGMENT else 1.0)
            models[spec.segment_id] = model
        model.SetAndObservePolyData(surface)


@contextmanager
def vtk_warnings_held() -> Iterator[None]:
    """VTK's warning display off inside the block (e.g. a deprecation each new slice view prints), on after."""
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.GlobalWarningDisplayOn()
