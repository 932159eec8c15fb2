"""The module's results panel as a radiologist uses it: click a lesion's row, Reject, Add lesion with one click.

The module file runs against Slicer's own ScriptedLoadableModule code and slicer-core's real MRML; only the
Qt widgets of the .ui are stood in for (see test_slicer_modules.py).
"""

import importlib
import types
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from test_slicer_modules import WidgetStandIn

from LiverResUNetLib.lesion_review import grow_lesion, reject_lesion, review_summary
from review_phantom import MISSED_LESION_SEED_KJI, phantom
from slicer_application import REPO


@pytest.fixture
def review_widget(slicer_application):
    """The widget with the phantom CT and its segmentation (with a results table) as the module's result."""
    import slicer
    from slicer.util import VTKObservationMixin

    from LiverResUNetLib.scene.lesion_review import LesionReviewLogic
    from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation
    from scene_factory import add_volume_node

    module = importlib.import_module("LiverResUNet")
    widget = module.LiverResUNetWidget.__new__(module.LiverResUNetWidget)
    VTKObservationMixin.__init__(widget)
    ui_file = REPO / "LiverResUNet" / "Resources" / "UI" / "LiverResUNet.ui"
    widget.ui = types.SimpleNamespace(**{element.get("name"): WidgetStandIn()
                                         for element in ElementTree.parse(ui_file).getroot().iter("widget")})
    widget.logic, widget._selectedLesion = module.LiverResUNetLogic(), None
    widget._parameterNode = widget.logic.getParameterNode()
    ct, labels = phantom()
    volume = add_volume_node(ct, slicer.mrmlScene, "CT")
    segmentation = labels_to_segmentation(labels, closed_surface=False)
    slicer.mrmlScene.AddNode(segmentation)
    LesionReviewLogic(slicer.mrmlScene).replaceResultsTable(segmentation, volume, labels)
    widget._parameterNode.inputVolume, widget._parameterNode.outputSegmentation = volume, segmentation
    widget.view = slicer.mrmlScene.AddNode(slicer.vtkMRMLSliceNode())
    widget.showResults(segmentation)
    return widget


def current_labels(widget):
    return widget.logic.labelVolume(widget._parameterNode.outputSegmentation, widget._parameterNode.inputVolume)


def test_a_row_click_jumps_and_reject_removes_that_lesion(review_widget):
    widget = review_widget
    _, labels = phantom()
    assert widget.ui.addLesionButton.enabled and not widget.ui.rejectLesionButton.enabled
    widget.onResultsRowClicked(3)  # rows: liver, all tumors, lesion 1, lesion 2
    matrix = widget.view.GetSliceToRAS()
    centroid = review_summary(labels).lesions[1].centroid_lps
    assert [matrix.GetElement(row, 3) for row in range(3)] == pytest.approx(
        [-centroid[0], -centroid[1], centroid[2]], abs=0.05)
    assert widget.ui.rejectLesionButton.enabled
    widget.onRejectLesionButton()
    assert np.array_equal(current_labels(widget).array, reject_lesion(labels, 2).array)
    assert widget.ui.resultsTableView.tableNode.GetTable().GetNumberOfRows() == 3
    assert not widget.ui.rejectLesionButton.enabled, "the selection went with the old table"
    widget.onResultsRowClicked(0)
    assert not widget.ui.rejectLesionButton.enabled, "the liver row is no lesion"


def test_add_lesion_places_one_point_and_grows_the_lesion_there(review_widget):
    import slicer

    widget = review_widget
    ct, labels = phantom()
    widget.onAddLesionButton()
    interaction = slicer.app.applicationLogic().GetInteractionNode()
    assert interaction.GetCurrentInteractionMode() == interaction.Place
    seed = slicer.mrmlScene.GetNodeByID(slicer.app.applicationLogic().GetSelectionNode().GetActivePlaceNodeID())
    k, j, i = MISSED_LESION_SEED_KJI
    point_lps = ct.ijk_to_lps() @ [i, j, k, 1.0]
    seed.AddControlPointWorld([-point_lps[0], -point_lps[1], point_lps[2]])  # what a click in a view does
    assert seed.GetScene() is None, "the seed point leaves the scene once used"
    assert np.array_equal(current_labels(widget).array, grow_lesion(ct, labels, MISSED_LESION_SEED_KJI).array)
    assert widget.ui.resultsTableView.tableNode.GetTable().GetNumberOfRows() == 5
