"""DICOMweb: segment series from a PACS and store the DICOM SEG back (QIDO-RS, WADO-RS, STOW-RS)."""
