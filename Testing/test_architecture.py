"""The house's rules, read from the source: layers import one way, no circle, argparse only in the application.

The import graph of LiverResUNetLib is built with ``ast`` from every ``import`` in every module, those inside
functions included: an import moved into a function still makes a circle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "LiverResUNet" / "LiverResUNetLib"
# The packages a function may import late: slow or optional ones, which a module (or a command's --help, or
# the Slicer module's loading) must not pay for before it needs them.
HEAVY = {"torch", "scipy", "skimage", "matplotlib", "yaml", "slicer", "vtk", "highdicom", "dicomweb_client",
         "requests", "pydicom", "SimpleITK"}
GUI = {"slicer", "vtk", "qt", "ctk"}


def module_name(path):
    parts = ["LiverResUNetLib", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """(imported name, inside a function) for every import in the file at ``path``; relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                found.append((base, in_function))
                found.extend((f"{base}.{alias.name}", in_function) for alias in child.names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: imports_of(path) for name, path in MODULES.items()}


def layer(name):
    """"app" (the commands and cli), "scene" (the MRML bridge) or "core"."""
    parts = name.split(".")
    if parts[1:2] in (["app"], ["cli"], ["__main__"]):
        return "app"
    return "scene" if parts[1:2] == ["scene"] else "core"


def internal_edges(name, function_level=None):
    """The LiverResUNetLib modules ``name`` imports (all, or only those at module or at function level)."""
    return {imported for imported, in_function in IMPORTS[name]
            if imported in MODULES and imported != name and function_level in (None, in_function)}


def third_party(name, function_level=None):
    return {imported.split(".")[0] for imported, in_function in IMPORTS[name]
            if not imported.startswith("LiverResUNetLib") and function_level in (None, in_function)}


def find_cycle(graph):
    """One import circle of ``graph`` as [a, b, ..., a], or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_is_read_from_every_module():
    assert len(MODULES) > 60 and "LiverResUNetLib.app.segment" in MODULES
    assert "LiverResUNetLib.app.dicomweb" in internal_edges("LiverResUNetLib.app.segment")
    assert "LiverResUNetLib.training.loop" in internal_edges("LiverResUNetLib.app.train", function_level=True)


def test_cycle_finder_finds_a_circle_through_a_function_level_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle_counting_imports_inside_functions():
    cycle = find_cycle({name: internal_edges(name) for name in MODULES})
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_layers_import_downwards_only():
    """The core never imports the scene bridge or the application; the scene never imports the application."""
    rank = {"core": 0, "scene": 1, "app": 2}
    upward = [f"{name} imports {imported}" for name in MODULES for imported in internal_edges(name)
              if rank[layer(imported)] > rank[layer(name)]]
    assert not upward, "\n".join(upward)


def test_the_core_imports_no_slicer_vtk_or_qt_and_the_scene_no_qt():
    found = [f"{name} imports {package}" for name in MODULES for package in third_party(name)
             if (layer(name) == "core" and package in GUI) or (layer(name) == "scene" and package in {"qt", "ctk"})]
    assert not found, "\n".join(found)


def test_the_application_names_mrml_only_through_the_scene_bridge():
    """No application module imports slicer or vtk, the browser review's page included: its MRML calls (jump the
    views, the surfaces as model nodes, VTK's warnings held) are scene/ helpers. trame-slicer, the page's GUI
    toolkit, it may import."""
    found = [f"{name} imports {package}" for name in MODULES if layer(name) == "app"
             for package in third_party(name) if package in {"slicer", "vtk"}]
    assert not found, "\n".join(found)
    assert "trame_slicer" in third_party("LiverResUNetLib.app.review.page"), "the page is still read"


def test_argparse_only_in_the_application():
    """Below the application functions take typed values: no argparse, no Namespace, not even in a hint."""
    found = []
    for name, path in MODULES.items():
        if layer(name) == "app":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if "argparse" in third_party(name) or any(
                (isinstance(node, ast.Attribute) and node.attr == "Namespace")
                or (isinstance(node, ast.Name) and node.id == "Namespace") for node in ast.walk(tree)):
            found.append(name)
    assert not found, f"argparse below the application layer: {found}"


def test_a_function_imports_late_only_what_is_slow_or_optional():
    """An import inside a function defers a heavy package (directly or through the module it imports); one that
    defers nothing only hid something, e.g. a circle, and belongs at the top of the module."""
    def heavy_at_import(name, seen):
        if name in seen:
            return False
        seen.add(name)
        return bool(third_party(name, function_level=False) & HEAVY) or any(
            heavy_at_import(imported, seen) for imported in internal_edges(name, function_level=False))

    needless = [f"{name} imports {imported} inside a function" for name in MODULES
                for imported in internal_edges(name, function_level=True)
                if imported not in internal_edges(name, function_level=False)
                and not heavy_at_import(imported, set())]
    assert not needless, "\n".join(needless)


# Blocks PyYAML and torch in a fresh interpreter and records every attempt to import them.
BLOCKER = """
import runpy, sys
attempts = []
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("yaml", "torch"):
            attempts.append(name)
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Blocker())
sys.argv = ["LiverResUNetLib", *sys.argv[1:]]
try:
    runpy.run_module("LiverResUNetLib", run_name="__main__")
except SystemExit as end:
    code = end.code
print("attempts:", sorted(attempts), "loaded:", sorted(m for m in ("yaml", "torch") if m in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize("arguments", [["--help"], ["segment", "--help"], ["predict", "--help"],
                                       ["evaluate", "--help"], ["phantom", "--help"], ["prepare", "--help"]])
def test_help_needs_neither_pyyaml_nor_torch(arguments):
    result = subprocess.run([sys.executable, "-c", BLOCKER, *arguments], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert result.stdout.rstrip().endswith("attempts: [] loaded: []"), result.stdout[-300:]


def test_the_blocker_does_block_a_command_that_needs_pyyaml():
    result = subprocess.run([sys.executable, "-c", BLOCKER, "train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "yaml is blocked" in result.stderr
