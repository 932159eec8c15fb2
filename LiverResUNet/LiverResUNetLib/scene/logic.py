"""The module's logic without its GUI: segment a volume node, compare, save a corrected case for training.

:class:`SegmentLiverLogic` works on an explicit MRML scene, so the Slicer module (``slicer.mrmlScene``), the
headless ``segment`` command and pytest (``slicer-core``) run the same code. ``process`` computes everything
(prediction, segments, surfaces, measurements) before it touches the scene: a cancel or an error leaves the
scene exactly as it was. A segmentation it wrote carries a fingerprint of its content; once the radiologist
edits it, the fingerprint no longer matches and a new run writes to a new node instead.
"""

from __future__ import annotations

import functools
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.datasets.cases import Case
from LiverResUNetLib.errors import Cancelled, input_error
from LiverResUNetLib.scene.dicom_export import export_to_dicom_database
from LiverResUNetLib.scene.node_attributes import (
    FINGERPRINT_ATTRIBUTE,
    INSTANCE_UIDS_ATTRIBUTE,
    MODEL_ATTRIBUTE,
    RESULTS_TABLE_ROLE,
    is_unedited_result,
)
from LiverResUNetLib.scene.results_table import results_table
from LiverResUNetLib.scene.segmentation_nodes import (
    SEGMENTS,
    SegmentSpec,
    add_closed_surface,
    content_fingerprint,
    labels_to_segmentation,
    segmentation_to_labels,
)
from LiverResUNetLib.scene.volume_nodes import node_to_volume
from LiverResUNetLib.volume import Volume

if typing.TYPE_CHECKING:
    import slicer
    from typing_extensions import TypeIs

    from LiverResUNetLib.inference.postprocessing import PostprocessOptions
    from LiverResUNetLib.model.model_file import LoadedModel
    from LiverResUNetLib.scene.dicom_export import DicomDatabase, DicomExport, ExporterClass

    #: A model file, or a model already loaded from one.
    ModelSource = str | os.PathLike[str] | LoadedModel
    # The MRML nodes the logic reads and writes.
    SegmentationNode: TypeAlias = slicer.vtkMRMLSegmentationNode
    VolumeNode: TypeAlias = slicer.vtkMRMLScalarVolumeNode
    TableNode: TypeAlias = slicer.vtkMRMLTableNode

# Share of the progress bar before and after the network's prediction.
PREDICTION_START, PREDICTION_END = 0.05, 0.85


@dataclass
class SegmentOptions:
    """How :meth:`SegmentLiverLogic.process` runs and where its result goes.

    Attributes:
        postprocess: ``inference.postprocessing.PostprocessOptions``; None: the default post-processing.
        outputSegmentation: a segmentation node to write into; None: a new node.
        replaceEdited: write into ``outputSegmentation`` even when it holds other content (edits, another
            segmentation) than this logic last wrote there. Off by default: edits are never lost silently.
        closedSurface: also compute the 3D surfaces (not stored in files; the headless command skips them).
        batchSize: slices per network batch; None: the predictor's choice for the device.
    """

    postprocess: PostprocessOptions | None = None
    outputSegmentation: SegmentationNode | None = None
    replaceEdited: bool = False
    closedSurface: bool = True
    batchSize: int | None = None


def describe_model_card(card: dict[str, Any]) -> str:
    """A few lines telling a user what a model file is: what it was trained on, how well it scored, how it
    reads a CT."""
    training, metrics = card.get("training") or {}, card.get("metrics") or {}
    split = training.get("split") or {}
    lines = []
    if training.get("data"):
        cases = f" ({len(split.get('train', []))} training, {len(split.get('val', []))} validation cases)" \
            if split else ""
        lines.append(f"Trained on {training['data']}{cases}, {training.get('epochs', '?')} epochs")
    else:
        lines.append("Untrained or of unknown origin: no training data recorded")
    scores = [f"{name} {metrics[key]:.3f}" for key, name in (("val_liver_dice", "liver"), ("val_tumor_dice", "tumor"))
              if isinstance(metrics.get(key), (int, float))]
    if scores:
        lines.append(f"Validation Dice: {', '.join(scores)}")
    preprocessing = card.get("preprocessing") or {}
    lines.append(f"Input: window {preprocessing.get('window')} HU, {preprocessing.get('equalization')} equalization, "
                 f"{preprocessing.get('input_size')} px, {preprocessing.get('context_slices')} neighbour slice(s) "
                 "on each side")
    lines.append(f"Classes: {', '.join(card.get('class_names', []))}")
    return "\n".join(lines)


