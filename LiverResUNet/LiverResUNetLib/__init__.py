"""LiverResUNet: liver and liver-tumor segmentation of abdominal CT with a 2D ResUNet.

The core (every package but ``app`` and ``scene``) is numpy / torch / pydicom / SimpleITK / scikit-image and
imports no slicer, vtk or qt. ``scene`` is the bridge to Slicer's MRML, used by the Slicer module and the
``segment`` command; ``app`` holds the headless commands, which ``cli`` offers on one command line.
"""

__version__ = "0.1.0"
