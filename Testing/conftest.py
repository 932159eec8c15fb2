"""Shared pytest set-up: the real fixtures in Testing/Data and the large real data beside the repo."""

import os
import shutil
from pathlib import Path

import pytest

from slicer_application import slicer_application  # noqa: F401  (a fixture: Slicer's Python world, see there)

REPO = Path(__file__).resolve().parents[1]
REAL_FIXTURES = REPO / "Testing" / "Data"
REAL_DATA = REPO.parent / "shared" / "data" / "3Dircadb1"


def pytest_configure(config):
    config.addinivalue_line("markers", "dicom: reads or writes DICOM; scripts/test.sh runs these again with "
                                       "pydicom 2.4.4 (Slicer 5.10) in Slicer's own Python packages")
    config.addinivalue_line("markers", "review: the browser review (trame-slicer, Chromium); scripts/test.sh runs "
                                       "these in .venv-review")


@pytest.fixture(scope="session")
def real_fixtures():
    return REAL_FIXTURES


@pytest.fixture(scope="session")
def real_patients():
    """The two real 3D-IRCADb-01 patients in ../shared/data: skipped in a user's clone, required in CI."""
    if not (REAL_DATA / "3Dircadb1.1").is_dir() or not (REAL_DATA / "3Dircadb1.7").is_dir():
        reason = f"the real 3D-IRCADb-01 patients are not beside the repo ({REAL_DATA})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires them")
        pytest.skip(reason)
    return REAL_DATA


def required_program(name, package):
    """The path of an installed program the tests need: skipped in a user's clone without it, required in CI."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def _missing(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture
def orthanc(tmp_path_factory):
    """A real Orthanc PACS with DICOMweb on 127.0.0.1 (free port, temporary storage, generated config), stopped
    after the test."""
    from orthanc_server import DICOMWEB_PLUGIN, Orthanc

    program = required_program("Orthanc", "orthanc")
    if not DICOMWEB_PLUGIN.is_file():
        _missing(f"{DICOMWEB_PLUGIN} is not installed (Debian package orthanc-dicomweb; .ci/run installs it)")
    server = Orthanc(tmp_path_factory.mktemp("orthanc"), program)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dciodvfy():
    """dicom3tools' DICOM validator: ``dciodvfy FILE`` lists what the standard's IODs require."""
    return required_program("dciodvfy", "dicom3tools")


@pytest.fixture(scope="session")
def tiny_phantom_dataset(tmp_path_factory):
    """A prepared dataset of 4 small phantom patients (48 px, 24 slices; patient 3 is tumor-free), built once."""
    from LiverResUNetLib.datasets.prepare import prepare_dataset
    from LiverResUNetLib.phantom.ircadb_writer import write_cohort

    folder = tmp_path_factory.mktemp("tiny_phantom_dataset")
    raw = write_cohort(folder / "raw", 4, size=48, seed=0, slices=24)
    return prepare_dataset(raw, folder / "dataset")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A tiny untrained network (seeded, 32 px input) saved as a real model file: fast end-to-end plumbing.

    Its output bias is zeroed so that its labels follow the image (all three classes appear) instead of one
    class everywhere, which would hide a misplaced or flipped result.
    """
    import torch

    from LiverResUNetLib.model.model_file import new_card, save_model
    from LiverResUNetLib.model.resunet import build_network, default_architecture
    from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

    architecture = {**default_architecture(), "base_width": 4, "depth": 2}
    with torch.random.fork_rng():  # seeded here without changing the random state other tests see
        torch.manual_seed(1)
        network = build_network(architecture)
    with torch.no_grad():
        network.head.bias.zero_()
    path = tmp_path_factory.mktemp("tiny_model") / "tiny.pth"
    params = PreprocessingParams(input_size=32, pixel_size_mm=12.0)  # the default's 384 mm field of view
    save_model(path, network, new_card(architecture, params.to_dict()))
    return path
