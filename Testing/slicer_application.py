"""Slicer's Python world without the application: real MRML and Slicer's own module code, stand-ins for Qt.

``slicer-core`` gives the real MRML classes and ``slicer.util``. ``Testing/SlicerSources`` holds Slicer
5.12.3's own ``ScriptedLoadableModule.py``, ``i18n.py``, ``packaging.py`` and ``parameterNodeWrapper`` verbatim;
they are put on the ``slicer`` package's path, so ``from slicer.ScriptedLoadableModule import ...`` runs the
code Slicer runs. Only what needs a display is stood in for, with what Slicer's sources ask of it:

- ``qt`` and ``ctk``: every class is a do-nothing stand-in (``qt.QIcon(path)``, ``qt.QTimer.singleShot``...);
- ``slicer.app``: the few ``qSlicerApplication`` methods the modules and Slicer's scripts above call
  (``commandOptions``, ``testingEnabled``, ``processEvents``, ``moduleManager``, ``exit``...);
- the module's ``parent`` (``qSlicerScriptedLoadableModule``): the properties ``ScriptedLoadableModule`` sets.
"""

import sys
import types
from pathlib import Path

import pytest

SLICER_SOURCES = Path(__file__).resolve().parent / "SlicerSources"
REPO = Path(__file__).resolve().parents[1]


class QtStandInClass(type):
    """Class attributes too (``qt.Qt.WaitCursor``, ``qt.QMessageBox.Ok``) are stand-ins."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return QtStandIn()


class QtStandIn(metaclass=QtStandInClass):
    """Any Qt or CTK object: takes any arguments, has any attribute, does nothing."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __getattr__(self, name):
        return QtStandIn()

    def __call__(self, *args, **kwargs):
        return QtStandIn()

    @staticmethod
    def singleShot(msec, callback):
        """``QTimer.singleShot``: without an event loop the callback runs at once."""
        callback()


class QtModule(types.ModuleType):
    """A ``qt`` / ``ctk`` module whose every class is a :class:`QtStandIn` subclass of that name."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = QtStandInClass(name, (QtStandIn,), {})
        setattr(self, name, cls)
        return cls


class CommandOptions:
    """``qSlicerCoreCommandOptions``: ``runPythonAndExit`` is what ``slicer.util.exit`` sets."""

    runPythonAndExit = False
    noMainWindow = True


class Application:
    """``slicer.app`` (qSlicerApplication), as far as the modules and Slicer's scripts use it."""

    def __init__(self):
        self.exitCodes = []
        self.processedEvents = 0
        self.testing = True
        self._commandOptions = CommandOptions()
        self._applicationLogic = None

    def commandOptions(self):
        return self._commandOptions

    def testingEnabled(self):
        return self.testing

    def processEvents(self):
        self.processedEvents += 1

    def exit(self, status):
        self.exitCodes.append(status)

    def moduleManager(self):
        return QtStandIn()

    def applicationLogic(self):
        """The real vtkSlicerApplicationLogic on ``slicer.mrmlScene``: its selection and interaction nodes are
        what markups place mode uses."""
        import slicer

        if self._applicationLogic is None or self._applicationLogic.GetMRMLScene() is not slicer.mrmlScene:
            self._applicationLogic = slicer.vtkSlicerApplicationLogic()
            self._applicationLogic.SetMRMLScene(slicer.mrmlScene)
        return self._applicationLogic

    def translate(self, context, text):
        return text

    def connect(self, *args):
        pass

    def setOverrideCursor(self, cursor):
        pass

    def restoreOverrideCursor(self):
        pass


class ModuleParent:
    """``qSlicerScriptedLoadableModule``: the properties a ScriptedLoadableModule sets, and its file path."""

    def __init__(self, path):
        self.path = str(path)
        self.title = self.helpText = self.acknowledgementText = ""
        self.categories, self.dependencies, self.contributors = [], [], []
        self.icon = None


SLICER_SCRIPTS = ("ScriptedLoadableModule", "i18n", "packaging", "parameterNodeWrapper")
MODULE_FILES = ("LiverResUNet", "LiverResUNetTrainer")
# The Qt widget classes of Slicer's own libraries that Slicer's scripts above name.
SLICER_WIDGETS = ("qMRMLNodeComboBox", "qMRMLRangeWidget", "qMRMLScreenShotDialog", "qMRMLSliderWidget",
                  "qMRMLSpinBox", "qMRMLUtils", "qMRMLWidget", "qSlicerWidget")


@pytest.fixture
def slicer_application(monkeypatch):
    """``import slicer``, ``qt``, ``ctk`` and the module files work as inside Slicer, for one test.

    A fresh real MRML scene is ``slicer.mrmlScene``; the fixture gives the ``slicer.app`` stand-in. Slicer's
    scripts and the module files are imported afresh against these stand-ins, and forgotten afterwards.
    """
    import slicer
    import slicer.util

    def forget_imports():
        for name in [n for n in sys.modules if n in MODULE_FILES
                     or n.split(".")[:2] in (["slicer", script] for script in SLICER_SCRIPTS)]:
            del sys.modules[name]
        for script in SLICER_SCRIPTS:
            if script in vars(slicer):
                delattr(slicer, script)

    forget_imports()
    for name in ("qt", "ctk"):
        monkeypatch.setitem(sys.modules, name, QtModule(name))
    monkeypatch.setattr(slicer, "__path__", [*slicer.__path__, str(SLICER_SOURCES / "slicer")])
    app = Application()
    monkeypatch.setattr(slicer, "app", app, raising=False)
    monkeypatch.setattr(slicer, "mrmlScene", slicer.vtkMRMLScene(), raising=False)
    widgets = QtModule("slicer")
    for name in SLICER_WIDGETS:
        monkeypatch.setattr(slicer, name, getattr(widgets, name), raising=False)
    for folder in MODULE_FILES:
        monkeypatch.syspath_prepend(str(REPO / folder))
    yield app
    forget_imports()
