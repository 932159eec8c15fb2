"""Slicer's Python world without the application: real MRML and Slicer's own module code, stand-ins for Qt.

``slicer-core`` gives the real MRML classes and ``slicer.util``. ``Testing/SlicerSources`` holds Slicer
5.12.3's own ``ScriptedLoadableModule.py``, ``i18n.py``, ``packaging.py`` and ``parameterNodeWrapper`` verbatim;
they are put on the ``slicer`` package's path, so ``from slicer.ScriptedLoadableModule import ...`` runs the
code Slicer runs. Only what needs a display is stood in for, with what Slicer's sources ask of it:

- ``qt`` and ``ctk``: every class is a stand-in that does nothing but remember attributes and connections
  (``qt.QIcon(path)``, ``qt.QTimer.singleShot``...); the few whose answers matter behave (``QUiLoader`` builds a
  real .ui file's widget tree with its properties and connections, ``qMRMLNodeComboBox`` keeps its node...), and
  :func:`emit` plays a signal, so a widget's real ``setup()`` runs and can be driven;
- ``slicer.app``: the few ``qSlicerApplication`` methods the modules and Slicer's scripts above call
  (``commandOptions``, ``testingEnabled``, ``processEvents``, ``moduleManager``, ``exit``...);
- the module's ``parent`` (``qSlicerScriptedLoadableModule``): the properties ``ScriptedLoadableModule`` sets.
"""

import contextlib
import inspect
import sys
import types
import xml.etree.ElementTree as ElementTree
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
    """Any Qt or CTK object: takes any arguments, has any attribute, does nothing but remember.

    An attribute read before it was set is a stand-in, the same one each time: a signal (``widget.clicked``)
    keeps what was connected to it. ``connect`` records slots in both of PythonQt's styles
    (``widget.connect("clicked(bool)", slot)``, ``widget.clicked.connect(slot)``); :func:`emit` calls them.
    """

    def __init__(self, *args, **kwargs):
        self.args = args

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = QtStandIn()
        object.__setattr__(self, name, value)
        return value

    def __call__(self, *args, **kwargs):
        return QtStandIn()

    def connect(self, *arguments):
        signal, slot = arguments if len(arguments) == 2 else ("", arguments[0])
        vars(self).setdefault("slots", {}).setdefault(signal, []).append(slot)

    def disconnect(self, *arguments):
        signal, slot = arguments if len(arguments) == 2 else ("", arguments[0])
        vars(self).get("slots", {}).get(signal, []).remove(slot)

    @staticmethod
    def singleShot(msec, callback):
        """``QTimer.singleShot``: without an event loop the callback runs at once."""
        callback()


def emit(sender, signal, *values):
    """Emit ``signal`` ("clicked(bool)") of a stand-in: call its slots of either style, each with as many of
    ``values`` as it takes (as PythonQt does)."""
    slots = [*vars(sender).get("slots", {}).get(signal, []),
             *vars(getattr(sender, signal.split("(")[0])).get("slots", {}).get("", [])]
    for slot in slots:
        parameters = inspect.signature(slot).parameters.values()
        if any(parameter.kind == parameter.VAR_POSITIONAL for parameter in parameters):
            slot(*values)
        else:
            slot(*values[:len(parameters)])


class Settings:
    """``QSettings`` with nothing stored (Slicer's developer mode off)."""

    def contains(self, key):
        return False

    def value(self, key, default=None):
        return default


class MRMLWidget:
    """A qMRML widget: ``setMRMLScene`` keeps the scene and emits ``mrmlSceneChanged`` (what the .ui connects)."""

    def setMRMLScene(self, scene):
        self.scene = scene
        emit(self, "mrmlSceneChanged(vtkMRMLScene*)", scene)

    def mrmlScene(self):
        return vars(self).get("scene")


class NodeComboBox(MRMLWidget):
    """``qMRMLNodeComboBox``: the current node; a change emits ``currentNodeChanged``."""

    def currentNode(self):
        return vars(self).get("node")

    def setCurrentNode(self, node):
        if node is not self.currentNode():
            self.node = node
            emit(self, "currentNodeChanged(vtkMRMLNode*)", node)


