"""The module's logic without its GUI: segment a volume node, compare, save a corrected case for training.

:class:`SegmentLiverLogic` works on an explicit MRML scene, so the Slicer module (``slicer.mrmlScene``), the
headless ``segment`` command and pytest (``slicer-core``) run the same code. ``process`` computes everything
(prediction, segments, surfaces, measurements) before it touches the scene: a cancel or an error leaves the
scene exactly as it was. A segmentation it wrote carries a fingerprint of its content; once the radiologist
edits it, the fingerprint no longer matches and a new run writes to a new node instead.
"""

from dataclasses import dataclass
from pathlib import Path

from LiverResUNetLib.errors import Cancelled, input_error
from LiverResUNetLib.scene.results_table import results_table
from LiverResUNetLib.scene.segmentation_nodes import (content_fingerprint, labels_to_segmentation,
                                                      segmentation_to_labels)
from LiverResUNetLib.scene.volume_nodes import node_to_volume

FINGERPRINT_ATTRIBUTE = "LiverResUNet.WrittenContent"
MODEL_ATTRIBUTE = "LiverResUNet.Model"
RESULTS_TABLE_ROLE = "LiverResUNet.ResultsTable"
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

    postprocess: object = None
    outputSegmentation: object = None
    replaceEdited: bool = False
    closedSurface: bool = True
    batchSize: int | None = None


def describe_model_card(card):
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


def describe_comparison(metrics):
    """A few readable lines from ``evaluation.metrics.case_metrics``: Dice and HD95 per structure, lesions."""
    def shown(value, pattern):
        return "n/a" if value is None else pattern.format(value)

    lines = []
    for key, title in (("liver", "Liver"), ("tumor", "Tumor")):
        scores = metrics[key]
        lines.append(f"{title}: Dice {shown(scores['dice'], '{:.3f}')}, HD95 {shown(scores['hd95_mm'], '{:.1f} mm')}")
    lesions = metrics["lesions"]
    lines.append(f"Lesions found: {lesions['detected']} of {lesions['reference_lesions']}; "
                 f"false positives: {lesions['false_positive']}")
    return "\n".join(lines)


def available_devices():
    """(key, label) pairs for a device choice: automatic, each accelerator found (named), and the CPU."""
    import torch

    accelerators = []
    if torch.cuda.is_available():
        accelerators.append(("cuda", f"GPU: {torch.cuda.get_device_name(0)}"))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        accelerators.append(("mps", "GPU: Apple (MPS)"))
    best = accelerators[0][1] if accelerators else "CPU"
    return [("auto", f"Automatic ({best})")] + accelerators + [("cpu", "CPU")]


class SegmentLiverLogic:
    """Liver and liver-tumour segmentation of volume nodes in one MRML scene."""

    def __init__(self, scene):
        self.scene = scene
        self._models = {}

    def loadModel(self, model):
        """A loaded model from a model file path (kept for the next call while the file is unchanged), or the
        given ``LoadedModel`` itself."""
        if hasattr(model, "network"):
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
    def isOurUneditedResult(segmentationNode):
        """True when ``segmentationNode`` holds exactly what :meth:`process` last wrote into it."""
        written = segmentationNode.GetAttribute(FINGERPRINT_ATTRIBUTE)
        return bool(written) and written == content_fingerprint(segmentationNode)

    def mayOverwrite(self, segmentationNode, replaceEdited=False):
        """Whether :meth:`process` may write into ``segmentationNode``: it is empty, unedited, or replacing
        edits was asked for explicitly."""
        return (replaceEdited or segmentationNode.GetSegmentation().GetNumberOfSegments() == 0
                or self.isOurUneditedResult(segmentationNode))

    def process(self, inputVolume, model, device="auto", options=None, progress=None, cancel=None):
        """Segment the liver and liver tumours of ``inputVolume``; return the segmentation node.

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
        """
        from LiverResUNetLib.inference.predictor import predict_volume
        from LiverResUNetLib.measurements import measure_liver

        options = options or SegmentOptions()
        report = progress or (lambda fraction, message: None)

        def checkCancel():
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
        report(PREDICTION_END, "building the segments" + (" and 3D surfaces" if options.closedSurface else ""))
        segmentation = labels_to_segmentation(labels, closed_surface=options.closedSurface)
        checkCancel()
        report(0.95, "measuring")
        table = results_table(measure_liver(labels), f"{inputVolume.GetName()} liver results")
        checkCancel()
        target = options.outputSegmentation
        if target is not None and not self.mayOverwrite(target, options.replaceEdited):
            target = None
        result = self._addToScene(inputVolume, segmentation, table, target)
        result.SetAttribute(FINGERPRINT_ATTRIBUTE, content_fingerprint(result))
        if not hasattr(model, "network"):
            result.SetAttribute(MODEL_ATTRIBUTE, str(model))
        report(1.0, "done")
        return result

    def _addToScene(self, inputVolume, segmentation, table, target):
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
    def resultsTable(segmentationNode):
        """The results table node of a segmentation made by :meth:`process` (None for others)."""
        return segmentationNode.GetNodeReference(RESULTS_TABLE_ROLE)

    @staticmethod
    def labelVolume(segmentationNode, referenceVolume):
        """The (possibly corrected) segmentation as a label Volume (0/1/2) on ``referenceVolume``'s grid."""
        return segmentation_to_labels(segmentationNode, node_to_volume(referenceVolume))

    def compareWithReference(self, segmentationNode, referenceSegmentationNode, referenceVolume):
        """Scores of a segmentation against a reference segmentation, on ``referenceVolume``'s grid.

        The evaluation's own per-case metrics (Dice, IoU, HD95... for liver and tumour, lesion detection,
        confusion matrix), so the numbers mean what the training report's numbers mean.
        """
        from LiverResUNetLib.evaluation.metrics import case_metrics

        grid = node_to_volume(referenceVolume)
        predicted = segmentation_to_labels(segmentationNode, grid)
        reference = segmentation_to_labels(referenceSegmentationNode, grid)
        return case_metrics(predicted.array, reference.array, grid.spacing)

    def saveCorrectedCase(self, inputVolume, segmentationNode, datasetFolder, caseId):
        """Write the CT and its (corrected) segmentation as case ``caseId`` of the prepared dataset at
        ``datasetFolder`` (created when missing; an older case of that id is replaced), so that the next
        ``train --data datasetFolder`` learns from the correction. Returns the dataset folder."""
        from LiverResUNetLib.datasets.cases import Case
        from LiverResUNetLib.datasets.prepare import add_case

        ct = node_to_volume(inputVolume)
        labels = segmentation_to_labels(segmentationNode, ct)
        return add_case(datasetFolder, Case(caseId, ct, labels, f"{segmentationNode.GetName()} (Slicer)"))
