"""``review``: lesion-by-lesion review and correction of a segmentation in the browser (trame-slicer)."""
