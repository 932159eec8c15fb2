"""One case under review in the browser: the CT and its segmentation in an MRML scene, every edit undoable,
nothing lost.

The label Volume (0/1/2) is the case's truth; the scene's segmentation node shows it and the segment editor's
paint and erase strokes edit the node, after which :meth:`ReviewCase.stroke_finished` takes the node's voxels
back. Reject and Add lesion are the core's (:mod:`LiverResUNetLib.lesion_review`), as in the Slicer module.
Each edit is kept as the voxels it changed (their flat indices, old and new labels), so undo and redo cost
what the edit touched, not a copy of the volume. After each edit the labels go to a recovery file, atomically;
a restart on the same inputs offers it back. Save writes the ``.seg.nrrd`` and, when the CT came from a DICOM
series, a DICOM SEG of it (``dicomseg.writer``): a new series referencing the CT, SEMIAUTOMATIC once edited; for a
CT from a DICOMweb server (``remote``), that SEG is stored back into the CT's study there.
"""

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.datasets.cases import Case
from LiverResUNetLib.dicomseg.provenance import MANUAL_PROVENANCE, Provenance, of_card, of_seg
from LiverResUNetLib.dicomweb.connection import is_dicomweb_url
from LiverResUNetLib.errors import InputError, input_error
from LiverResUNetLib.io.dicom_series import SeriesInfo
from LiverResUNetLib.lesion_review import (
    ReviewSummary,
    grow_lesion,
    lesion_map,
    reject_lesion,
    review_summary,
    voxel_at_lps,
)
from LiverResUNetLib.scene.files import (
    Scene,
    SegmentationNode,
    VolumeNode,
    read_dicom_series_node,
    read_image_node,
    read_seg_nrrd,
    write_segmentation,
)
from LiverResUNetLib.scene.lesion_review import write_label_changes
from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation, segmentation_to_labels
from LiverResUNetLib.scene.volume_nodes import LPS_TO_RAS, node_to_volume
from LiverResUNetLib.volume import BACKGROUND, LIVER, TUMOR, Volume

if TYPE_CHECKING:
    from LiverResUNetLib.app.review.remote import RemoteSource

RECOVERY_NAME = ".liverresunet-review-recovery.npz"
SEGMENTATION_NAME = "segmentation.seg.nrrd"
DICOM_SEG_NAME = "segmentation.dcm"
NO_DICOM_SEG = "no DICOM SEG: the CT is an image file, not a DICOM series a SEG could reference"
ACCEPTED_NAME = "accepted.json"
UNDO_LEVELS = 50
LESION_STATES = ("found", "edited", "added")  # the model's lesion as it was, changed by the reviewer, new


@dataclass(frozen=True)
class Edit:
    """The voxels one edit changed: flat indices into the label array, their labels before and after."""

    description: str
    indices: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class LesionRow:
    """A lesion of the list the page shows: the core's measures and how it came to be."""

    number: int
    volume_ml: float
    longest_axial_diameter_mm: float
    centroid_ras: tuple[float, float, float]
    state: str


@dataclass(frozen=True)
class Saved:
    """What one Save wrote: the ``.seg.nrrd``, the DICOM SEG (None for an image-file CT) and notes on it."""

    segmentation: Path
    dicom_seg: Path | None
    notes: tuple[str, ...]

    def __str__(self) -> str:
        written = " and ".join(str(path) for path in (self.segmentation, self.dicom_seg) if path is not None)
        return "; ".join((written, *self.notes))


def _ct_node(scene: Scene, path: Path) -> tuple[VolumeNode, SeriesInfo | None]:
    """The CT of a DICOM folder (its one CT series, returned too) or of an image file, as a volume node of
    ``scene``."""
    if not path.exists():
        raise input_error(path, "does not exist")
    if not path.is_dir():
        return read_image_node(scene, path), None
    from LiverResUNetLib.io.dicom_series import find_series

    series = [info for info in find_series(path) if info.modality.upper() == "CT"]
    if len(series) != 1:
        raise input_error(path, f"holds {len(series)} CT series; give the folder of exactly one")
    node = read_dicom_series_node(scene, series[0])
    node.SetAttribute("LiverResUNet.ReviewSeriesFolder", str(series[0].folder))
    return node, series[0]