def describe_comparison(metrics: dict[str, Any]) -> str:
    """A few readable lines from ``evaluation.metrics.case_metrics``: Dice and HD95 per structure, lesions."""
    def shown(value: float | None, pattern: str) -> str:
        return "n/a" if value is None else pattern.format(value)

    lines = []
    for key, title in (("liver", "Liver"), ("tumor", "Tumor")):
        scores = metrics[key]
        lines.append(f"{title}: Dice {shown(scores['dice'], '{:.3f}')}, HD95 {shown(scores['hd95_mm'], '{:.1f} mm')}")
    lesions = metrics["lesions"]
    lines.append(f"Lesions found: {lesions['detected']} of {lesions['reference_lesions']}; "
                 f"false positives: {lesions['false_positive']}")
    return "\n".join(lines)


class SegmentLiverLogic:
    """Liver and liver-tumor segmentation of volume nodes in one MRML scene."""

    def __init__(self, scene: slicer.vtkMRMLScene) -> None:
        super().__init__()  # the Slicer module's logic also derives from ScriptedLoadableModuleLogic
        self.scene = scene
        self._models: dict[tuple[str, int], LoadedModel] = {}

    def loadModel(self, model: ModelSource) -> LoadedModel:
        """A loaded model from a model file path (kept for the next call while the file is unchanged), or the
        given ``LoadedModel`` itself."""
        if _is_loaded(model):
            return model
        from LiverResUNetLib.model.model_file import load_model

        path = Path(model)
        if not path.is_file():
            raise input_error(path, "model file does not exist")
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key not in self._models:
            self._models = {key: load_model(path)}
        return self._models[key]

    @staticmethod
    def isOurUneditedResult(segmentationNode: SegmentationNode) -> bool:
        """True when ``segmentationNode`` holds exactly what :meth:`process` last wrote into it."""
        return is_unedited_result(segmentationNode)

    def mayOverwrite(self, segmentationNode: SegmentationNode, replaceEdited: bool = False) -> bool:
        """Whether :meth:`process` may write into ``segmentationNode``: it is empty, unedited, or replacing
        edits was asked for explicitly."""
        return (replaceEdited or segmentationNode.GetSegmentation().GetNumberOfSegments() == 0
                or self.isOurUneditedResult(segmentationNode))

    def process(self, inputVolume: VolumeNode, model: ModelSource, device: str = "auto",
                options: SegmentOptions | None = None, progress: Progress | None = None,
                cancel: CancelCheck | None = None) -> SegmentationNode:
        """Segment the liver and liver tumors of ``inputVolume`` in this process; return the segmentation node.

        Args:
            inputVolume: a scalar volume node of ``self.scene`` (CT in HU).
            model: a model file path or an already loaded model (``model_file.load_model``).
            device: "auto", "cuda", "mps" or "cpu".
            options: :class:`SegmentOptions`.
            progress: optional ``progress(fraction, message)``.
            cancel: optional ``cancel() -> bool``; True raises ``errors.Cancelled`` with the scene untouched.

        The segmentation gets the segments "Liver" and "Liver tumor" on the input's grid (and under the input's
        parent transform), and a results table (see :meth:`resultsTable`). It goes into
        ``options.outputSegmentation`` when :meth:`mayOverwrite` allows, into a new node otherwise.
        The Slicer module's Apply runs the same work as a :class:`SegmentationRun`, the network in a child process.
        """
        from LiverResUNetLib.inference.predictor import predict_volume

        options = options or SegmentOptions()
        report = progress or (lambda fraction, message: None)

        def checkCancel() -> None:
            if cancel is not None and cancel():
                raise Cancelled()

        report(0.0, "reading the volume")
        volume = node_to_volume(inputVolume)
        loaded = self.loadModel(model)
        checkCancel()
        labels = predict_volume(volume, loaded, device=device, batch_size=options.batchSize,
                                postprocess=options.postprocess,
                                progress=lambda fraction, message: report(
                                    PREDICTION_START * (1.0 - fraction) + PREDICTION_END * fraction, message),
                                cancel=cancel)
        result = ResultSteps(self, inputVolume, labels, options, None if _is_loaded(model) else model)
        for fraction, message, step in result.steps:
            checkCancel()
            report(fraction, message)
            step()
        report(1.0, "done")
        return result.segmentation

    def _addToScene(self, inputVolume: VolumeNode, segmentation: SegmentationNode, table: TableNode,
                    target: SegmentationNode | None) -> SegmentationNode:
        """Put a finished result into the scene; if adding a node fails, take the ones added out again.

        Writing into an existing ``target`` (its segments, its old results table) comes after every step that
        can fail.
        """
        added = []
        try:
            table.SetName(self.scene.GenerateUniqueName(table.GetName()))
            self.scene.AddNode(table)
            added.append(table)
            if target is None:
                segmentation.SetName(self.scene.GenerateUniqueName(f"{inputVolume.GetName()} liver segmentation"))
                self.scene.AddNode(segmentation)
                added.append(segmentation)
                segmentation.CreateDefaultDisplayNodes()
                target = segmentation
        except BaseException:
            for node in reversed(added):
                self.scene.RemoveNode(node)
            raise
        oldTable = target.GetNodeReference(RESULTS_TABLE_ROLE)
        if target is not segmentation:
            target.GetSegmentation().DeepCopy(segmentation.GetSegmentation())
        # Transform first: the reference geometry is taken in the segmentation's own coordinates.
        target.SetAndObserveTransformNodeID(inputVolume.GetTransformNodeID())
        target.SetReferenceImageGeometryParameterFromVolumeNode(inputVolume)
        target.SetNodeReferenceID(RESULTS_TABLE_ROLE, table.GetID())
        if oldTable is not None:
            self.scene.RemoveNode(oldTable)
        return target

    @staticmethod
    def resultsTable(segmentationNode: SegmentationNode) -> TableNode | None:
        """The results table node of a segmentation made by :meth:`process` (None for others)."""
        return segmentationNode.GetNodeReference(RESULTS_TABLE_ROLE)

    @staticmethod
    def labelVolume(segmentationNode: SegmentationNode, referenceVolume: VolumeNode) -> Volume:
        """The (possibly corrected) segmentation as a label Volume (0/1/2) on ``referenceVolume``'s grid."""
        return segmentation_to_labels(segmentationNode, node_to_volume(referenceVolume))

    @staticmethod
    def dicomSegLabels(path: str | os.PathLike[str], referenceVolume: VolumeNode) -> Volume:
        """The label Volume of the DICOM SEG file ``path`` on ``referenceVolume``'s grid.

        A volume loaded by Slicer's DICOM module names its instances (attribute ``DICOM.instanceUIDs``, in slice
        order): a SEG made from other instances is refused then; any SEG not on the volume's slices always is.

        Raises:
            InputError: naming the file and why it does not belong to the volume (see ``dicomseg.reader``).
        """
        from LiverResUNetLib.dicomseg.reader import read_seg_labels

        grid = node_to_volume(referenceVolume)
        instances = (referenceVolume.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
        if len(instances) == grid.shape[0]:
            grid.metadata["sop_instance_uids"] = instances
        return read_seg_labels(path, grid)

    def loadDicomSegReference(self, path: str | os.PathLike[str], referenceVolume: VolumeNode) -> SegmentationNode:
        """A segmentation node, added to the scene, of the DICOM SEG file ``path`` read onto ``referenceVolume``
        (see :meth:`dicomSegLabels`): a reference to compare with when Slicer cannot load SEG objects itself."""
        node = labels_to_segmentation(self.dicomSegLabels(path, referenceVolume), closed_surface=False)
        node.SetName(self.scene.GenerateUniqueName(f"{Path(path).stem} reference"))
        self.scene.AddNode(node)
        node.CreateDefaultDisplayNodes()
        return node

    def compareWithReference(self, segmentationNode: SegmentationNode,
                             reference: str | os.PathLike[str] | SegmentationNode,
                             referenceVolume: VolumeNode) -> dict[str, Any]:
        """Scores of a segmentation against a reference, on ``referenceVolume``'s grid.

        ``reference`` is a segmentation node or the path of a DICOM SEG file of ``referenceVolume``'s series.
        The evaluation's own per-case metrics (Dice, IoU, HD95... for liver and tumor, lesion detection,
        confusion matrix), so the numbers mean what the training report's numbers mean.
        """
        from LiverResUNetLib.evaluation.metrics import case_metrics

        grid = node_to_volume(referenceVolume)
        predicted = segmentation_to_labels(segmentationNode, grid)
        if isinstance(reference, (str, os.PathLike)):
            labels = self.dicomSegLabels(reference, referenceVolume)
        else:
            labels = segmentation_to_labels(reference, grid)
        return case_metrics(predicted.array, labels.array, grid.spacing)

    def saveCorrectedCase(self, inputVolume: VolumeNode, segmentationNode: SegmentationNode, datasetFolder: str | Path,
                          caseId: str) -> Path:
        """Write the CT and its (corrected) segmentation as case ``caseId`` of the prepared dataset at
        ``datasetFolder`` (created when missing; an older case of that id is replaced), so that the next
        ``train --data datasetFolder`` learns from the correction. Returns the dataset folder."""
        from LiverResUNetLib.datasets.prepare import add_case

        ct = node_to_volume(inputVolume)
        labels = segmentation_to_labels(segmentationNode, ct)
        return add_case(datasetFolder, Case(caseId, ct, labels, f"{segmentationNode.GetName()} (Slicer)"))

    def exportToDicomDatabase(self, segmentationNode: SegmentationNode, inputVolume: VolumeNode,
                              database: DicomDatabase, modelPath: str | Path,
                              exporterClass: ExporterClass | None = None) -> DicomExport:
        """Store the (possibly corrected) segmentation as a DICOM SEG of ``inputVolume``'s series in Slicer's
        DICOM database (``scene.dicom_export``); returns its ``DicomExport``.

        The SEG names the model the segmentation was made with (its file, when still there), else ``modelPath``.
        ``exporterClass``: QuantitativeReporting's ``DICOMSegmentationExporter``, or None to write with highdicom.
        """
        from LiverResUNetLib.model.model_file import read_card

        madeWith = segmentationNode.GetAttribute(MODEL_ATTRIBUTE)
        card = read_card(madeWith if madeWith and Path(madeWith).is_file() else modelPath)
        return export_to_dicom_database(segmentationNode, inputVolume, card, database, exporterClass)


class ResultSteps:
    """The work between a label Volume and a segmentation in the scene, as steps run one at a time.

    ``steps`` is a list of (fraction, message, step); a caller may stop between any two (Cancel): only the last
    step touches the scene, and it adds everything or nothing. ``segmentation`` is the result after the last.
    """

    def __init__(self, logic: SegmentLiverLogic, inputVolume: VolumeNode, labels: Volume, options: SegmentOptions,
                 modelPath: str | os.PathLike[str] | None = None) -> None:
        self.logic, self.inputVolume, self.labels, self.options = logic, inputVolume, labels, options
        self.modelPath = modelPath
        self.segmentation: SegmentationNode | None = None
        self._new: SegmentationNode | None = None
        self._table: TableNode | None = None
        self.steps: list[tuple[float, str, Callable[[], None]]] = [
            (PREDICTION_END, "building the segments", self._buildSegments)]
        if options.closedSurface:  # one step per segment: Cancel can act between them
            self.steps += [(PREDICTION_END + 0.05 * (index + 1) / len(SEGMENTS), "computing the 3D surfaces",
                            functools.partial(self._buildSurface, spec)) for index, spec in enumerate(SEGMENTS)]
        self.steps += [(0.95, "measuring", self._measure), (0.98, "adding the results to the scene", self._addToScene)]

    def _buildSegments(self) -> None:
        self._new = labels_to_segmentation(self.labels, closed_surface=False)

    def _buildSurface(self, spec: SegmentSpec) -> None:
        add_closed_surface(self._new, spec.segment_id)

    def _measure(self) -> None:
        from LiverResUNetLib.measurements import measure_liver

        self._table = results_table(measure_liver(self.labels), f"{self.inputVolume.GetName()} liver results")

    def _addToScene(self) -> None:
        options, logic = self.options, self.logic
        if not logic.scene.IsNodePresent(self.inputVolume):
            raise RuntimeError(f"the input volume {self.inputVolume.GetName()} was removed from the scene")
        target = options.outputSegmentation
        if target is not None and (not logic.scene.IsNodePresent(target)
                                   or not logic.mayOverwrite(target, options.replaceEdited)):
            target = None
        result = logic._addToScene(self.inputVolume, self._new, self._table, target)
        result.SetAttribute(FINGERPRINT_ATTRIBUTE, content_fingerprint(result))
        if self.modelPath is not None:
            result.SetAttribute(MODEL_ATTRIBUTE, str(self.modelPath))
        self.segmentation = result


class SegmentationRun:
    """One Apply of the Slicer module, advanced a little at each call so the GUI thread never blocks.

    The network runs in a child process (:class:`~LiverResUNetLib.inference.background.BackgroundPrediction`);
    once it is done, each :meth:`advance` runs one of the :class:`ResultSteps`. :meth:`cancel` works at every
    stage and leaves the scene as it was; so does an error, which :meth:`advance` raises after cleaning up.

    Args:
        logic: the :class:`SegmentLiverLogic` whose scene receives the result.
        inputVolume, modelPath, device, options: as for :meth:`SegmentLiverLogic.process`.
        python, env: the child's Python executable (Slicer: PythonSlicer) and environment.
    """

    def __init__(self, logic: SegmentLiverLogic, inputVolume: VolumeNode, modelPath: str | Path, device: str = "auto",
                 options: SegmentOptions | None = None, python: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        from LiverResUNetLib.inference.background import BackgroundPrediction

        self.logic, self.inputVolume, self.modelPath = logic, inputVolume, Path(modelPath)
        self.options = options or SegmentOptions()
        if not self.modelPath.is_file():
            raise input_error(self.modelPath, "model file does not exist")
        self.prediction = BackgroundPrediction(node_to_volume(inputVolume), self.modelPath, device,
                                               self.options.postprocess, self.options.batchSize, python, env)
        self.result: ResultSteps | None = None
        self.done = False
        self.fraction, self.message = 0.0, "starting the prediction"

    @property
    def segmentation(self) -> SegmentationNode | None:
        """The segmentation node once :attr:`done`."""
        return self.result.segmentation if self.done and self.result is not None else None

    def advance(self) -> tuple[float, str]:
        """Do the next bit of work (never long); returns (fraction, message). :attr:`done` says when it is over."""
        try:
            if self.result is None:
                if self.prediction.poll():
                    labels = self.prediction.labels()
                    self.prediction.close()
                    self.result = ResultSteps(self.logic, self.inputVolume, labels, self.options, self.modelPath)
                else:
                    scaled = PREDICTION_START + (PREDICTION_END - PREDICTION_START) * self.prediction.fraction
                    self.fraction, self.message = scaled, self.prediction.message
            elif self.result.steps:
                self.fraction, self.message, step = self.result.steps.pop(0)
                step()
                if not self.result.steps:
                    self.done = True
                    self.fraction, self.message = 1.0, "done"
        except BaseException:
            self.prediction.cancel()
            raise
        return self.fraction, self.message

    def cancel(self) -> None:
        """Stop now: the child process is ended, its files removed, the scene left as it was."""
        if not self.done:
            self.prediction.cancel()


def _is_loaded(model: ModelSource) -> TypeIs[LoadedModel]:
    """Whether ``model`` is a loaded model (it has a network) rather than the path of a model file."""
    return hasattr(model, "network")
