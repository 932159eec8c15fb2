"""What can be checked of the Slicer modules without the Slicer application: the parts must fit together.

Every ``self.ui.X`` exists in the .ui file, every parameter-node name is bound to a widget that can show it
(and every bound widget has a parameter), every script and resource is listed in the module's CMakeLists,
both module files compile, and loading the module imports none of the packages installed on first use.
"""

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = {"LiverResUNet": REPO / "LiverResUNet", "LiverResUNetTrainer": REPO / "LiverResUNetTrainer"}
SEGMENT_MODULE = REPO / "LiverResUNet" / "LiverResUNet.py"
SEGMENT_UI = REPO / "LiverResUNet" / "Resources" / "UI" / "LiverResUNet.ui"
# Which widget classes parameterNodeWrapper's GUI connectors pair with which parameter types.
WIDGETS_FOR_TYPE = {"bool": {"QCheckBox", "QPushButton"}, "float": {"QDoubleSpinBox", "ctkSliderWidget"},
                    "int": {"QSpinBox", "QSlider"}, "str": {"QLineEdit", "QTextEdit", "QComboBox"},
                    "Path": {"ctkPathLineEdit", "ctkDirectoryButton"}}
NODE_WIDGETS = {"qMRMLNodeComboBox", "qMRMLSubjectHierarchyTreeView"}


def ui_widgets(path):
    """name -> (class, SlicerParameterName or None) for every widget of a .ui file."""
    widgets = {}
    for widget in ElementTree.parse(path).getroot().iter("widget"):
        bound = widget.find("property[@name='SlicerParameterName']/string")
        widgets[widget.get("name")] = (widget.get("class"), bound.text if bound is not None else None)
    return widgets


