"""The headless commands with only the Python packages the modules get inside Slicer.

``scripts/slicer_env.sh`` (run by ``scripts/test.sh``) builds ``.venv-slicer``: Slicer 5.12.3's bundled packages at
its versions, slicer-core, torch 2.13.0 and ``LiverResUNet/Resources/requirements.txt``; ``.pydicom-2.4.4`` first on
PYTHONPATH makes it Slicer 5.10's DICOM stack. The whole job runs there through ``LiverResUNetTrainer.py``, as
``Slicer --python-script LiverResUNetTrainer.py --ignore-rest ...`` runs it: phantom -> prepare -> train ->
evaluate -> segment. Python is 3.11 here; Slicer's is 3.12.10.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINER = REPO / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"
BUNDLED = REPO / "Testing" / "SlicerSources" / "BUNDLED_PYTHON_PACKAGES.txt"
SLICER_VERSIONS = {"Slicer 5.12 (pydicom 3.0.2)": "3.0.2", "Slicer 5.10 (pydicom 2.4.4)": "2.4.4"}


@pytest.fixture(scope="module")
def slicer_python():
    """The Python of .venv-slicer; skipped when pytest runs without scripts/test.sh, required in CI."""
    python = os.environ.get("SLICER_ENV_PYTHON")
    if not python or not Path(python).is_file():
        reason = "SLICER_ENV_PYTHON is not set: run ./scripts/test.sh, which builds .venv-slicer"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return python


def environment(pydicom_version):
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    if pydicom_version == "2.4.4":
        env["PYTHONPATH"] = os.environ["PYDICOM_2_4_4_PATH"]
    return env


def normalized(name):
    return name.lower().replace("_", "-").replace(".", "-")


def test_environment_has_slicers_packages_and_not_the_development_ones(slicer_python):
    listed = subprocess.run([slicer_python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True).stdout
    installed = {normalized(package["name"]): package["version"] for package in json.loads(listed)}
    for line in BUNDLED.read_text().split():
        name, version = line.split("==")
        assert installed.get(normalized(name)) == version, f"{name} is not Slicer's {version}"
    for development_only in ("monai", "ruff", "mypy"):
        assert development_only not in installed


@pytest.mark.parametrize("slicer_version", SLICER_VERSIONS)
def test_whole_job_through_the_trainer_script(slicer_python, tmp_path, slicer_version):
    pydicom_version = SLICER_VERSIONS[slicer_version]
    env = environment(pydicom_version)

    def trainer(*arguments):
        finished = subprocess.run([slicer_python, str(TRAINER), *arguments], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=900)
        assert finished.returncode == 0, f"{arguments[0]} failed:\n{finished.stderr[-3000:]}"
        return finished.stdout

    found = subprocess.run([slicer_python, "-c", "import pydicom; print(pydicom.__version__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == pydicom_version
    trainer("phantom", "--out", "raw", "--patients", "3", "--size", "48", "--slices", "20", "--seed", "3")
    trainer("prepare", "--data", "raw", "--out", "dataset")
    model = Path(trainer("train", "--data", "dataset", "--out", "run", "--epochs", "1", "--steps-per-epoch", "3",
                         "--batch-size", "4", "--threads", "1", "--set", "preprocessing.input_size=32",
                         "--set", "preprocessing.pixel_size_mm=12",
                         "--set", "network.base_width=4", "--set", "network.depth=3").strip().splitlines()[-1])
    assert (tmp_path / model).is_file()
    trainer("evaluate", "--model", str(model), "--data", "dataset", "--out", "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report and (tmp_path / "report" / "report.html").is_file()
    patient = next(path for path in (tmp_path / "raw").rglob("PATIENT_DICOM") if path.is_dir())
    trainer("segment", "--model", str(model), "--input", str(patient), "--output", "liver.seg.nrrd",
            "--table", "results.csv")
    assert (tmp_path / "liver.seg.nrrd").stat().st_size > 0
    assert (tmp_path / "results.csv").read_text().startswith("Structure,Volume (mL)")