def read_labels(path: Path, ct_node: VolumeNode) -> Volume:
    """The label Volume (0/1/2) of a ``.seg.nrrd``, a DICOM SEG (``.dcm``) or a label map on the CT's grid."""
    from LiverResUNetLib.io.image_file import read_image
    from LiverResUNetLib.scene.logic import SegmentLiverLogic

    ct = node_to_volume(ct_node)
    if not path.is_file():
        raise input_error(path, "does not exist")
    name = path.name.lower()
    if name.endswith(".seg.nrrd"):
        return read_seg_nrrd(path, ct)
    if name.endswith(".dcm"):
        return SegmentLiverLogic.dicomSegLabels(str(path), ct_node)
    labels = read_image(path)
    if not labels.same_grid(ct, tolerance=1e-3):
        raise input_error(path, f"the label map's grid {labels.shape} is not the CT's {ct.shape}")
    values = set(np.unique(labels.array).tolist())
    if not values <= {BACKGROUND, LIVER, TUMOR}:
        raise input_error(path, f"holds labels {sorted(values - {BACKGROUND, LIVER, TUMOR})}; expected 0, 1 (liver) "
                                "and 2 (liver tumor)")
    return ct.with_array(labels.array.astype(np.uint8))


def segmentation_provenance(segmentation_path: Path | None, model: Path | None) -> Provenance:
    """What made the segmentation under review, for its DICOM SEG: the model given (its card), else the algorithm
    its DICOM SEG names, else nothing known: MANUAL, a manual review (a ``.seg.nrrd`` or label map records no
    model).

    Raises:
        InputError: the model file is missing or not a model.
    """
    if model is not None:
        from LiverResUNetLib.model.model_file import read_card

        if not model.is_file():
            raise input_error(model, "model file does not exist")
        return of_card(read_card(model))
    if segmentation_path is not None and segmentation_path.name.lower().endswith(".dcm"):
        import pydicom

        return of_seg(pydicom.dcmread(segmentation_path, stop_before_pixels=True))
    return MANUAL_PROVENANCE


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()


@dataclass
class PendingCase:
    """A case whose CT is in the scene and whose segmentation is read, or still to be made by ``model``.

    :meth:`segment` names no MRML (only the CT's Volume), so the review page runs it in a worker thread while it
    shows its progress; :meth:`finish` then puts the segmentation into the scene.
    """

    scene: Scene
    ct_node: VolumeNode
    series: SeriesInfo | None
    output: Path
    identity: tuple[str, str]  # what names the CT and the segmentation in the case's key
    provenance: Provenance
    model: Path | None
    labels: Volume | None
    remote: "RemoteSource | None" = None

    @classmethod
    def load(cls, scene: Scene, ct_path: Path, segmentation_path: Path | None, output: Path, model: Path | None,
             identity: tuple[str, str]) -> "PendingCase":
        """The CT of local files into ``scene``, the segmentation read or the model's card (refused if unreadable),
        and what made the segmentation (:func:`segmentation_provenance`)."""
        ct_node, series = _ct_node(scene, ct_path)
        labels = None if segmentation_path is None else read_labels(segmentation_path, ct_node)
        provenance = segmentation_provenance(segmentation_path, model)
        return cls(scene, ct_node, series, output, identity, provenance, model, labels)

    def segment(self, progress: Callable[[float, str], None] | None = None) -> Volume:
        """The model's labels of the CT (no MRML: safe in a worker thread), reporting to ``progress``."""
        from LiverResUNetLib.inference.predictor import predict_volume
        from LiverResUNetLib.model.model_file import load_model

        assert self.model is not None  # ReviewCase.prepare refuses neither segmentation nor model
        report = progress or (lambda fraction, message: None)
        report(0.0, "loading the model")
        return predict_volume(node_to_volume(self.ct_node), load_model(self.model), progress=report)

    def finish(self, labels: Volume) -> "ReviewCase":
        """The case under review: ``labels`` as the scene's segmentation node on the CT."""
        scene, ct_node = self.scene, self.ct_node
        node = labels_to_segmentation(labels, closed_surface=False)  # the browser's 3D view shows no surfaces yet
        node.SetName(scene.GenerateUniqueName(f"{ct_node.GetName()} liver segmentation"))
        scene.AddNode(node)
        node.CreateDefaultDisplayNodes()
        node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
        key = _fingerprint(*(part.encode() for part in self.identity), np.ascontiguousarray(labels.array).tobytes())
        return ReviewCase(scene, ct_node, node, labels, self.output, key, self.series, self.provenance, self.remote)


