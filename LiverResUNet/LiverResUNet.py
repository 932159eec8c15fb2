"""Slicer module "Segment liver and tumor": a CT in, liver and liver-tumor segments out, ready to review.

The GUI is thin: every computation is in ``LiverResUNetLib.scene.logic``, which the headless ``segment``
command and the tests run outside the application. Apply runs the network in a child process (PythonSlicer)
and builds the result in short steps from a timer, so the window stays live and Cancel works at every stage.
The packages of Resources/requirements.txt and PyTorch are installed on first use, after asking; nothing heavy
is imported when Slicer loads or opens the module.
"""

import importlib.util
import logging
import shutil
from pathlib import Path
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LiverResUNetLib.devices import DEVICES
from LiverResUNetLib.scene.lesion_review import LesionReviewLogic
from LiverResUNetLib.scene.logic import (
    SegmentationRun,
    SegmentLiverLogic,
    SegmentOptions,
    describe_comparison,
    describe_model_card,
)
from LiverResUNetLib.scene.node_attributes import INSTANCE_UIDS_ATTRIBUTE

DOCUMENTATION_URL = "https://github.com/LiverResUNet/SlicerLiverResUNet#readme"
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "Resources" / "requirements.txt"
# What the GUI calls each device of LiverResUNetLib.devices; which GPU "auto" takes is only known once torch is
# imported, at Apply.
DEVICE_LABELS = {"auto": "Automatic (GPU when there is one)", "cuda": "GPU (CUDA)", "mps": "GPU (Apple MPS)",
                 "cpu": "CPU"}
# How often the GUI advances a running segmentation (milliseconds).
RUN_TIMER_INTERVAL_MS = 100
# The self-test's tiny phantom segments in seconds; a run still going after this has hung.
SELF_TEST_RUN_TIMEOUT_S = 300