def ui_attributes(source):
    """Names used as ``self.ui.<name>`` in a module's source."""
    return {node.attr for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui" and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}


def parameter_node_fields(source):
    """name -> annotation source of the @parameterNodeWrapper classes of a module."""
    fields = {}
    for node in ast.walk(ast.parse(source)):
        decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
        if isinstance(node, ast.ClassDef) and "parameterNodeWrapper" in decorators:
            for statement in node.body:
                if isinstance(statement, ast.AnnAssign):
                    fields[statement.target.id] = ast.unparse(statement.annotation)
    return fields


def cmake_list(cmake, variable, module_name):
    """The entries of ``set(<variable> ...)`` in a CMakeLists.txt, ${MODULE_NAME} expanded."""
    match = re.search(rf"set\({variable}\s+(.*?)\)", cmake, re.DOTALL)
    assert match, f"{variable} is not set"
    return {entry.replace("${MODULE_NAME}", module_name) for entry in match.group(1).split()}


@pytest.mark.parametrize("name", MODULES)
def test_module_file_compiles(name):
    path = MODULES[name] / f"{name}.py"
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("name", MODULES)
def test_every_script_and_resource_is_listed_in_cmakelists(name):
    folder = MODULES[name]
    cmake = (folder / "CMakeLists.txt").read_text(encoding="utf-8")
    assert f"set(MODULE_NAME {name})" in cmake
    scripts = {str(p.relative_to(folder)) for p in folder.rglob("*.py") if "__pycache__" not in p.parts
               and "Testing" not in p.relative_to(folder).parts}
    resources = {str(p.relative_to(folder)) for p in (folder / "Resources").rglob("*") if p.is_file()}
    assert cmake_list(cmake, "MODULE_PYTHON_SCRIPTS", name) == scripts
    assert cmake_list(cmake, "MODULE_PYTHON_RESOURCES", name) == resources


def test_every_ui_attribute_exists_in_the_ui_file():
    used = ui_attributes(SEGMENT_MODULE.read_text(encoding="utf-8"))
    assert used, "the module uses no self.ui widgets: is the parser broken?"
    assert used - set(ui_widgets(SEGMENT_UI)) == set()


def test_trainer_module_uses_no_ui_file_it_lacks():
    trainer = MODULES["LiverResUNetTrainer"]
    if ui_attributes((trainer / "LiverResUNetTrainer.py").read_text(encoding="utf-8")):
        assert (trainer / "Resources" / "UI" / "LiverResUNetTrainer.ui").is_file()


def test_every_parameter_is_bound_to_a_widget_that_can_show_it_and_vice_versa():
    fields = parameter_node_fields(SEGMENT_MODULE.read_text(encoding="utf-8"))
    bound = {parameter: widget_class for widget_class, parameter in ui_widgets(SEGMENT_UI).values() if parameter}
    assert set(fields) == set(bound)
    for name, annotation in fields.items():
        base = re.sub(r"^Annotated\[(\w+),.*\]$", r"\1", annotation)
        allowed = NODE_WIDGETS if base.startswith("vtkMRML") else WIDGETS_FOR_TYPE[base]
        assert bound[name] in allowed, f"{name}: {annotation} cannot be shown by a {bound[name]}"


def test_every_mrml_widget_receives_the_scene():
    root = ElementTree.parse(SEGMENT_UI).getroot()
    receivers = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"}
    mrml_widgets = {name for name, (widget_class, _) in ui_widgets(SEGMENT_UI).items()
                    if widget_class.startswith("qMRML") and widget_class != "qMRMLWidget"}
    assert mrml_widgets and mrml_widgets == receivers


def test_loading_the_module_logic_imports_nothing_installed_on_first_use():
    code = ("import sys, LiverResUNetLib.scene.logic, LiverResUNetLib.errors; "
            "print(sorted(m for m in ('torch', 'scipy', 'skimage') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_gui_default_minimum_tumor_size_is_the_post_processing_default():
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions

    for node in ast.walk(ast.parse(SEGMENT_MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.AnnAssign) and node.target.id == "minTumorMm3":
            assert ast.literal_eval(node.value) == PostprocessOptions().min_tumor_mm3
            return
    pytest.fail("the parameter node has no minTumorMm3")



def cmake_calls(cmake, command):
    """The arguments of every ``command(...)`` call in a CMakeLists.txt (quoted strings kept whole)."""
    return [re.findall(r'"[^"]*"|[^\s"]+', body) for body in re.findall(rf"{command}\((.*?)\n\s*\)", cmake, re.DOTALL)]


def test_cmake_headless_tests_pass_only_when_the_script_runs_with_their_arguments():
    """Each slicer_add_python_test of the trainer script gives its arguments after --ignore-rest and passes only
    on output that the script prints for them (checked here by running them in plain Python)."""
    cmake = (REPO / "LiverResUNet" / "Testing" / "Python" / "CMakeLists.txt").read_text(encoding="utf-8")
    tests = cmake_calls(cmake, "slicer_add_python_test")
    assert tests
    expected = {properties[0]: properties[properties.index("PASS_REGULAR_EXPRESSION") + 1].strip('"')
                for properties in cmake_calls(cmake, "set_tests_properties")}
    for arguments in tests:
        values = {key: arguments[arguments.index(key) + 1] for key in ("SCRIPT", "TESTNAME_PREFIX")}
        script_arguments = arguments[arguments.index("SCRIPT_ARGS") + 1:arguments.index("SLICER_ARGS")]
        assert script_arguments[0] == "--ignore-rest", "without it Slicer takes --help and other options itself"
        script = REPO / values["SCRIPT"].replace("${CMAKE_SOURCE_DIR}/", "")
        name = f"py_{values['TESTNAME_PREFIX']}{script.name.split('.')[0]}"  # slicer_add_python_test's test name
        assert name in expected, f"{name} has no PASS_REGULAR_EXPRESSION: it would pass without the script running"
        result = subprocess.run([sys.executable, str(script), *script_arguments[1:]], capture_output=True,
                                text=True, timeout=300)
        assert re.search(expected[name], result.stdout + result.stderr), result.stdout + result.stderr