@dataclass
class ReviewCase:
    """The CT node, the segmentation node and the labels of one case, in ``scene``.

    ``key`` names the case (its input paths and original labels), so a recovery file is offered only to a
    session on the same inputs. ``series`` is the CT's DICOM series (None for an image file), which a DICOM SEG
    references; ``provenance`` is what a DICOM SEG of it names as its maker (:func:`segmentation_provenance`);
    ``remote`` is the DICOMweb server the CT came from (None for local files), where Save stores the SEG too.
    """

    scene: Scene
    ct_node: VolumeNode
    segmentation_node: SegmentationNode
    original: Volume
    output: Path
    key: str
    series: SeriesInfo | None = None
    provenance: Provenance = MANUAL_PROVENANCE
    remote: "RemoteSource | None" = None
    labels: Volume = field(init=False)
    accepted: bool = False
    undo_stack: list[Edit] = field(default_factory=list)
    redo_stack: list[Edit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = self.original.with_array(self.original.array.copy())
        self.ct = node_to_volume(self.ct_node)
        self._original_lesions = lesion_map(self.original)  # the model's lesions, for each row's state
        self._original_sizes = np.bincount(self._original_lesions.ravel())
        self._measurement: tuple[Volume, ReviewSummary, tuple[LesionRow, ...]] | None = None

    @classmethod
    def open(cls, scene: Scene, ct: Path | str, segmentation_path: Path | None, output: Path,
             model: Path | None = None,
             progress: Callable[[float, str], None] | None = None) -> "ReviewCase":
        """Load the CT (a DICOM folder, an image file or a DICOMweb series URL) and its segmentation (or, for a
        URL, the newest SEG of this project on the server; or segment it with ``model`` first, reporting to
        ``progress``) into ``scene``: :meth:`prepare`, then the pending case's segment and finish.

        Raises:
            InputError: see :meth:`prepare`.
        """
        pending = cls.prepare(scene, ct, segmentation_path, output, model)
        return pending.finish(pending.labels if pending.labels is not None else pending.segment(progress))

    @classmethod
    def prepare(cls, scene: Scene, ct: Path | str, segmentation_path: Path | None, output: Path,
                model: Path | None = None) -> "PendingCase":
        """Everything :meth:`open` does that can refuse the inputs: the CT into ``scene``, the segmentation read
        (or, without one, the model's card read), before the model's long run.

        Raises:
            InputError: a missing or unreadable input, a segmentation not on the CT's grid, neither a segmentation
                nor a model (nor, for a URL, a SEG on the server), an output that is a file, a server that cannot
                be used.
        """
        if output.exists() and not output.is_dir():
            raise input_error(output, "the output must be a folder")
        if not is_dicomweb_url(ct):
            if segmentation_path is None and model is None:
                raise input_error(ct, "give --segmentation, or --model to segment it first")
            ct_path = Path(ct)
            return PendingCase.load(scene, ct_path, segmentation_path, output, model,
                                    (str(ct_path.resolve()), str(segmentation_path or model)))
        from LiverResUNetLib.app.review.remote import fetch, no_segmentation

        remote = fetch(str(ct), with_seg=segmentation_path is None)
        if segmentation_path is None and remote.seg is None and model is None:
            raise no_segmentation(remote)
        try:
            pending = PendingCase.load(scene, remote.folder, segmentation_path or remote.seg, output, model,
                                       (remote.url, str(segmentation_path or remote.seg_uid or model)))
        except InputError as error:
            raise remote.named(error) from error
        pending.remote = remote
        return pending

    # What the page shows

    def summary(self) -> ReviewSummary:
        return self._measured()[0]

    def lesion_rows(self) -> list[LesionRow]:
        """The lesion list, largest first, with each lesion's state: found by the model and untouched, edited,
        or added by the reviewer."""
        return list(self._measured()[1])

    def _measured(self) -> tuple[ReviewSummary, tuple[LesionRow, ...]]:
        """The summary and lesion rows of the current labels, measured once per edit: the page asks for them after
        every edit and row click, and measuring a CT's labels takes a good part of a second."""
        if self._measurement is None or self._measurement[0] is not self.labels:
            summary = review_summary(self.labels)
            self._measurement = (self.labels, summary, tuple(self._rows(summary)))
        return self._measurement[1], self._measurement[2]

    def _rows(self, summary: ReviewSummary) -> list[LesionRow]:
        numbered, original = lesion_map(self.labels), self._original_lesions
        boxes = ndimage.find_objects(numbered)
        rows = []
        for lesion in summary.lesions:
            box = boxes[lesion.number - 1]
            was = original[box][numbered[box] == lesion.number]
            if not was.any():
                state = "added"
            elif was.min() == was.max() and self._original_sizes[was[0]] == was.size:
                state = "found"
            else:
                state = "edited"
            centre = LPS_TO_RAS[:3, :3] @ np.asarray(lesion.centroid_lps)
            rows.append(LesionRow(lesion.number, lesion.volume_ml, lesion.longest_axial_diameter_mm,
                                  (float(centre[0]), float(centre[1]), float(centre[2])), state))
        return rows

    @property
    def edited(self) -> bool:
        return not np.array_equal(self.labels.array, self.original.array)

    # Edits

    def _record(self, description: str, after: np.ndarray) -> Edit | None:
        """Make ``after`` the labels (the node holds it already): keep the edit, save for recovery."""
        changed = np.flatnonzero(self.labels.array != after)
        if changed.size == 0:
            return None
        edit = Edit(description, changed, self.labels.array.ravel()[changed].copy(), after.ravel()[changed].copy())
        self.labels = self.labels.with_array(after)
        self.undo_stack = [*self.undo_stack, edit][-UNDO_LEVELS:]
        self.redo_stack = []
        self.accepted = False
        self.write_recovery()
        return edit

    def _commit(self, description: str, after: np.ndarray) -> Edit | None:
        """Write ``after`` into the node (only the voxels that change), then record it as an edit."""
        write_label_changes(self.segmentation_node, self.labels, self.labels.with_array(after))
        return self._record(description, after)

    def reject(self, number: int) -> Edit | None:
        """Reject lesion ``number`` of the current list (its voxels become liver)."""
        return self._commit(f"reject lesion {number}", reject_lesion(self.labels, number).array)

    def add_lesion_at(self, point_ras: Sequence[float]) -> Edit | None:
        """Grow a lesion from one click at ``point_ras`` (world RAS) inside the liver.

        Raises:
            lesion_review.SeedOutsideLiver: the click is not on the liver.
        """
        seed = voxel_at_lps(self.ct, LPS_TO_RAS[:3, :3] @ np.asarray(point_ras, dtype=float))
        return self._commit("add lesion", grow_lesion(self.ct, self.labels, seed).array)

    def stroke_finished(self, erased_tumor: bool) -> Edit | None:
        """Take back what a paint or erase stroke did to the node. Erasing tumor leaves liver, not background:
        the reviewer removed tumor, not organ."""
        stroked = segmentation_to_labels(self.segmentation_node, self.ct).array
        after = stroked
        if erased_tumor:
            after = stroked.copy()
            after[(self.labels.array == TUMOR) & (after == BACKGROUND)] = LIVER
            write_label_changes(self.segmentation_node, self.labels.with_array(stroked),
                                self.labels.with_array(after))
        return self._record("erase" if erased_tumor else "paint", after)

    def _replay(self, edit: Edit, values: np.ndarray) -> None:
        array = self.labels.array.copy()
        array.ravel()[edit.indices] = values
        new = self.labels.with_array(array)
        write_label_changes(self.segmentation_node, self.labels, new)
        self.labels = new
        self.accepted = False
        self.write_recovery()

    def undo(self) -> Edit | None:
        if not self.undo_stack:
            return None
        edit = self.undo_stack.pop()
        self._replay(edit, edit.before)
        self.redo_stack.append(edit)
        return edit

    def redo(self) -> Edit | None:
        if not self.redo_stack:
            return None
        edit = self.redo_stack.pop()
        self._replay(edit, edit.after)
        self.undo_stack.append(edit)
        return edit

    def accept(self) -> Saved:
        """Sign the case off: the segmentation is saved and ``accepted.json`` says by whom it was reviewed."""
        saved = self.save()
        self.accepted = True
        with atomic_path(self.output / ACCEPTED_NAME) as temporary:
            temporary.write_text(json.dumps({"segmentation": saved.segmentation.name, "edited": self.edited,
                                             "dicom_seg": saved.dicom_seg.name if saved.dicom_seg else None},
                                            indent=2) + "\n")
        self.write_recovery()
        return saved

    # Files

    def save(self) -> Saved:
        """Write the current segmentation as ``segmentation.seg.nrrd`` in the output folder and, for a DICOM CT,
        as the DICOM SEG ``segmentation.dcm`` (each atomically); for a CT from a DICOMweb server, the SEG is also
        stored into the CT's study there (STOW-RS).

        Raises:
            InputError: the SEG cannot be written, or the server did not store it (the files are written then).
        """
        segmentation = write_segmentation(self.segmentation_node, self.output / SEGMENTATION_NAME, self.ct)
        if self.series is None:
            return Saved(segmentation, None, (NO_DICOM_SEG,))
        from LiverResUNetLib.dicomseg.writer import write_seg
        from LiverResUNetLib.io.dicom_series import read_series_headers

        stack, series_uid, _ = read_series_headers(self.series.files)
        path = self.output / DICOM_SEG_NAME
        notes = write_seg(self.labels, stack, series_uid, self.provenance, path, edited=self.edited)
        if self.remote is not None:
            try:
                notes.append(self.remote.store(path, _fingerprint(self.labels.array.tobytes())))
            except InputError as error:
                raise InputError(f"{error} (written to {segmentation} and {path})") from error
        return Saved(segmentation, path, tuple(notes))

    def save_training_case(self, dataset: Path, case_id: str) -> Path:
        """Add the CT and the reviewed labels as case ``case_id`` of the prepared dataset at ``dataset`` (the
        format the Slicer module's *Save corrected case for training* writes), for ``train --data``."""
        from LiverResUNetLib.datasets.prepare import add_case

        return Path(add_case(dataset, Case(case_id, self.ct, self.labels, "reviewed in the browser"),
                             source="reviewed in the browser"))

    @property
    def recovery_path(self) -> Path:
        return self.output / RECOVERY_NAME

    def write_recovery(self) -> None:
        """The working labels as an .npz (read back by ``np.load``), after every edit: compressed at zlib's fastest
        level, about four times as fast as numpy's default for a CT's labels, as the page waits for it."""
        arrays = {"key": np.array(self.key), "labels": self.labels.array, "accepted": np.array(self.accepted)}
        with atomic_path(self.recovery_path) as temporary:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                for name, array in arrays.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)

    def recovery_available(self) -> bool:
        """Whether the output folder holds unsaved edits of this very case (same inputs) that differ from now."""
        labels = self._recovered_labels()
        return labels is not None and not np.array_equal(labels, self.labels.array)

    def _recovered_labels(self) -> np.ndarray | None:
        if not self.recovery_path.is_file():
            return None
        try:
            with np.load(self.recovery_path) as stored:
                if str(stored["key"]) != self.key or stored["labels"].shape != self.labels.shape:
                    return None
                return np.array(stored["labels"], dtype=np.uint8)
        except (OSError, ValueError, KeyError):
            return None

    def resume(self) -> Edit | None:
        """Bring back the recovered edits as one undoable edit."""
        labels = self._recovered_labels()
        return None if labels is None else self._commit("resume unsaved edits", labels)

    def discard_recovery(self) -> None:
        self.recovery_path.unlink(missing_ok=True)