class LiverResUNet(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Segment liver and tumor")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["DICOM", "Segmentations"]
        self.parent.contributors = ["LiverResUNet developers"]
        self.parent.helpText = _(
            "Segments the liver and liver tumors of an abdominal CT with a 2D ResUNet, slice by slice. "
            "Pick a CT series from the DICOM database (or any loaded volume) and a model file, press Apply, "
            "then review and correct the result in the Segment Editor. The results table gives the liver volume, "
            "the tumor count, volume and burden, and each lesion's volume, longest axial diameter and centroid. "
            "A corrected case can be saved into a training dataset for the next training run. "
            "See the {link_start}documentation{link_end}.").format(
                link_start=f'<a href="{DOCUMENTATION_URL}">', link_end="</a>")
        self.parent.acknowledgementText = _(
            "Trained and evaluated on 3D-IRCADb-01 (IRCAD, Strasbourg), LiTS and the Medical Segmentation "
            "Decathlon. Built on 3D Slicer, PyTorch, pydicom, SimpleITK and scikit-image.")


def missingPythonRequirements():
    """The requirements of Resources/requirements.txt, and torch, that are not installed yet."""
    from packaging.requirements import Requirement

    requirements = [Requirement(line.strip()) for line in REQUIREMENTS_FILE.read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    missing = [str(requirement) for requirement in requirements if not _isInstalled(requirement)]
    return (["torch"] if importlib.util.find_spec("torch") is None else []) + missing


def _isInstalled(requirement):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(requirement.name) in requirement.specifier
    except PackageNotFoundError:
        return False


def installPythonRequirements(askConfirmation=True):
    """Install what is missing, after asking (unless ``askConfirmation`` is False: the trainer's ``install``
    command, which the user typed). Returns False when the user declined.

    torch comes through the PyTorch extension (PyTorchUtils picks the build matching the GPU driver); the rest
    with Slicer 5.12's ``slicer.packaging.pip_ensure``, or ``slicer.util.pip_install`` on Slicer 5.10.
    """
    missing = missingPythonRequirements()
    if not missing:
        return True
    if askConfirmation and not slicer.util.confirmOkCancelDisplay(
            _("This module needs these Python packages: {packages}. Install them now? "
              "This downloads several hundred MB and may take a few minutes.").format(packages=", ".join(missing)),
            _("Install Python packages")):
        return False
    if "torch" in missing:
        missing.remove("torch")
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            raise RuntimeError(_("This module needs PyTorch: install the PyTorch extension from the Extensions "
                                 "Manager, restart Slicer and press Apply again.")) from None
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            raise RuntimeError(_("PyTorch could not be installed (see the PyTorch Utils module)."))
    if missing:
        try:
            from slicer import packaging
        except ImportError:  # Slicer 5.10
            slicer.util.pip_install(missing)
        else:
            packaging.pip_ensure(packaging.load_requirements(REQUIREMENTS_FILE), prompt_install=False,
                                 requester=_("Segment liver and tumor"))
    return True


def selfTestCanRun(test):
    """Whether a module's self-test can run here: not before the first Apply has installed the packages.

    When it cannot, the test says so in its display and the log and the caller returns: a skipTest or an exception
    would make Reload and Test show an error.
    """
    missing = missingPythonRequirements()
    if missing:
        logging.warning(f"{type(test).__name__} not run: missing Python packages {missing}; press Apply once in "
                        "'Segment liver and tumor' to install them")
        test.delayDisplay(f"Test not run: press Apply once to install {', '.join(missing)}")
    return not missing


def ctSeriesInDatabase(database):
    """The CT series of a DICOM database: dicts with uid, patient, studyDate, description and slices.

    Only the database's own tables are queried (series, study and patient fields, instance lists): no file is
    opened, so a large database lists quickly.
    """
    rows = []
    for patient in database.patients():
        patientName = database.nameForPatient(patient).replace("^", " ").strip()
        for study in database.studiesForPatient(patient):
            studyDate = database.fieldForStudy("StudyDate", study)
            for series in database.seriesForStudy(study):
                if database.fieldForSeries("Modality", series).strip().upper() != "CT":
                    continue
                rows.append({"uid": series, "patient": patientName, "studyDate": studyDate,
                             "description": database.fieldForSeries("SeriesDescription", series),
                             "slices": len(database.instancesForSeries(series))})
    return rows


def quantitativeReportingExporter():
    """QuantitativeReporting's DICOM SEG exporter (the one Slicer's DICOM export uses), or None when that
    extension is not installed: the SEG is then written with highdicom."""
    try:
        from DICOMSegmentationPlugin import DICOMSegmentationExporter
    except ImportError:
        return None
    return DICOMSegmentationExporter


def pythonSlicerExecutable():
    """The Python that runs the network in the background: PythonSlicer beside Slicer (as
    ``slicer.util.executePythonModule`` finds it)."""
    executable = shutil.which("PythonSlicer")
    if not executable:
        raise RuntimeError(_("PythonSlicer was not found beside Slicer."))
    return executable


@parameterNodeWrapper
class LiverResUNetParameterNode:
    """What the GUI shows, saved with the scene. The device is not here: it belongs to the machine."""

    inputVolume: vtkMRMLScalarVolumeNode
    modelPath: Path
    keepLargestLiver: bool = True
    fillLiverHoles: bool = True
    tumorInsideLiver: bool = True
    minTumorMm3: Annotated[float, WithinRange(0.0, 100000.0)] = 10.0
    outputSegmentation: vtkMRMLSegmentationNode
    replaceEdited: bool = False
    referenceSegmentation: vtkMRMLSegmentationNode
    referenceSegFile: Path
    datasetFolder: Path
    caseId: str


class LiverResUNetWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None
        self._runTimer = None
        self._dicomSeriesUids = []
        self._selectedLesion = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LiverResUNet.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LiverResUNetLogic()
        self._runTimer = qt.QTimer()
        self._runTimer.setInterval(RUN_TIMER_INTERVAL_MS)
        self._runTimer.connect("timeout()", self.advanceRun)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.refreshDicomButton.connect("clicked(bool)", self.updateDicomSeriesList)
        self.ui.loadDicomButton.connect("clicked(bool)", self.onLoadDicomButton)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", lambda path: self.updateModelCard())
        self.ui.outputSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.showResults)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.reviewButton.connect("clicked(bool)", self.onReviewButton)
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicomButton)
        self.ui.saveCaseButton.connect("clicked(bool)", self.onSaveCaseButton)
        self.ui.compareButton.connect("clicked(bool)", self.onCompareButton)
        self.ui.resultsTableView.connect("clicked(QModelIndex)", lambda index: self.onResultsRowClicked(index.row()))
        self.ui.rejectLesionButton.connect("clicked(bool)", self.onRejectLesionButton)
        self.ui.addLesionButton.connect("clicked(bool)", self.onAddLesionButton)
        self.ui.referenceSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                                      self.onReferenceSegmentationChanged)
        self.ui.referenceSegFileLineEdit.connect("currentPathChanged(QString)", self.onReferenceSegFileChanged)

        for key in DEVICES:
            self.ui.deviceComboBox.addItem(_(DEVICE_LABELS[key]), key)
        self.initializeParameterNode()
        self.updateDicomSeriesList()

    def cleanup(self):
        self.stopRun()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        """Stop showing the parameter node but keep it, as Slicer's module template does: a run that goes on after
        the user left the module still ends by selecting its result in it."""
        self.disconnectParameterNode()

    def onSceneStartClose(self, caller, event):
        self.stopRun()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def disconnectParameterNode(self):
        """The GUI no longer shows nor edits the parameter node (which stays set)."""
        if self._parameterNode and self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)

    def setParameterNode(self, inputParameterNode: Optional[LiverResUNetParameterNode]):
        self.disconnectParameterNode()
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()
            self.updateModelCard()
            self.showResults(self._parameterNode.outputSegmentation)

    def updateButtons(self, caller=None, event=None):
        """Enable what can be used now: nothing but Cancel while a segmentation runs."""
        parameters = self._parameterNode
        if parameters is None:
            return
        busy = self._run is not None
        for panel in (self.ui.inputsCollapsibleButton, self.ui.modelCollapsibleButton,
                      self.ui.optionsCollapsibleButton, self.ui.outputsCollapsibleButton,
                      self.ui.resultsCollapsibleButton, self.ui.trainingCollapsibleButton,
                      self.ui.compareCollapsibleButton):
            panel.enabled = not busy
        self.ui.cancelButton.enabled = busy
        hasModel = parameters.modelPath.is_file()
        self.ui.applyButton.enabled = not busy and bool(parameters.inputVolume) and hasModel
        self.ui.applyButton.toolTip = (_("Segment the liver and liver tumors of the input volume.")
                                       if hasModel else _("Select an input volume and a model file."))
        result = parameters.outputSegmentation
        self.ui.reviewButton.enabled = bool(result)
        fromDicom = bool(parameters.inputVolume) and bool(
            parameters.inputVolume.GetAttribute(INSTANCE_UIDS_ATTRIBUTE))
        self.ui.exportDicomButton.enabled = not busy and bool(result) and fromDicom
        self.ui.exportDicomButton.toolTip = (
            _("Store the result as a DICOM Segmentation of the CT series in Slicer's DICOM database.") if fromDicom
            else _("The input volume was not loaded from the DICOM database: a DICOM SEG needs its series."))
        self.ui.saveCaseButton.enabled = (bool(result) and bool(parameters.inputVolume)
                                          and parameters.datasetFolder != Path() and bool(parameters.caseId))
        self.ui.compareButton.enabled = (bool(result) and bool(parameters.inputVolume)
                                         and self.comparisonReference() is not None)

    def updateModelCard(self):
        path = Path(self.ui.modelPathLineEdit.currentPath or ".")
        if not path.is_file():
            self.ui.modelCardLabel.text = _("No model file selected.")
        else:
            from LiverResUNetLib.model.model_file import read_card

            try:
                self.ui.modelCardLabel.text = describe_model_card(read_card(path))
            except ModuleNotFoundError:  # a model file written before its card was also stored as JSON needs torch
                self.ui.modelCardLabel.text = _("PyTorch is not installed yet: it is installed when you press Apply.")
            except Exception as error:  # shown, not raised: the user may still be picking the file
                self.ui.modelCardLabel.text = _("Not a usable model file: {error}").format(error=error)

    def updateDicomSeriesList(self):
        table = self.ui.dicomSeriesTable
        table.setRowCount(0)
        self._dicomSeriesUids = []
        database = slicer.dicomDatabase
        if database is None or not database.isOpen:
            self.ui.loadDicomButton.enabled = False
            return
        for row, series in enumerate(ctSeriesInDatabase(database)):
            table.insertRow(row)
            for column, key in enumerate(("patient", "studyDate", "description", "slices")):
                table.setItem(row, column, qt.QTableWidgetItem(str(series[key])))
            self._dicomSeriesUids.append(series["uid"])
        table.resizeColumnsToContents()
        self.ui.loadDicomButton.enabled = bool(self._dicomSeriesUids)

    def onLoadDicomButton(self):
        row = self.ui.dicomSeriesTable.currentRow()
        if row < 0:
            slicer.util.warningDisplay(_("Select a series in the list first."))
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to load the DICOM series."), waitCursor=True):
            from DICOMLib import DICOMUtils

            loaded = [slicer.mrmlScene.GetNodeByID(nodeId)
                      for nodeId in DICOMUtils.loadSeriesByUID([self._dicomSeriesUids[row]])]
            volumes = [node for node in loaded if node and node.IsA("vtkMRMLScalarVolumeNode")]
            if not volumes:
                raise ValueError(_("Slicer's DICOM module loaded no volume from this series."))
            self._parameterNode.inputVolume = volumes[0]

    def segmentOptions(self):
        from LiverResUNetLib.inference.postprocessing import PostprocessOptions

        parameters = self._parameterNode
        postprocess = PostprocessOptions(keep_largest_liver=parameters.keepLargestLiver,
                                         fill_liver_holes=parameters.fillLiverHoles,
                                         tumor_inside_liver=parameters.tumorInsideLiver,
                                         min_tumor_mm3=parameters.minTumorMm3)
        return SegmentOptions(postprocess=postprocess, outputSegmentation=parameters.outputSegmentation,
                              replaceEdited=parameters.replaceEdited)

    def onApplyButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to install the Python packages this module needs."),
                                             waitCursor=True):
            if not installPythonRequirements():
                return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the segmentation."), waitCursor=True):
            parameters = self._parameterNode
            self._run = SegmentationRun(self.logic, parameters.inputVolume, parameters.modelPath,
                                        self.ui.deviceComboBox.currentData, self.segmentOptions(),
                                        python=pythonSlicerExecutable())
        self.showProgress(0.0, _("Starting..."))
        self.updateButtons()
        self._runTimer.start()

    def advanceRun(self):
        """One timer tick of a running segmentation: a progress update or one short step."""
        try:
            fraction, message = self._run.advance()
        except Exception as error:
            self.stopRun()
            self.ui.statusLabel.text = _("Failed: the scene is unchanged.")
            logging.exception("Segmentation failed")
            slicer.util.errorDisplay(_("Failed to segment the liver.\n\n{error}").format(error=error))
            return
        self.showProgress(fraction, message)
        if self._run.done:
            segmentation = self._run.segmentation
            self.stopRun()
            self._parameterNode.outputSegmentation = segmentation
            self.ui.statusLabel.text = _("Done: {name}.").format(name=segmentation.GetName())
            self.showResults(segmentation)

    def stopRun(self):
        """Stop a running segmentation (its child process and files go; the scene stays as it was)."""
        if self._runTimer is not None:
            self._runTimer.stop()
        if self._run is not None:
            self._run.cancel()
            self._run = None
        self.ui.progressBar.value = 0
        self.updateButtons()

    def showProgress(self, fraction, message):
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = message

    def onCancelButton(self):
        self.stopRun()
        self.ui.statusLabel.text = _("Cancelled: the scene is unchanged.")

    def showResults(self, segmentation):
        """Show the results table of ``segmentation`` (none for a segmentation this module did not make)."""
        self.ui.resultsTableView.setMRMLTableNode(self.logic.resultsTable(segmentation) if segmentation else None)
        self._selectedLesion = None
        self.ui.rejectLesionButton.enabled = False
        self.ui.addLesionButton.enabled = bool(segmentation) and bool(self.logic.resultsTable(segmentation))

    def onResultsRowClicked(self, row):
        """A lesion's row centres the slice views on it and selects it for Reject."""
        segmentation = self._parameterNode.outputSegmentation
        self._selectedLesion = LesionReviewLogic(slicer.mrmlScene).jumpToRow(segmentation, row) if segmentation \
            else None
        self.ui.rejectLesionButton.enabled = self._selectedLesion is not None

    def onRejectLesionButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to reject the lesion."), waitCursor=True):
            parameters = self._parameterNode
            LesionReviewLogic(slicer.mrmlScene).rejectLesion(parameters.outputSegmentation, parameters.inputVolume,
                                                             self._selectedLesion)
            self.showResults(parameters.outputSegmentation)

    def onAddLesionButton(self):
        """Place one point (Slicer's markups place mode); the lesion grows from it in onLesionSeedPlaced."""
        seed = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", _("Lesion seed"))
        self.addObserver(seed, seed.PointPositionDefinedEvent, self.onLesionSeedPlaced)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selection.SetActivePlaceNodeID(seed.GetID())
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        interaction.SetCurrentInteractionMode(interaction.Place)

    def onLesionSeedPlaced(self, seed, event=None):
        self.removeObserver(seed, seed.PointPositionDefinedEvent, self.onLesionSeedPlaced)
        point = seed.GetNthControlPointPositionWorld(0)
        slicer.mrmlScene.RemoveNode(seed)
        with slicer.util.tryWithErrorDisplay(_("Failed to add a lesion there (click inside the liver)."),
                                             waitCursor=True):
            parameters = self._parameterNode
            LesionReviewLogic(slicer.mrmlScene).addLesionAt(parameters.outputSegmentation, parameters.inputVolume,
                                                            tuple(point))
            self.showResults(parameters.outputSegmentation)

    def onReviewButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to open the Segment Editor."), waitCursor=True):
            parameters = self._parameterNode
            slicer.util.selectModule("SegmentEditor")
            editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
            editor.setSegmentationNode(parameters.outputSegmentation)
            editor.setSourceVolumeNode(parameters.inputVolume)

    def onExportDicomButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to export the result to DICOM."), waitCursor=True):
            parameters = self._parameterNode
            exported = self.logic.exportToDicomDatabase(parameters.outputSegmentation, parameters.inputVolume,
                                                        slicer.dicomDatabase, parameters.modelPath,
                                                        quantitativeReportingExporter())
            self.ui.statusLabel.text = " ".join([_(
                "Stored in the DICOM database as series {uid} (written with {writer}); send it to the PACS from "
                "the DICOM module.").format(uid=exported.series_uid, writer=exported.writer), *exported.notes])

    def onSaveCaseButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to save the case for training."), waitCursor=True):
            parameters = self._parameterNode
            folder = self.logic.saveCorrectedCase(parameters.inputVolume, parameters.outputSegmentation,
                                                  parameters.datasetFolder, parameters.caseId)
            self.ui.statusLabel.text = _("Saved as case {case} in {folder}.").format(case=parameters.caseId,
                                                                                    folder=folder)

    def comparisonReference(self):
        """The reference segmentation node, else the DICOM SEG file's path, else None."""
        parameters = self._parameterNode
        if parameters.referenceSegmentation:
            return parameters.referenceSegmentation
        return str(parameters.referenceSegFile) if parameters.referenceSegFile.is_file() else None

    def onReferenceSegmentationChanged(self, node):
        """One reference at a time: picking a segmentation clears the DICOM SEG file."""
        if node and self._parameterNode:
            self._parameterNode.referenceSegFile = Path()

    def onReferenceSegFileChanged(self, path):
        """One reference at a time: picking a DICOM SEG file clears the segmentation."""
        if path and Path(path).is_file() and self._parameterNode:
            self._parameterNode.referenceSegmentation = None

    def onCompareButton(self):
        with slicer.util.tryWithErrorDisplay(_("Failed to compare with the reference."), waitCursor=True):
            parameters = self._parameterNode
            metrics = self.logic.compareWithReference(parameters.outputSegmentation, self.comparisonReference(),
                                                      parameters.inputVolume)
            self.ui.compareResultLabel.text = describe_comparison(metrics)