class TableView(MRMLWidget):
    """``qMRMLTableView``: the table node it shows."""

    def setMRMLTableNode(self, node):
        self.mrmlTableNode = node


class ComboBox:
    """``QComboBox``: items with data, the current one's data."""

    def addItem(self, text, data=None):
        vars(self).setdefault("items", []).append((text, data))

    @property
    def currentData(self):
        return vars(self)["items"][vars(self).get("currentIndex", 0)][1]


class UiFile:
    """``QFile`` as ``slicer.util.loadUI`` uses it."""

    def __init__(self, path):
        self.path = Path(path)

    def exists(self):
        return self.path.is_file()

    def open(self, mode):
        return True


class UiLoader:
    """``QUiLoader``: builds the widget tree of a real .ui file from stand-ins of its classes (qt, ctk or slicer by
    their prefix), with its properties, names and signal-slot connections."""

    def load(self, ui_file):
        root = ElementTree.parse(ui_file.path).getroot()
        widgets = {}
        top = self._widget(root.find("widget"), widgets)
        for connection in root.iter("connection"):
            sender, receiver = widgets[connection.findtext("sender")], widgets[connection.findtext("receiver")]
            sender.connect(connection.findtext("signal"), getattr(receiver, connection.findtext("slot").split("(")[0]))
        return top

    def _widget(self, element, widgets):
        class_name = element.get("class")
        module = "ctk" if class_name.startswith("ctk") else "slicer" if class_name.startswith("qMRML") else "qt"
        widget = getattr(sys.modules[module], class_name)()
        widget.name = widget.objectName = element.get("name")
        widget.enabled, widget.toolTip, widget.text = True, "", ""
        widget.checked, widget.value, widget.currentPath = False, 0, ""
        widget.properties = {}
        for prop in element.findall("property"):
            value = next(iter(prop))
            widget.properties[prop.get("name")] = UI_VALUES.get(value.tag, lambda text: text)(value.text or "")
            setattr(widget, prop.get("name"), widget.properties[prop.get("name")])
        widget.property = widget.properties.get
        widget.isWidgetType = lambda: True
        child_elements = [child for child in element.iter("widget") if child is not element]
        nested = {id(grandchild) for child in child_elements for grandchild in child.iter("widget")
                  if grandchild is not child}
        widget.childWidgets = [self._widget(child, widgets) for child in child_elements if id(child) not in nested]
        widget.children = lambda: widget.childWidgets
        widgets[widget.name] = widget
        return widget


UI_VALUES = {"bool": lambda text: text == "true", "double": float, "number": int}
# Stand-ins that behave: the classes Slicer's scripts and the module's widget call for a value.
BEHAVIOURS = {"QSettings": Settings, "QFile": UiFile, "QUiLoader": UiLoader, "qMRMLWidget": MRMLWidget,
              "qMRMLNodeComboBox": NodeComboBox, "qMRMLTableView": TableView, "QComboBox": ComboBox}


class QtModule(types.ModuleType):
    """A ``qt`` / ``ctk`` module whose every class is a :class:`QtStandIn` subclass of that name."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        bases = (BEHAVIOURS[name], QtStandIn) if name in BEHAVIOURS else (QtStandIn,)
        cls = QtStandInClass(name, bases, {})
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
# The Qt widget classes of Slicer's own libraries that Slicer's scripts above and the module's .ui name.
SLICER_WIDGETS = ("qMRMLNodeComboBox", "qMRMLRangeWidget", "qMRMLScreenShotDialog", "qMRMLSliderWidget",
                  "qMRMLSpinBox", "qMRMLTableView", "qMRMLUtils", "qMRMLWidget", "qSlicerWidget")


@pytest.fixture
def slicer_application(monkeypatch):
    """``import slicer``, ``qt``, ``ctk`` and the module files work as inside Slicer, for one test.

    A fresh real MRML scene is ``slicer.mrmlScene``; the fixture gives the ``slicer.app`` stand-in. Slicer's
    scripts and the module files are imported afresh against these stand-ins, and forgotten afterwards.
    """
    with slicer_world(monkeypatch) as app:
        yield app


@contextlib.contextmanager
def slicer_world(monkeypatch):
    """What :func:`slicer_application` sets up, for any ``pytest.MonkeyPatch`` (e.g. in a fresh interpreter)."""
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
