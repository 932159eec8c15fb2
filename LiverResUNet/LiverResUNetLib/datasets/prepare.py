"""Prepared datasets: one folder per case, OUT/<case id>/image.nii.gz (HU) and label.nii.gz (0/1/2).

:func:`prepare_dataset` converts a raw dataset (3D-IRCADb-01, LiTS, MSD Task03_Liver, DICOM SEG, or one
prepared before) into one; :func:`add_case` adds a case corrected in Slicer. OUT/dataset.json lists every
case with its slices, spacing, tumor voxels and source; training and evaluation then read small compressed
files instead of DICOM zips. Both write atomically: a failure leaves the dataset as it was.
"""

import json
import re
from pathlib import Path

from LiverResUNetLib.atomic import atomic_directory, atomic_path
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.datasets.nifti_datasets import DATASET_JSON, read_dataset_json
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.io.image_file import write_image
from LiverResUNetLib.volume import LABEL_NAMES, TUMOR

IMAGE_FILE, LABEL_FILE = "image.nii.gz", "label.nii.gz"
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_output(raw, out):
    """Refuse an OUT whose replacement would destroy something that is not a prepared dataset (or RAW itself)."""
    if out.exists() and not out.is_dir():
        raise input_error(out, "exists and is a file; give a folder for the prepared dataset")
    if out.is_dir() and any(out.iterdir()) and read_dataset_json(out) is None:
        raise input_error(out, "exists and is not a prepared dataset; refusing to replace it (choose a new folder)")
    raw, out = raw.resolve(), out.resolve()
    if out in raw.parents:
        raise input_error(out, f"holds the raw data {raw}; replacing it would delete that data")


def write_case(case, folder, note=""):
    """Write one case's image and label under ``folder/<case id>``; returns its dataset.json entry."""
    if not CASE_ID.fullmatch(case.case_id):
        raise input_error(case.source, f"case id '{case.case_id}' cannot name a folder")
    write_image(case.image, folder / case.case_id / IMAGE_FILE)
    write_image(case.label, folder / case.case_id / LABEL_FILE)
    entry = {"id": case.case_id, "image": f"{case.case_id}/{IMAGE_FILE}", "label": f"{case.case_id}/{LABEL_FILE}",
             "slices": int(case.image.shape[0]), "spacing": [round(s, 6) for s in case.image.spacing],
             "tumor_voxels": int((case.label.array == TUMOR).sum()), "source": str(case.source)}
    if note:
        entry["note"] = note
    return entry


def prepare_dataset(raw, out, progress=None):
    """Write the prepared dataset of ``raw`` to ``out``, replacing an older prepared dataset there.

    Args:
        raw: any folder :func:`discover_cases` recognises.
        out: the dataset folder to create (or replace, when it holds a prepared dataset).
        progress: optional ``progress(fraction, message)``, called once per case.

    Returns:
        ``out``, which :func:`discover_cases` reads back as the same cases.

    Raises:
        InputError: RAW holds no dataset, a case cannot be read (nothing is written then), OUT is not
            replaceable, or two cases share an id.
    """
    raw, out = Path(raw), Path(out)
    sources = discover_cases(raw)
    _check_output(raw, out)
    ids = [source.case_id for source in sources]
    repeated = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
    if repeated:
        raise input_error(raw, f"several cases share the id {', '.join(repeated)}")
    entries = []
    with atomic_directory(out) as temporary:
        for index, source in enumerate(sources):
            entry = write_case(source.load(), temporary, source.note)
            entries.append(entry)
            if progress:
                message = f"{entry['id']}: {entry['slices']} slices, {entry['tumor_voxels']} tumor voxels"
                progress((index + 1) / len(sources), message + (f" (note: {source.note})" if source.note else ""))
        description = {**new_description(out.name, str(raw)), "cases": entries}
        (temporary / DATASET_JSON).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return out


def new_description(name, source):
    """The head of a dataset.json, with no cases yet."""
    return {"name": name, "source": source, "labels": {str(value): label for value, label in enumerate(LABEL_NAMES)},
            "cases": []}


def add_case(folder, case, source="corrected in Slicer"):
    """Add ``case`` to the prepared dataset at ``folder`` (replacing a case of the same id), or start one there.

    The case's files are written first, ``dataset.json`` last (each atomically): an interrupted save leaves
    the dataset as it was, at worst with unlisted files. This is how corrections in Slicer feed ``train``.
    """
    folder = Path(folder)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and read_dataset_json(folder) is None):
        raise input_error(folder, "is not a prepared dataset (no dataset.json); choose an empty or new folder")
    description = read_dataset_json(folder) or new_description(folder.name, source)
    entry = write_case(case, folder)
    description["cases"] = [old for old in description["cases"] if old.get("id") != case.case_id] + [entry]
    with atomic_path(folder / DATASET_JSON) as temporary:
        temporary.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return folder
