"""Make the golden model and the label map it must produce (Testing/Data/golden/), through the real commands.

A small cascade (both stages `train` makes; networks of base width 8, depth 4), its liver stage trained for 500
steps of 96-pixel patches on a small phantom cohort (for tumors) plus the real fixture CT
Testing/Data/totalsegmentator-example/ct_dicom with the liver of its TotalSegmentator label map (label 5, Apache-2.0,
in the repository), with the default preprocessing (only the network is small), then `segment` on that fixture CT;
it prints the map's liver Dice against that liver and its tumor voxels. A model
trained on phantoms alone finds nothing in real CT, and an empty label map would pin nothing.
Testing/test_golden.py runs the same `segment` with the committed model and compares its label map with the
committed one, so a change in reading, preprocessing, the network or post-processing that moves the result fails.

Run it again, and commit both files, only when such a change is intended:
    .venv/bin/python scripts/make_golden_model.py
Training is seeded; the model differs from run to run only by CPU floating-point non-determinism.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from LiverResUNetLib.datasets.cases import Case
from LiverResUNetLib.datasets.prepare import add_case
from LiverResUNetLib.evaluation.metrics import binary_metrics
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.io.image_file import read_image
from LiverResUNetLib.volume import LIVER, TUMOR

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "Testing" / "Data" / "golden"
FIXTURE = REPO / "Testing" / "Data" / "totalsegmentator-example"
FIXTURE_CT, FIXTURE_LABELS = FIXTURE / "ct_dicom", FIXTURE / "example_seg_dicom.nii.gz"
TOTALSEGMENTATOR_LIVER = 5
MODEL, EXPECTED = GOLDEN / "model.pth", GOLDEN / "expected_labels.nii.gz"
TRAINING = ["--val-fraction", "0", "--epochs", "10", "--steps-per-epoch", "50", "--batch-size", "8", "--lr", "0.01",
            "--seed", "0", "--threads", "2", "--set", "network.base_width=8", "--set", "network.depth=4",
            "--set", "network.max_width=64", "--set", "sampling.patch_size=96"]


def command(*args: str) -> str:
    """Run one `python -m LiverResUNetLib` command; its standard output, or exit with its error."""
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE)
    if result.returncode != 0:
        sys.exit(f"{args[0]} failed with exit code {result.returncode}")
    return result.stdout


def fixture_case() -> Case:
    """The fixture CT with its TotalSegmentator liver as label 1 (the NIfTI's rows run the other way)."""
    ct, organs = read_series(FIXTURE_CT), read_image(FIXTURE_LABELS)
    liver = organs.array[:, ::-1, :] == TOTALSEGMENTATOR_LIVER
    return Case("totalsegmentator-example", ct, ct.with_array(np.where(liver, LIVER, 0).astype(np.uint8)),
                str(FIXTURE))


def describe(labels_path: Path) -> str:
    """Why the label map pins something: its liver Dice against the fixture's TotalSegmentator liver, its tumor
    voxels (an empty or trivial map would pin nothing)."""
    labels, reference = read_image(labels_path).array, fixture_case().label.array
    dice = binary_metrics(labels > 0, reference > 0, (1.0, 1.0, 1.0))["dice"]
    return (f"liver Dice {dice:.3f} against TotalSegmentator's liver, {np.count_nonzero(labels > 0)} liver and "
            f"{np.count_nonzero(labels == TUMOR)} tumor voxels")


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        command("phantom", "--out", str(work / "raw"), "--patients", "2", "--size", "128", "--seed", "0")
        command("prepare", "--data", str(work / "raw" / "3Dircadb1"), "--out", str(work / "prepared"))
        add_case(work / "prepared", fixture_case(), source=str(FIXTURE))
        model = command("train", "--data", str(work / "prepared"), "--out", str(work / "run"), *TRAINING)
        shutil.copyfile(model.strip().splitlines()[-1], MODEL)
    command("segment", "--model", str(MODEL), "--input", str(FIXTURE_CT), "--output", str(EXPECTED))
    print(f"wrote {MODEL.relative_to(REPO)} ({MODEL.stat().st_size // 1024} KB) and {EXPECTED.relative_to(REPO)}: "
          f"{describe(EXPECTED)}")


if __name__ == "__main__":
    main()
