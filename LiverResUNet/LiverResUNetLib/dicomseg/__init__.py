"""DICOM Segmentation objects: write a label map as a SEG of its CT series, read a SEG back onto a CT grid."""
