"""The attributes and references on MRML nodes that this extension and Slicer's DICOM module rely on, named once.

A segmentation written by ``scene.logic`` carries a fingerprint of its content; once the radiologist edits it,
the fingerprint no longer matches: the logic then writes a new node instead, and a DICOM SEG of it says
"SEMIAUTOMATIC" instead of "AUTOMATIC".
"""

from typing import Any

from LiverResUNetLib.scene.segmentation_nodes import content_fingerprint

# Set by Slicer's DICOMScalarVolumePlugin on every volume node it loads: the series' SOP Instance UIDs,
# space-separated, in slice order.
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
FINGERPRINT_ATTRIBUTE = "LiverResUNet.WrittenContent"
MODEL_ATTRIBUTE = "LiverResUNet.Model"
RESULTS_TABLE_ROLE = "LiverResUNet.ResultsTable"


def is_unedited_result(segmentation_node: Any) -> bool:
    """True when ``segmentation_node`` holds exactly what ``scene.logic`` last wrote into it."""
    written = segmentation_node.GetAttribute(FINGERPRINT_ATTRIBUTE)
    return bool(written) and written == content_fingerprint(segmentation_node)
