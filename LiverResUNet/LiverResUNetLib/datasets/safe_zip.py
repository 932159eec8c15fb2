"""Open a dataset zip without trusting it: extracted into a private temporary folder, never beside the data.

A member with an absolute path, a drive letter or ``..`` could write anywhere ("zip slip"); a symbolic link
could point anywhere. Such archives are refused before anything is extracted, and the temporary folder is
removed when the caller is done, so the user's data folder is never written to.
"""

import contextlib
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from LiverResUNetLib.errors import input_error


def _unsafe_reason(member: zipfile.ZipInfo) -> str | None:
    """Why extracting ``member`` could escape the target folder, or None when it cannot."""
    path = PurePosixPath(member.filename.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        return f"member '{member.filename}' has an absolute path"
    if ".." in path.parts:
        return f"member '{member.filename}' climbs out of the archive with '..'"
    if stat.S_ISLNK(member.external_attr >> 16):
        return f"member '{member.filename}' is a symbolic link"
    return None


def check_members(archive: zipfile.ZipFile, where: str | Path) -> None:
    """Refuse the whole archive when any member could land outside the folder it is extracted into."""
    for member in archive.infolist():
        reason = _unsafe_reason(member)
        if reason:
            raise input_error(where, f"unsafe zip archive: {reason}")


def extract_all(zip_path: str | Path, target: str | Path) -> None:
    """Extract every member of ``zip_path`` under ``target`` after checking all of them.

    Raises:
        InputError: naming the zip: not a zip file, damaged (bad CRC, truncated), or an unsafe member.
    """
    zip_path = Path(zip_path)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            check_members(archive, zip_path)
            root = Path(target).resolve()
            for member in archive.infolist():
                destination = (root / member.filename.replace("\\", "/")).resolve()
                if destination != root and root not in destination.parents:
                    raise input_error(zip_path, f"unsafe zip archive: member '{member.filename}' leaves the target")
                archive.extract(member, root)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise input_error(zip_path, f"cannot be extracted: {error}") from error


@contextlib.contextmanager
def extracted(zip_path: str | Path) -> Iterator[Path]:
    """Yield a private temporary folder holding the checked contents of ``zip_path``; remove it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="liverresunet-zip-"))
    try:
        extract_all(zip_path, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
