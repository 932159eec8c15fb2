"""Test scenes: core Volumes put into real MRML scenes (slicer-core), as Slicer's readers would leave them."""

import slicer

from LiverResUNetLib.scene.volume_nodes import fill_volume_node


def add_volume_node(volume, scene, name, class_name="vtkMRMLScalarVolumeNode"):
    """Add a volume node named ``name`` holding ``volume`` to ``scene`` (``vtkMRMLLabelMapVolumeNode`` for labels)."""
    node = getattr(slicer, class_name)()
    node.SetName(scene.GenerateUniqueName(name))
    fill_volume_node(node, volume)
    scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    return node
