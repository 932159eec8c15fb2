"""highdicom, imported only when a DICOM SEG is written, with one clear refusal where it cannot work.

Slicer 5.12 bundles highdicom 0.27 (which needs pydicom >= 3.0.1); Slicer 5.10 bundles pydicom 2.4.4, where
writing a SEG is refused with this message instead of an import traceback. Reading a SEG needs only pydicom.
"""

from types import ModuleType

from LiverResUNetLib.errors import InputError

MINIMUM_PYDICOM = (3, 0, 1)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(character for character in part if character.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def import_highdicom() -> ModuleType:
    """The ``highdicom`` module.

    Raises:
        InputError: pydicom is older than 3.0.1 or highdicom is not installed (the message says what to do).
    """
    import pydicom

    if _version_tuple(pydicom.__version__) < MINIMUM_PYDICOM:
        raise InputError(f"writing DICOM SEG needs pydicom >= 3.0.1 (for highdicom); this Python has pydicom "
                         f"{pydicom.__version__} (Slicer 5.10): use Slicer 5.12 or later, or save as .seg.nrrd")
    try:
        import highdicom
    except ImportError as error:
        raise InputError(f"writing DICOM SEG needs the Python package highdicom ({error}); install it with "
                         "'pip install highdicom' (Slicer: slicer.util.pip_install('highdicom'))") from error
    return highdicom
