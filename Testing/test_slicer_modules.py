"""Both module files load and construct the way Slicer loads and constructs them.

Against real MRML (slicer-core) and Slicer 5.12.3's own ScriptedLoadableModule.py and parameterNodeWrapper
(Testing/SlicerSources); only Qt, CTK and ``slicer.app`` are stand-ins (Testing/slicer_application.py).
Slicer imports a scripted module's file, then calls ``<Module>(parent)``; the widget calls ``<Module>Logic()``;
Reload and Test calls ``<Module>Test()`` then ``runTest()``.
"""

import importlib
import os
import runpy
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from LiverResUNetLib.errors import InputError
from slicer_application import MODULE_FILES, REPO, SLICER_SOURCES, ModuleParent

REFERENCE = REPO.parent / "shared" / "reference" / "slicer-5.12.3"


def test_vendored_slicer_sources_are_slicer_5_12_3_verbatim():
    if not REFERENCE.is_dir():
        reason = f"Slicer's sources are not beside the repo ({REFERENCE})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires them")
        pytest.skip(reason)
    for path in (SLICER_SOURCES / "slicer").rglob("*.py"):
        original = REFERENCE / "Base" / "Python" / path.relative_to(SLICER_SOURCES)
        assert path.read_bytes() == original.read_bytes(), path
    assert (SLICER_SOURCES / "BUNDLED_PYTHON_PACKAGES.txt").read_bytes() == \
        (REFERENCE / "BUNDLED_PYTHON_PACKAGES.txt").read_bytes()


def test_the_vendored_sources_check_fails_in_ci_without_slicers_sources(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "REFERENCE", tmp_path / "no-slicer-sources")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires them"):
        test_vendored_slicer_sources_are_slicer_5_12_3_verbatim()


@pytest.mark.parametrize("name", MODULE_FILES)
def test_module_loads_and_constructs_as_in_slicer(slicer_application, name):
    import slicer

    module = importlib.import_module(name)
    parent = ModuleParent(REPO / name / f"{name}.py")
    instance = getattr(module, name)(parent)
    assert parent.title and parent.categories == ["Segmentation"]
    # Slicer shows the title as a QAction's text in the Modules menu (qSlicerAbstractModule::action), where "&"
    # marks a keyboard mnemonic and is not shown, and as the module selector's QComboBox item (ctkMenuComboBox
    # copies the action's text), where "&&" would show as typed: no escape reads right in both.
    assert "&" not in parent.title
    assert "href=" in parent.helpText, "the help links to the documentation"
    assert parent.icon is not None, "Resources/Icons/<Module>.png is found"
    assert slicer.selfTests[name] == instance.runTest
    test = getattr(module, f"{name}Test")()
    assert test.moduleTestNames, "Slicer's runTest finds the test methods"


def test_segment_module_logic_constructs_on_slicer_scene(slicer_application):
    import slicer

    module = importlib.import_module("LiverResUNet")
    logic = module.LiverResUNetLogic()
    assert logic.moduleName == "LiverResUNet"
    assert logic.scene is slicer.mrmlScene
    parameters = logic.getParameterNode()
    assert parameters.minTumorMm3 == 10.0 and parameters.keepLargestLiver
    assert slicer.mrmlScene.GetSingletonNode("LiverResUNet", "vtkMRMLScriptedModuleNode") is parameters.parameterNode


LOAD_MODULE_IN_FRESH_PYTHON = """
import importlib, sys
import pytest
from slicer_application import slicer_world

with pytest.MonkeyPatch.context() as monkeypatch, slicer_world(monkeypatch):
    importlib.import_module(sys.argv[1])
    print(sorted(name for name in sys.argv[2:] if name in sys.modules))
"""


