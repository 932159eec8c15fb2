"""Datasets stored as NIfTI image/label pairs: LiTS, Medical Segmentation Decathlon Task03_Liver, prepared.

All three already use the project's labels (0 background, 1 liver, 2 tumor); the label is checked to hold
only those values and to lie on the image's grid, so a mismatched pair is refused by name, not trained on.
"""

import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from LiverResUNetLib.datasets.cases import Case, CaseSource, natural_order
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.volume import LABEL_NAMES, Volume

DATASET_JSON = "dataset.json"
# Keys of dataset.json files written before the code settled on one spelling, and their names now.
RENAMED_CASE_KEYS = {"tumour_voxels": "tumor_voxels"}
LITS_VOLUME = re.compile(r"volume-(\d+)\.nii(\.gz)?", re.IGNORECASE)
LITS_SEGMENTATION = re.compile(r"segmentation-(\d+)\.nii(\.gz)?", re.IGNORECASE)
LITS_FROM_IRCADB = range(28, 48)
LITS_IRCADB_NOTE = ("LiTS volumes 28-47 are reported to be the 3D-IRCADb-01 patients: never test on this case "
                    "after training on 3D-IRCADb-01")
GRID_TOLERANCE_MM = 1e-3


def _label_on_grid(label: Volume, image: Volume, where: str | Path) -> Volume:
    """The label array as uint8 0/1/2 on ``image``'s grid.

    Raises:
        InputError: another grid, or values other than the three labels.
    """
    if not label.same_grid(image, tolerance=GRID_TOLERANCE_MM):
        raise input_error(where, f"the label's grid (shape {label.shape}, spacing {np.round(label.spacing, 4)}, "
                                 f"origin {np.round(label.origin, 3)}) differs from the image's (shape {image.shape}, "
                                 f"spacing {np.round(image.spacing, 4)}, origin {np.round(image.origin, 3)})")
    values = label.array
    if not np.issubdtype(values.dtype, np.integer) and not np.array_equal(values, np.rint(values)):
        raise input_error(where, "holds non-integer label values")
    present = np.unique(values)
    unknown = present[(present < 0) | (present >= len(LABEL_NAMES))]
    if unknown.size:
        raise input_error(where, f"holds label values {unknown.tolist()}; expected 0 (background), 1 (liver), "
                                 "2 (liver tumor)")
    return image.with_array(values.astype(np.uint8), source=str(where))


def read_nifti_case(case_id: str, image_path: Path, label_path: Path) -> Case:
    """Read an image file (HU) and its label file as a :class:`Case`."""
    image = read_image(image_path)
    return Case(case_id, image, _label_on_grid(read_image(label_path), image, label_path), str(image_path))


def _visible_files(folder: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` under ``folder``, without macOS '._' shadows and other hidden files."""
    return [path for path in folder.rglob(pattern) if path.is_file() and not path.name.startswith(".")]


def _numbered(paths: list[Path], pattern: re.Pattern[str]) -> dict[int, Path]:
    """``{N: path}`` for the files named like ``pattern`` (one number); a number found twice is refused."""
    found: dict[int, Path] = {}
    for path in sorted(paths):
        match = pattern.fullmatch(path.name)
        if not match:
            continue
        number = int(match.group(1))
        if number in found:
            raise input_error(path, f"LiTS file number {number} found twice (also {found[number]})")
        found[number] = path
    return found


def lits_cases(folder: str | Path) -> list[CaseSource]:
    """LiTS training cases ``volume-N.nii[.gz]`` + ``segmentation-N.nii[.gz]`` anywhere under ``folder``.

    Raises:
        InputError: a volume without its segmentation.
    """
    root = Path(folder)
    volumes = _numbered(_visible_files(root, "volume-*.nii*"), LITS_VOLUME)
    segmentations = _numbered(_visible_files(root, "segmentation-*.nii*"), LITS_SEGMENTATION)
    sources = []
    for number, image in sorted(volumes.items()):
        if number not in segmentations:
            raise input_error(image, f"no segmentation-{number}.nii[.gz] found under {root}")
        case_id = f"lits.{number}"
        sources.append(CaseSource(case_id, image,
                                  functools.partial(read_nifti_case, case_id, image, segmentations[number]),
                                  LITS_IRCADB_NOTE if number in LITS_FROM_IRCADB else ""))
    return sources


def msd_cases(folder: str | Path) -> list[CaseSource]:
    """MSD Task03_Liver training cases: ``imagesTr/liver_N.nii.gz`` with ``labelsTr/liver_N.nii.gz``.

    Raises:
        InputError: an image without its label.
    """
    images, labels = Path(folder) / "imagesTr", Path(folder) / "labelsTr"
    if not (images.is_dir() and labels.is_dir()):
        return []
    sources = []
    for image in sorted(_visible_files(images, "*.nii*"), key=natural_order):
        label = labels / image.relative_to(images)
        if not label.is_file():
            raise input_error(image, f"no label {label} for this image")
        case_id = "msd." + re.sub(r"\.nii(\.gz)?$", "", image.name)
        sources.append(CaseSource(case_id, image, functools.partial(read_nifti_case, case_id, image, label)))
    return sources


def read_dataset_json(folder: str | Path) -> dict[str, Any] | None:
    """The ``dataset.json`` of a prepared dataset as a dict, or None when ``folder`` is not one.

    Case entries written by older versions come back with today's key names (:data:`RENAMED_CASE_KEYS`).

    Raises:
        InputError: the file exists but is not valid JSON.
    """
    path = Path(folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise input_error(path, f"is not valid JSON: {error}") from error
    if not isinstance(description, dict) or not isinstance(description.get("cases"), list):
        return None
    for entry in description["cases"]:
        if isinstance(entry, dict):
            for old, new in RENAMED_CASE_KEYS.items():
                if old in entry:
                    entry.setdefault(new, entry.pop(old))
    return description


def prepared_cases(folder: str | Path) -> list[CaseSource]:
    """The cases listed in a prepared dataset's ``dataset.json`` (written by ``prepare``); [] for other folders.

    Raises:
        InputError: a case entry without ``id``, ``image`` or ``label``.
    """
    root = Path(folder)
    description = read_dataset_json(root)
    if description is None:
        return []
    sources = []
    for index, entry in enumerate(description["cases"]):
        missing = [key for key in ("id", "image", "label") if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise input_error(root / DATASET_JSON, f"case {index + 1} has no {', '.join(missing)}")
        image, label = root / entry["image"], root / entry["label"]
        sources.append(CaseSource(entry["id"], image, functools.partial(read_nifti_case, entry["id"], image, label),
                                  entry.get("note", "")))
    return sources