class LiverResUNetLogic(SegmentLiverLogic, ScriptedLoadableModuleLogic):
    """The GUI-free logic on Slicer's scene (everything is in ``SegmentLiverLogic``).

    Slicer's ``ScriptedLoadableModuleLogic.__init__`` calls ``super().__init__()`` with no argument, so it comes
    last: ``SegmentLiverLogic.__init__(scene)`` runs first and passes on to it.
    """

    def __init__(self):
        SegmentLiverLogic.__init__(self, slicer.mrmlScene)

    def getParameterNode(self):
        return LiverResUNetParameterNode(super().getParameterNode())


class LiverResUNetTest(ScriptedLoadableModuleTest):
    """The whole flow inside Slicer on a generated phantom: DICOM import, load, segment (in the background, as
    Apply does), cancel, edit, compare, save. Its files live in a temporary folder removed at the end."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SegmentPhantomFromDicomDatabase()

    def test_SegmentPhantomFromDicomDatabase(self):
        if not selfTestCanRun(self):
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="LiverResUNetTest-", ignore_cleanup_errors=True) as folder:
            self._segmentPhantom(Path(folder))
        self.delayDisplay("Test passed")

    def _segmentPhantom(self, work):
        import numpy as np
        import pydicom
        from DICOMLib import DICOMUtils

        from LiverResUNetLib.phantom.anatomy import generate_patient
        from LiverResUNetLib.phantom.ircadb_writer import write_patient_dicom_series
        from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation

        self.delayDisplay("Writing a phantom CT as DICOM and a tiny untrained model")
        patient = generate_patient(seed=7, size=64, slices=24)
        write_patient_dicom_series(patient.ct, work / "dicom", description="Phantom CT")
        modelPath = saveTinyModel(work / "tiny.pth")

        self.delayDisplay("Importing into a temporary DICOM database and loading through the DICOM module")
        with DICOMUtils.TemporaryDICOMDatabase(str(work / "database")) as database:
            DICOMUtils.importDicom(str(work / "dicom"), database)
            series = ctSeriesInDatabase(database)
            self.assertEqual(len(series), 1)
            self.assertEqual(series[0]["slices"], patient.ct.shape[0])
            nodeIds = DICOMUtils.loadSeriesByUID([series[0]["uid"]])
        volumeNode = slicer.mrmlScene.GetNodeByID(nodeIds[0])
        self.assertEqual(slicer.util.arrayFromVolume(volumeNode).shape, patient.ct.shape)

        logic = LiverResUNetLogic()
        nodesBefore = sceneNodeIds(slicer.mrmlScene)
        self.delayDisplay("Cancelling a run in the background: the scene is unchanged")
        run = SegmentationRun(logic, volumeNode, modelPath, "cpu", python=pythonSlicerExecutable())
        run.advance()
        run.cancel()
        self.assertEqual(traceOfCancelledRun(run, slicer.mrmlScene, nodesBefore), [])

        self.delayDisplay("Segmenting in the background, as Apply does")
        run = SegmentationRun(logic, volumeNode, modelPath, "cpu", python=pythonSlicerExecutable())
        segmentation = runToEnd(run, SELF_TEST_RUN_TIMEOUT_S)
        names = [segmentation.GetSegmentation().GetNthSegment(i).GetName() for i in range(2)]
        self.assertEqual(names, ["Liver", "Liver tumor"])
        labels = logic.labelVolume(segmentation, volumeNode)
        self.assertEqual(labels.shape, patient.ct.shape)
        self.assertTrue(set(np.unique(labels.array)) <= {0, 1, 2})
        self.assertIsNotNone(logic.resultsTable(segmentation))

        self.delayDisplay("An edited segmentation is kept: the next run goes to a new node")
        edited = labels.with_array(np.where(labels.array == 0, 1, labels.array).astype(np.uint8))
        segmentation.GetSegmentation().DeepCopy(labels_to_segmentation(edited, False).GetSegmentation())
        again = logic.process(volumeNode, modelPath, "cpu", SegmentOptions(outputSegmentation=segmentation))
        self.assertNotEqual(again.GetID(), segmentation.GetID())

        self.delayDisplay("Comparing with the phantom's reference and saving the corrected case")
        reference = labels_to_segmentation(patient.label, closed_surface=False)
        slicer.mrmlScene.AddNode(reference)
        metrics = logic.compareWithReference(segmentation, reference, volumeNode)
        self.assertIsNotNone(metrics["liver"]["dice"])
        folder = logic.saveCorrectedCase(volumeNode, segmentation, work / "dataset", "phantom.7")
        self.assertTrue((folder / "dataset.json").is_file())

        exporter = quantitativeReportingExporter()
        if exporter is None and int(pydicom.__version__.split(".")[0]) < 3:
            self.delayDisplay("Export to DICOM not tested: highdicom needs pydicom 3 (Slicer 5.12), or install "
                              "QuantitativeReporting")
            return
        self.delayDisplay("Exporting the corrected result as a DICOM SEG into the DICOM database")
        with DICOMUtils.TemporaryDICOMDatabase(str(work / "export-database")) as database:
            DICOMUtils.importDicom(str(work / "dicom"), database)
            exported = logic.exportToDicomDatabase(segmentation, volumeNode, database, modelPath, exporter)
            study = database.studyForSeries(series[0]["uid"])
            self.assertIn(exported.series_uid, database.seriesForStudy(study))
            self.assertEqual(database.fieldForSeries("Modality", exported.series_uid), "SEG")


def sceneNodeIds(scene):
    return [scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())]


def traceOfCancelledRun(run, scene, nodeIdsBefore):
    """What a cancelled ``SegmentationRun`` left behind: nothing (an empty list) when Cancel worked."""
    left = []
    if sceneNodeIds(scene) != nodeIdsBefore:
        left.append("nodes added to or removed from the scene")
    if run.prediction.process.poll() is None:
        left.append("a running child process")
    if run.prediction.folder.exists():
        left.append(f"the temporary folder {run.prediction.folder}")
    return left


def runToEnd(run, timeoutSeconds):
    """Advance a ``SegmentationRun`` as Apply's timer does until it is done; returns its segmentation.

    A run still going after ``timeoutSeconds`` is cancelled and TimeoutError raised: a hung child must fail the
    self-test, not hang Slicer.
    """
    import time

    deadline = time.monotonic() + timeoutSeconds
    while not run.done:
        if time.monotonic() > deadline:
            run.cancel()
            raise TimeoutError(f"the segmentation did not end within {timeoutSeconds} s")
        run.advance()
        slicer.app.processEvents()
        time.sleep(RUN_TIMER_INTERVAL_MS / 1000)
    return run.segmentation


def saveTinyModel(path):
    """Save an untrained, very small network as a model file: enough to run the whole flow quickly."""
    from LiverResUNetLib.model.model_file import new_card, save_model
    from LiverResUNetLib.model.resunet import build_network, default_architecture
    from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

    architecture = {**default_architecture(), "base_width": 4, "depth": 2}
    preprocessing = PreprocessingParams(input_size=64)
    save_model(path, build_network(architecture), new_card(architecture, preprocessing.to_dict()))
    return path