@pytest.mark.parametrize("name", MODULE_FILES)
def test_loading_a_module_imports_no_heavy_package(name):
    """In a fresh Python (pytest's own process has long imported torch, yaml...), as Slicer does at startup."""
    heavy = ("torch", "skimage", "matplotlib", "yaml", "psutil", "SimpleITK")
    finished = subprocess.run([sys.executable, "-c", LOAD_MODULE_IN_FRESH_PYTHON, name, *heavy], cwd=REPO / "Testing",
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().splitlines()[-1] == "[]"


def run_trainer_in_slicer(monkeypatch, capsys, arguments):
    """Execute LiverResUNetTrainer.py as Slicer's ``--python-script`` does: as ``__main__``, sys.argv = the script
    and the arguments after --ignore-rest. Returns what reached standard error."""
    script = REPO / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"
    monkeypatch.setattr(sys, "argv", [str(script), *arguments])
    runpy.run_path(str(script), run_name="__main__")  # a SystemExit here would fail the test
    return capsys.readouterr().err


def test_failing_command_ends_slicer_with_its_exit_code(slicer_application, monkeypatch, capsys, tmp_path):
    error = run_trainer_in_slicer(monkeypatch, capsys, ["phantom", "--out", "/dev/null/cohort", "--patients", "1"])
    assert slicer_application.exitCodes == [1], "an unexpected error ends Slicer with code 1"
    assert "Traceback" in error and "/dev/null/cohort" in error
    assert slicer_application.commandOptions().runPythonAndExit is False
    slicer_application.exitCodes.clear()
    error = run_trainer_in_slicer(monkeypatch, capsys, ["evaluate", "--model", str(tmp_path / "none.pth"),
                                                        "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert slicer_application.exitCodes == [2] and error.startswith("error: ")
    slicer_application.exitCodes.clear()
    run_trainer_in_slicer(monkeypatch, capsys, ["segment", "--help"])
    assert slicer_application.exitCodes == [0]


@pytest.mark.parametrize("arguments, code", [
    (["phantom", "--out", "/dev/null/cohort", "--patients", "1"], 1),
    (["train", "--data", "/nonexistent/dataset", "--out", "/tmp/run"], 2),
    (["no-such-command"], 2),
])
def test_failing_command_exits_non_zero_in_plain_python(arguments, code):
    script = REPO / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"
    finished = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == code, finished.stderr
    assert finished.stderr.strip(), "the reason is printed"


def test_requirements_list_every_package_the_core_imports_that_slicer_lacks():
    """Resources/requirements.txt + torch (PyTorch extension) + Slicer's bundled packages cover every import."""
    import ast
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement

    def names(path):
        return {Requirement(line).name.lower().replace("_", "-") for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")}

    bundled = {line.split("==")[0].lower().replace("_", "-") for line in
               (SLICER_SOURCES / "BUNDLED_PYTHON_PACKAGES.txt").read_text().split()}
    provided = bundled | names(REPO / "LiverResUNet" / "Resources" / "requirements.txt") | {"torch"}
    distributions = packages_distributions()
    imported = set()
    # The browser review (app/review) runs in its own environment (requirements-review.txt), never inside Slicer.
    browser_review = REPO / "LiverResUNet" / "LiverResUNetLib" / "app" / "review"
    core = [path for path in (REPO / "LiverResUNet" / "LiverResUNetLib").rglob("*.py")
            if browser_review not in path.parents]
    for path in [*core, REPO / "LiverResUNet" / "LiverResUNet.py",
                 REPO / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    # Slicer itself provides these (slicer-core stands for them outside Slicer), and the modules' own folders
    # are on its path; DICOMSegmentationPlugin is QuantitativeReporting's, used only when that is installed.
    slicer_provided = {"slicer", "vtk", "qt", "ctk", "DICOMLib", "PyTorchUtils", "LiverResUNetLib", "LiverResUNet",
                       "DICOMSegmentationPlugin"}
    needed = {distribution.lower().replace("_", "-") for module in imported - slicer_provided - sys.stdlib_module_names
              for distribution in distributions.get(module, [module])}
    assert needed <= provided, f"not bundled by Slicer nor in Resources/requirements.txt: {needed - provided}"


def test_first_apply_installs_through_slicers_pip_ensure(slicer_application, monkeypatch, tmp_path):
    import slicer

    module = importlib.import_module("LiverResUNet")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# a package nobody has\nno-such-package-for-liverresunet>=1.0\n")
    monkeypatch.setattr(module, "REQUIREMENTS_FILE", requirements)
    assert module.missingPythonRequirements() == ["no-such-package-for-liverresunet>=1.0"]
    asked, installed = [], []
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda text, *args, **kwargs: asked.append(text))
    assert module.installPythonRequirements() is False, "declining installs nothing"
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda *args, **kwargs: True)
    import slicer.packaging

    monkeypatch.setattr(slicer.packaging, "pip_install", lambda requirements, **kwargs: installed.append(requirements))
    slicer_application.testing = False  # pip_ensure installs nothing in testing mode
    assert module.installPythonRequirements() is True
    assert installed == [["no-such-package-for-liverresunet>=1.0"]]
    assert "no-such-package-for-liverresunet" in asked[0]


def test_install_command_installs_into_slicer_without_asking(slicer_application, monkeypatch, capsys, tmp_path):
    """``Slicer --python-script LiverResUNetTrainer.py --ignore-rest install``: the module's own installation."""
    import slicer
    import slicer.packaging

    module = importlib.import_module("LiverResUNet")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("no-such-package-for-liverresunet>=1.0\n")
    monkeypatch.setattr(module, "REQUIREMENTS_FILE", requirements)
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda *args, **kwargs: pytest.fail("asked"))
    installed = []
    monkeypatch.setattr(slicer.packaging, "pip_install", lambda requirements, **kwargs: installed.append(requirements))
    slicer_application.testing = False  # pip_ensure installs nothing in testing mode
    error = run_trainer_in_slicer(monkeypatch, capsys, ["install"])
    assert installed == [["no-such-package-for-liverresunet>=1.0"]]
    assert slicer_application.exitCodes == [1], "the stand-in pip installed nothing: the package is still missing"
    assert "still missing after the installation: no-such-package-for-liverresunet>=1.0" in error
    slicer_application.exitCodes.clear()
    monkeypatch.setattr(module, "missingPythonRequirements", lambda: [])
    run_trainer_in_slicer(monkeypatch, capsys, ["install"])
    assert slicer_application.exitCodes == [0]


def test_install_command_in_plain_python_says_where_it_runs():
    script = REPO / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"
    finished = subprocess.run([sys.executable, str(script), "install"], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 2 and "--ignore-rest install" in finished.stderr


def test_the_widgets_setup_loads_the_ui_connects_it_and_binds_the_parameter_node(slicer_application, monkeypatch,
                                                                                 tiny_model_path, tmp_path):
    """The widget's real setup(): Slicer's loadUI of the real .ui (parsed into stand-ins of its classes), the
    .ui's own connections, the module's connections, and parameterNodeWrapper's GUI binding both ways."""
    import qt
    import slicer

    from python_launcher import write_launcher
    from slicer_application import emit

    module = importlib.import_module("LiverResUNet")
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(liverresunet=ModuleParent(
        REPO / "LiverResUNet" / "LiverResUNet.py")), raising=False)
    monkeypatch.setattr(slicer, "dicomDatabase", None, raising=False)  # the DICOM module has not opened one
    monkeypatch.setattr(module, "pythonSlicerExecutable", lambda: str(write_launcher(tmp_path / "bin")))
    volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    slicer.util.updateVolumeFromArray(volume, np.full((4, 16, 16), 40, dtype=np.int16))
    widget = module.LiverResUNetWidget(slicer.qMRMLWidget())
    widget.setup()
    ui, parameters = widget.ui, widget._parameterNode

    assert type(ui.applyButton) is qt.QPushButton and type(ui.inputVolumeSelector) is slicer.qMRMLNodeComboBox
    assert {ui.inputVolumeSelector.mrmlScene(), ui.outputSegmentationSelector.mrmlScene()} == {slicer.mrmlScene}
    assert [data for _, data in ui.deviceComboBox.items] == list(module.DEVICES)
    assert ui.inputVolumeSelector.currentNode() is volume is parameters.inputVolume, "the first volume, shown"
    assert ui.minTumorSizeSpinBox.value == 10.0 and ui.keepLargestLiverCheckBox.checked is True
    assert not ui.applyButton.enabled, "no model file yet"

    ui.modelPathLineEdit.currentPath = str(tiny_model_path)  # the user picks the model file
    emit(ui.modelPathLineEdit, "currentPathChanged(QString)", str(tiny_model_path))
    assert parameters.modelPath == tiny_model_path and ui.applyButton.enabled
    assert ui.modelCardLabel.text.startswith("Untrained")
    ui.keepLargestLiverCheckBox.checked = False
    emit(ui.keepLargestLiverCheckBox, "stateChanged(int)", 0)
    assert parameters.keepLargestLiver is False
    parameters.minTumorMm3 = 25.0
    assert ui.minTumorSizeSpinBox.value == 25.0, "a parameter set elsewhere shows in its widget"

    ui.deviceComboBox.currentIndex = module.DEVICES.index("cpu")
    emit(ui.applyButton, "clicked(bool)", False)
    assert widget._run is not None and ui.cancelButton.enabled and not ui.inputsCollapsibleButton.enabled
    emit(widget._runTimer, "timeout()")
    emit(ui.cancelButton, "clicked(bool)", False)
    assert widget._run is None and ui.statusLabel.text.startswith("Cancelled")

    emit(ui.applyButton, "clicked(bool)", False)
    for _ in range(6000):
        if widget._run is None:
            break
        emit(widget._runTimer, "timeout()")
        time.sleep(0.01)
    result = parameters.outputSegmentation
    assert result is not None and ui.outputSegmentationSelector.currentNode() is result
    assert ui.resultsTableView.mrmlTableNode is widget.logic.resultsTable(result)
    widget.cleanup()


class WidgetStandIn:
    """A Qt widget of the .ui as the module's widget code uses it: enabled, text, value, toolTip, currentData."""

    def __init__(self):
        self.enabled, self.text, self.value, self.toolTip, self.currentData = True, "", 0, "", "cpu"
        self.currentPath = ""
        self.tableNode = None

    def setMRMLTableNode(self, node):
        self.tableNode = node

    def property(self, name):
        """No dynamic property (SlicerParameterName): parameterNodeWrapper's connectGui binds nothing to it."""
        return None


@pytest.fixture
def segment_widget(slicer_application, monkeypatch, tiny_model_path, tmp_path):
    """The module's widget after setup() as far as Apply needs: real logic, parameter node and scene, the .ui's
    widgets stood in for; the network's child process runs in this Python instead of PythonSlicer."""
    import xml.etree.ElementTree as ElementTree

    import numpy as np
    import slicer
    from slicer.util import VTKObservationMixin

    module = importlib.import_module("LiverResUNet")
    monkeypatch.setattr(module, "pythonSlicerExecutable", lambda: sys.executable)
    widget = module.LiverResUNetWidget.__new__(module.LiverResUNetWidget)
    VTKObservationMixin.__init__(widget)
    ui_file = REPO / "LiverResUNet" / "Resources" / "UI" / "LiverResUNet.ui"
    widget.ui = types.SimpleNamespace(**{element.get("name"): WidgetStandIn()
                                         for element in ElementTree.parse(ui_file).getroot().iter("widget")})
    widget.logic, widget._run, widget._runTimer = module.LiverResUNetLogic(), None, sys.modules["qt"].QTimer()
    widget._parameterNodeGuiTag = None
    widget._parameterNode = widget.logic.getParameterNode()
    volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    hu = np.full((6, 24, 28), -100, dtype=np.int16)
    hu[:, 6:18, 6:20] = 60
    slicer.util.updateVolumeFromArray(volume, hu)
    widget._parameterNode.inputVolume = volume
    widget._parameterNode.modelPath = tiny_model_path
    errors = []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *args, **kwargs: errors.append(text))
    widget.errors = errors
    return widget


PANELS = ("inputsCollapsibleButton", "modelCollapsibleButton", "optionsCollapsibleButton", "outputsCollapsibleButton",
          "resultsCollapsibleButton", "trainingCollapsibleButton", "compareCollapsibleButton", "applyButton")


def scene_node_ids():
    import slicer

    return [slicer.mrmlScene.GetNthNode(index).GetID() for index in range(slicer.mrmlScene.GetNumberOfNodes())]


def run_widget_to_end(widget):
    for _ in range(6000):
        if widget._run is None:
            return
        widget.advanceRun()  # what the timer calls
        time.sleep(0.01)
    raise AssertionError("the run did not end")


def test_apply_disables_the_panels_and_cancel_restores_everything(segment_widget):
    widget = segment_widget
    widget.updateButtons()
    assert widget.ui.applyButton.enabled and not widget.ui.cancelButton.enabled
    before = scene_node_ids()
    widget.onApplyButton()
    assert widget._run is not None, "Apply returns at once; the network runs in a child process"
    assert not any(getattr(widget.ui, name).enabled for name in PANELS) and widget.ui.cancelButton.enabled
    widget.advanceRun()
    child = widget._run.prediction
    widget.onCancelButton()
    assert child.process.poll() is not None and not child.folder.exists()
    assert scene_node_ids() == before and "unchanged" in widget.ui.statusLabel.text
    assert all(getattr(widget.ui, name).enabled for name in PANELS) and not widget.ui.cancelButton.enabled

    widget.onApplyButton()
    run_widget_to_end(widget)
    result = widget._parameterNode.outputSegmentation
    assert result is not None and widget.ui.statusLabel.text.startswith("Done")
    assert widget.ui.resultsTableView.tableNode is widget.logic.resultsTable(result) is not None
    assert widget.ui.progressBar.value == 0 and all(getattr(widget.ui, name).enabled for name in PANELS)
    assert not widget.errors


def test_leaving_and_reentering_the_module_during_a_run_still_selects_the_result(segment_widget):
    """Slicer calls exit() when the user opens another module and enter() on return; a run goes on meanwhile."""
    widget = segment_widget
    widget.enter()
    widget.onApplyButton()
    widget.advanceRun()
    widget.exit()
    run_widget_to_end(widget)
    assert not widget.errors and widget.ui.statusLabel.text.startswith("Done")
    result = widget._parameterNode.outputSegmentation
    assert result is not None and widget.logic.resultsTable(result) is not None
    widget.enter()
    assert widget._parameterNode.outputSegmentation is result
    assert widget.ui.resultsTableView.tableNode is widget.logic.resultsTable(result)


def test_the_self_tests_wait_for_a_run_times_out_and_cancel_leaves_no_trace(segment_widget, tmp_path):
    """The self-test's loop over a run whose child hangs ends after its timeout; what a cancelled run left behind
    is looked for in the scene's node ids, the child process and the temporary folder."""
    import slicer

    from LiverResUNetLib.scene.logic import SegmentationRun

    module, parameters = sys.modules["LiverResUNet"], segment_widget._parameterNode
    hung = tmp_path / "hung-python"
    hung.write_text("#!/bin/sh\nsleep 600\n")
    hung.chmod(0o755)
    before = module.sceneNodeIds(slicer.mrmlScene)
    run = SegmentationRun(segment_widget.logic, parameters.inputVolume, parameters.modelPath, "cpu", python=str(hung))
    assert module.traceOfCancelledRun(run, slicer.mrmlScene, before) == [
        "a running child process", f"the temporary folder {run.prediction.folder}"]
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not end within 1 s"):
        module.runToEnd(run, timeoutSeconds=1)
    assert time.monotonic() - started < 30
    assert module.traceOfCancelledRun(run, slicer.mrmlScene, before) == []
    slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    assert module.traceOfCancelledRun(run, slicer.mrmlScene, before) == ["nodes added to or removed from the scene"]


def test_the_model_card_shows_before_pytorch_is_installed(segment_widget, tiny_model_path, tmp_path, monkeypatch):
    import torch

    from LiverResUNetLib.model.model_file import read_card
    from LiverResUNetLib.scene.logic import describe_model_card

    older = tmp_path / "older.pth"
    torch.save(torch.load(tiny_model_path, weights_only=True), older)  # without the card's JSON record
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails, as in a Slicer without PyTorch
    widget = segment_widget
    widget.ui.modelPathLineEdit.currentPath = str(tiny_model_path)
    widget.updateModelCard()
    assert widget.ui.modelCardLabel.text == describe_model_card(read_card(tiny_model_path))
    assert "Trained on" in widget.ui.modelCardLabel.text or "Untrained" in widget.ui.modelCardLabel.text
    widget.ui.modelPathLineEdit.currentPath = str(older)
    widget.updateModelCard()
    assert widget.ui.modelCardLabel.text.startswith("PyTorch is not installed yet")


def test_a_failed_apply_shows_the_error_and_leaves_the_scene(segment_widget, tmp_path):
    widget = segment_widget
    not_a_model = tmp_path / "notes.pth"
    not_a_model.write_text("not a model")
    widget._parameterNode.modelPath = not_a_model
    before = scene_node_ids()
    widget.onApplyButton()
    run_widget_to_end(widget)
    assert len(widget.errors) == 1 and "notes.pth" in widget.errors[0]
    assert scene_node_ids() == before and widget._parameterNode.outputSegmentation is None
    assert all(getattr(widget.ui, name).enabled for name in PANELS)


def test_export_to_dicom_needs_a_result_of_a_series_from_the_dicom_database(segment_widget, monkeypatch):
    import slicer

    widget = segment_widget
    widget.updateButtons()
    assert not widget.ui.exportDicomButton.enabled, "no result yet"
    widget.onApplyButton()
    assert not widget.ui.exportDicomButton.enabled, "busy"
    run_widget_to_end(widget)
    assert not widget.ui.exportDicomButton.enabled and "not loaded from the DICOM database" in \
        widget.ui.exportDicomButton.toolTip
    volume = widget._parameterNode.inputVolume
    volume.SetAttribute("DICOM.instanceUIDs", "1.2.826.0.1.3680043.8.498.1 1.2.826.0.1.3680043.8.498.2")
    widget.updateButtons()
    assert widget.ui.exportDicomButton.enabled

    class EmptyDatabase:  # ctkDICOMDatabase: open, but the CT's files were deleted from it meanwhile
        isOpen = True

        def fileForInstance(self, uid):
            return ""

    monkeypatch.setattr(slicer, "dicomDatabase", EmptyDatabase(), raising=False)
    before = scene_node_ids()
    slicer.app.testing = False  # outside testing mode tryWithErrorDisplay shows the error, then raises it
    with pytest.raises(InputError):
        widget.onExportDicomButton()
    assert len(widget.errors) == 1 and "2 of its 2 DICOM files are no longer in the DICOM database" in \
        widget.errors[0]
    assert scene_node_ids() == before


def test_compare_takes_a_segmentation_or_a_dicom_seg_file_one_at_a_time(segment_widget, tmp_path):
    """The compare panel's DICOM SEG file: scored through the logic, one reference at a time, a bad file shown."""
    import numpy as np
    import slicer

    from LiverResUNetLib.datasets.discovery import discover_cases
    from LiverResUNetLib.dicomseg.writer import write_seg
    from LiverResUNetLib.io.dicom_series import find_series, read_series_headers
    from LiverResUNetLib.phantom.ircadb_writer import write_cohort
    from LiverResUNetLib.scene.files import read_dicom_series_node
    from LiverResUNetLib.scene.logic import describe_comparison
    from LiverResUNetLib.scene.segmentation_nodes import labels_to_segmentation

    widget, parameters = segment_widget, segment_widget._parameterNode
    patient = write_cohort(tmp_path / "phantom", [2], size=32, seed=3, slices=12) / "3Dircadb1.2"
    [case] = [source.load() for source in discover_cases(patient)]
    stack, series_uid, _ = read_series_headers(patient / "PATIENT_DICOM")
    seg_file = tmp_path / "reference_seg.dcm"
    write_seg(case.label, stack, series_uid, {"software": {"liverresunet": "test"}}, seg_file)
    parameters.inputVolume = read_dicom_series_node(slicer.mrmlScene, find_series(patient / "PATIENT_DICOM")[0])
    shifted = case.label.with_array(np.roll(case.label.array, 2, axis=2))
    parameters.outputSegmentation = slicer.mrmlScene.AddNode(labels_to_segmentation(shifted, closed_surface=False))
    widget.updateButtons()
    assert not widget.ui.compareButton.enabled, "no reference yet"

    reference = slicer.mrmlScene.AddNode(labels_to_segmentation(case.label, closed_surface=False))
    parameters.referenceSegmentation = reference
    widget.onReferenceSegmentationChanged(reference)
    parameters.referenceSegFile = seg_file
    widget.onReferenceSegFileChanged(str(seg_file))  # what the path line edit's signal calls
    assert parameters.referenceSegmentation is None and widget.comparisonReference() == str(seg_file)
    widget.updateButtons()
    assert widget.ui.compareButton.enabled
    widget.onCompareButton()
    expected = widget.logic.compareWithReference(parameters.outputSegmentation, reference, parameters.inputVolume)
    assert widget.ui.compareResultLabel.text == describe_comparison(expected) and not widget.errors
    assert 0 < expected["liver"]["dice"] < 1

    widget.onReferenceSegmentationChanged(reference)
    parameters.referenceSegmentation = reference
    assert parameters.referenceSegFile == Path() and widget.comparisonReference() is reference

    parameters.referenceSegmentation = None
    parameters.referenceSegFile = patient / "PATIENT_DICOM" / "image_0"  # a CT slice, not a SEG
    slicer.app.testing = False  # outside testing mode tryWithErrorDisplay shows the error, then raises it
    with pytest.raises(InputError):
        widget.onCompareButton()
    assert len(widget.errors) == 1 and "image_0: is not a DICOM SEG" in widget.errors[0]


def test_quantitative_reporting_exporter_is_found_when_installed(slicer_application, monkeypatch):
    module = importlib.import_module("LiverResUNet")
    assert module.quantitativeReportingExporter() is None
    plugin = types.ModuleType("DICOMSegmentationPlugin")
    plugin.DICOMSegmentationExporter = type("DICOMSegmentationExporter", (), {})
    monkeypatch.setitem(sys.modules, "DICOMSegmentationPlugin", plugin)
    assert module.quantitativeReportingExporter() is plugin.DICOMSegmentationExporter


class SeriesTables:
    """``ctkDICOMDatabase``'s patient, study and series queries over its SQL tables (dicom-schema.sql); reading
    a file's tags (``fileValue``, ``filesForSeries``) fails: listing the series must not open any file."""

    isOpen = True

    def __init__(self, series):
        self.series = series  # uid -> (patient name, study uid, StudyDate, Modality, SeriesDescription, slices)

    def patients(self):
        return sorted({row[0] for row in self.series.values()})

    def nameForPatient(self, patient):
        return patient

    def studiesForPatient(self, patient):
        return sorted({row[1] for row in self.series.values() if row[0] == patient})

    def fieldForStudy(self, field, study):
        assert field == "StudyDate"
        return next(row[2] for row in self.series.values() if row[1] == study)

    def seriesForStudy(self, study):
        return [uid for uid, row in self.series.items() if row[1] == study]

    def fieldForSeries(self, field, uid):
        return {"Modality": self.series[uid][3], "SeriesDescription": self.series[uid][4]}[field]

    def instancesForSeries(self, uid, hits=-1):
        return [f"{uid}.{index}" for index in range(self.series[uid][5])]

    def fileValue(self, *args):
        raise AssertionError("a file's tags were read")

    filesForSeries = fileValue


def test_dicom_series_list_comes_from_the_database_tables_alone(slicer_application):
    module = importlib.import_module("LiverResUNet")
    database = SeriesTables({"1.1": ("DOE^JANE", "9.1", "20240102", "CT", "Abdomen", 120),
                             "1.2": ("DOE^JANE", "9.1", "20240102", "SEG", "Liver", 1),
                             "1.3": ("ROE^RICHARD", "9.2", "20230405", "ct", "Portal venous", 80)})
    assert module.ctSeriesInDatabase(database) == [
        {"uid": "1.1", "patient": "DOE JANE", "studyDate": "20240102", "description": "Abdomen", "slices": 120},
        {"uid": "1.3", "patient": "ROE RICHARD", "studyDate": "20230405", "description": "Portal venous",
         "slices": 80}]


@pytest.mark.parametrize("name", MODULE_FILES)
def test_self_test_before_the_first_apply_says_it_did_not_run_instead_of_failing(slicer_application, monkeypatch,
                                                                                 caplog, name):
    """Reload and Test before the packages are installed: no exception (Slicer would show an error popup)."""
    import slicer

    monkeypatch.setattr(importlib.import_module("LiverResUNet"), "missingPythonRequirements", lambda: ["torch"])
    shown = []
    monkeypatch.setattr(slicer.util, "delayDisplay", lambda message, msec=None: shown.append(message))
    module = importlib.import_module(name)
    getattr(module, name)(ModuleParent(REPO / name / f"{name}.py")).runTest(msec=0)  # what Reload and Test calls
    assert shown == ["Test not run: press Apply once to install torch"]
    assert f"{name}Test not run: missing Python packages ['torch']" in caplog.text
