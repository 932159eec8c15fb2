"""A worklist for the browser review: a folder of cases, reviewed one after another, each case's state kept in
a small JSON file of the output folder that survives restarts.

Layout of the worklist folder: one sub-folder per case (its name is the case's name), holding the CT, a DICOM
folder named ``ct`` or an image file named ``ct.*`` (``ct.nii.gz``, ``ct.nrrd``...), and this project's result
for it, one file named ``segmentation.*`` (``segmentation.seg.nrrd``, a label map such as
``segmentation.nii.gz``, or a DICOM SEG ``segmentation.dcm``), e.g. what
``segment --output CASE/segmentation.seg.nrrd`` writes beside the CT. Each case's reviewed files go to
``OUTPUT/<case>/``; the states go to ``OUTPUT/worklist.json``, written atomically.

A worklist may also be a DICOMweb server (its base URL): its cases are the CT series that have a DICOM SEG of
this project, each reviewed from the newest such SEG, and Save stores the reviewed SEG back (``remote``).
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.dicomweb.connection import is_dicomweb_url
from LiverResUNetLib.errors import input_error

if TYPE_CHECKING:
    from LiverResUNetLib.app.review.case import ReviewCase
    from LiverResUNetLib.scene.files import Scene

STATE_FILE_NAME = "worklist.json"
TO_REVIEW, ACCEPTED, CORRECTED = "to review", "accepted", "corrected"
STATES = (TO_REVIEW, ACCEPTED, CORRECTED)


@dataclass(frozen=True)
class WorklistCase:
    """One case of the worklist: its name, CT (DICOM folder, image file or DICOMweb series URL) and segmentation
    file (None for a series URL: the newest SEG of this project on its server)."""

    name: str
    ct: Path | str
    segmentation: Path | None


def _one(folder: Path, what: str, found: list[Path]) -> Path:
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise input_error(folder, f"a worklist case needs exactly one {what} (found: {names})")
    return found[0]


def read_worklist(folder: Path) -> list[WorklistCase]:
    """The cases of the worklist ``folder``, sorted by name.

    Raises:
        InputError: the folder is missing or holds no case, or a case lacks its CT or segmentation (or has two).
    """
    if not folder.is_dir():
        raise input_error(folder, "the worklist folder does not exist")
    cases = []
    for case_folder in sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")):
        entries = sorted(case_folder.iterdir())
        ct = _one(case_folder, "CT ('ct' DICOM folder or 'ct.*' image file)",
                  [path for path in entries if path.name == "ct" and path.is_dir()
                   or path.is_file() and path.name.startswith("ct.")])
        segmentation = _one(case_folder, "segmentation ('segmentation.*' file)",
                            [path for path in entries if path.is_file() and path.name.startswith("segmentation.")])
        cases.append(WorklistCase(case_folder.name, ct, segmentation))
    if not cases:
        raise input_error(folder, "the worklist folder holds no case (one sub-folder per case)")
    return cases


def read_server_worklist(url: str) -> list[WorklistCase]:
    """The cases of a DICOMweb server (its base URL): each CT series that has a DICOM SEG of this project.

    Raises:
        InputError: a series URL, a server that cannot be used, or no such series on it.
    """
    from LiverResUNetLib.app.review.remote import reviewable_series

    return [WorklistCase(name, series_url, None) for name, series_url in reviewable_series(url)]


@dataclass
class WorklistStates:
    """Each case's review state (to review / accepted / corrected), kept in ``OUTPUT/worklist.json``."""

    path: Path
    states: dict[str, str]

    @classmethod
    def load(cls, output: Path, cases: list[WorklistCase]) -> "WorklistStates":
        """The states stored under ``output`` for ``cases`` (a case not stored yet is to review).

        Raises:
            InputError: the state file is not a JSON object of known states.
        """
        path = output / STATE_FILE_NAME
        stored: dict[str, str] = {}
        if path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))["states"]
            except (ValueError, KeyError, TypeError) as error:
                raise input_error(path, f"not a worklist state file ({error})") from error
            if not isinstance(stored, dict) or not set(stored.values()) <= set(STATES):
                raise input_error(path, f"its states must be among {', '.join(STATES)}")
        return cls(path, {case.name: stored.get(case.name, TO_REVIEW) for case in cases})

    def set(self, name: str, state: str) -> None:
        """Record case ``name``'s state and write the file at once (atomically)."""
        if state not in STATES:
            raise ValueError(f"unknown worklist state {state!r}")
        self.states[name] = state
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as temporary:
            temporary.write_text(json.dumps({"states": self.states}, indent=2) + "\n", encoding="utf-8")

    def signed_off(self, name: str, edited: bool) -> None:
        """Case ``name`` was accepted: *corrected* if the reviewer changed it, else *accepted*."""
        self.set(name, CORRECTED if edited else ACCEPTED)

    def first_to_review(self) -> str:
        """The first case still to review (the first case when all are done)."""
        return next((name for name, state in self.states.items() if state == TO_REVIEW), next(iter(self.states)))


@dataclass
class Worklist:
    """The cases of a worklist folder or DICOMweb server, their states, and where each case's reviewed files go."""

    cases: list[WorklistCase]
    states: WorklistStates
    output: Path

    @classmethod
    def load(cls, source: Path | str, output: Path) -> "Worklist":
        """The worklist of a folder or of a DICOMweb server's base URL (see :func:`read_server_worklist`).

        Raises:
            InputError: see :func:`read_worklist`, :func:`read_server_worklist` and :meth:`WorklistStates.load`; an
                output that is a file.
        """
        if output.exists() and not output.is_dir():
            raise input_error(output, "the output must be a folder")
        cases = read_server_worklist(str(source)) if is_dicomweb_url(source) else read_worklist(Path(source))
        return cls(cases, WorklistStates.load(output, cases), output)

    @property
    def names(self) -> list[str]:
        return [case.name for case in self.cases]

    def neighbour(self, name: str, offset: int) -> str:
        """The case ``offset`` places after (before, when negative) ``name``, wrapping around."""
        names = self.names
        return names[(names.index(name) + offset) % len(names)]

    def open(self, scene: "Scene", name: str) -> "ReviewCase":
        """Load case ``name`` into ``scene`` for review; its files go to ``OUTPUT/<name>/``."""
        from LiverResUNetLib.app.review.case import ReviewCase

        case = next(case for case in self.cases if case.name == name)
        review = ReviewCase.open(scene, case.ct, case.segmentation, self.output / name)
        review.output.mkdir(parents=True, exist_ok=True)
        return review
