"""LiverResUNet Trainer: the headless commands (prepare, train, evaluate, segment, phantom) inside 3D Slicer.

    Slicer --no-splash --no-main-window --python-script LiverResUNetTrainer.py --ignore-rest train --data D --out R

runs exactly what ``python LiverResUNetTrainer.py train --data D --out R`` and ``python -m LiverResUNetLib train
--data D --out R`` run. Slicer's own parser reads every argument before ``--ignore-rest`` (its ``--help`` too);
``--python-script`` then sets ``sys.argv`` to the script and the arguments after ``--ignore-rest`` and executes the
file as ``__main__``. Slicer does not end by itself after a ``--python-script`` (nor after an uncaught exception):
the script ends it with the command's exit code. Loaded as a module, the file defines the module and a short page.
``... --ignore-rest install`` installs the packages the commands need into Slicer's Python, as the first Apply of
the segmentation module does.
"""

import sys
import traceback
from pathlib import Path

# Not a command of the core (it installs through Slicer's own code): the trainer handles it before them.
INSTALL_COMMAND = "install"


def main(argv):
    """Run one headless command and return its exit code; never raises.

    0: done; 2: a user mistake (one line on standard error); 1: an unexpected error (its traceback is printed).
    """
    _make_core_importable()
    if argv[:1] == [INSTALL_COMMAND]:
        return install_into_slicer()
    from LiverResUNetLib.cli import main as run_command

    try:
        return run_command(argv)
    except SystemExit as end:  # argparse: --help gives 0, a usage error 2
        return end.code if isinstance(end.code, int) else int(end.code is not None)
    except ModuleNotFoundError as error:
        print(f"error: the Python package '{error.name}' is missing; in Slicer install PyTorch with the PyTorch "
              "extension and the other packages of LiverResUNet/Resources/requirements.txt: run this script with "
              f"--ignore-rest {INSTALL_COMMAND}, or press Apply in 'Segment liver and tumor'", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1


def install_into_slicer():
    """The ``install`` command: what the commands need that Slicer does not bundle (PyTorch through the PyTorch
    extension, Resources/requirements.txt with pip) goes into Slicer's Python, by the code of the module's first
    Apply, without a question (typing the command is the consent). Returns the exit code."""
    slicer = sys.modules.get("slicer")
    if slicer is None or not hasattr(slicer, "app"):
        print("error: 'install' installs into Slicer's Python: run it as Slicer --no-main-window --python-script "
              "LiverResUNetTrainer.py --ignore-rest install; in another Python, pip install torch and "
              "-r LiverResUNet/Resources/requirements.txt", file=sys.stderr)
        return 2
    from LiverResUNet import installPythonRequirements, missingPythonRequirements

    try:
        installPythonRequirements(askConfirmation=False)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    missing = missingPythonRequirements()
    if missing:
        print(f"error: still missing after the installation: {', '.join(missing)}", file=sys.stderr)
        return 1
    print("LiverResUNet's Python packages are installed")
    return 0


def exit_with(code):
    """End the process with ``code``: inside Slicer with ``slicer.util.exit`` (Slicer keeps running after a
    ``--python-script`` otherwise), in plain Python with ``sys.exit``."""
    slicer = sys.modules.get("slicer")
    if slicer is not None and hasattr(slicer, "app"):
        slicer.util.exit(code)
    else:
        sys.exit(code)


def _make_core_importable():
    """In an installed extension both module folders are on sys.path; from a source checkout add ../LiverResUNet."""
    try:
        import LiverResUNetLib  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "LiverResUNet"))


if __name__ == "__main__":
    # The commands need nothing from Slicer's GUI classes below, so they run before those are imported.
    exit_with(main(sys.argv[1:]))


from slicer.i18n import tr as _  # noqa: E402
from slicer.i18n import translate  # noqa: E402
from slicer.ScriptedLoadableModule import (  # noqa: E402
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

USAGE = """Headless training and evaluation (run from a terminal; on a Linux server without a display, put
xvfb-run -a before Slicer). First, once, install the Python packages they need into Slicer:

Slicer --no-splash --no-main-window --python-script LiverResUNetTrainer.py --ignore-rest install

Then:

Slicer --no-splash --no-main-window --python-script LiverResUNetTrainer.py --ignore-rest \
    prepare --data RAW --out DATASET
Slicer --no-splash --no-main-window --python-script LiverResUNetTrainer.py --ignore-rest \
    train --data DATASET --out RUN
Slicer --no-splash --no-main-window --python-script LiverResUNetTrainer.py --ignore-rest \
    evaluate --model RUN/model.pth --data TEST --out REPORT

Arguments after --ignore-rest go to the command (before it, Slicer reads them itself). Each command explains its
options with --help. The exit code is 0 when the command succeeded. The same commands run outside Slicer as
python LiverResUNetTrainer.py COMMAND. Training options and their defaults: Resources/config.yaml."""


class LiverResUNetTrainer(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and Help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LiverResUNet Trainer")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["LiverResUNet"]  # its folder holds LiverResUNetLib
        self.parent.contributors = ["LiverResUNet contributors"]
        self.parent.helpText = _(
            "Trains and evaluates the 2D ResUNet of the LiverResUNet module on 3D-IRCADb-01, LiTS or MSD "
            "Task03 data, headless. Run it from a terminal:<br><code>Slicer --no-splash --no-main-window "
            "--python-script LiverResUNetTrainer.py --ignore-rest train --help</code><br>"
            "See the {link_start}documentation{link_end}.").format(
                link_start='<a href="https://github.com/LiverResUNet/SlicerLiverResUNet#headless-commands">',
                link_end="</a>")
        self.parent.acknowledgementText = _(
            "Training data: 3D-IRCADb-01 (IRCAD, Strasbourg), LiTS and the Medical Segmentation Decathlon.")


class LiverResUNetTrainerWidget(ScriptedLoadableModuleWidget):
    """A single page that tells how to run the headless commands; training has no buttons on purpose."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        import qt

        label = qt.QLabel(_(USAGE))
        label.wordWrap = True
        label.setTextInteractionFlags(qt.Qt.TextSelectableByMouse)
        self.layout.addWidget(label)
        self.layout.addStretch(1)


class LiverResUNetTrainerTest(ScriptedLoadableModuleTest):
    """Runs the real commands inside Slicer on a tiny phantom cohort: phantom -> prepare -> train."""

    def runTest(self):
        self.test_TrainOnPhantoms()

    def test_TrainOnPhantoms(self):
        import contextlib
        import io
        import tempfile

        from LiverResUNet import selfTestCanRun

        if not selfTestCanRun(self):
            return
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            self.assertEqual(main(["phantom", "--out", str(folder / "raw"), "--patients", "3", "--size", "48"]), 0)
            self.assertEqual(main(["prepare", "--data", str(folder / "raw"), "--out", str(folder / "dataset")]), 0)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = main(["train", "--data", str(folder / "dataset"), "--out", str(folder / "run"),
                             "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
                             "--set", "network.base_width=4", "--set", "network.depth=3",
                             "--set", "preprocessing.input_size=32", "--set", "preprocessing.pixel_size_mm=12"])
            self.assertEqual(code, 0)
            model = Path(printed.getvalue().strip().splitlines()[-1])
            self.assertTrue(model.is_file())
            self.delayDisplay("Training inside Slicer produced " + model.name)
