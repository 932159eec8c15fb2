"""LiverResUNet core: liver and liver-tumor segmentation of abdominal CT with a 2D ResUNet.

Pure numpy / torch / pydicom / SimpleITK / scikit-image. Nothing here imports slicer, vtk or qt,
except ``scene_bridge`` (MRML), which only the Slicer-facing layers and the ``segment`` command use.
"""

__version__ = "0.1.0"
