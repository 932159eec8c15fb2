"""Multi-process training with torchrun and DDP on the gloo backend (two CPU processes), for real."""

import shutil
import subprocess
import sys
from pathlib import Path

import torch

from LiverResUNetLib.datasets.cases import discover_cases
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.training.distributed import DistributedContext
from LiverResUNetLib.training.validation import validate


def test_two_processes_train_one_model(tiny_phantom_dataset, tmp_path):
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "LiverResUNetLib", "train",
         "--data", str(tiny_phantom_dataset), "--out", str(out), "--val-fraction", "0.5", "--epochs", "3",
         "--steps-per-epoch", "10", "--batch-size", "4", "--lr", "0.01", "--threads", "1",
         "--set", "optimization.warmup_steps=3", "--set", "preprocessing.input_size=32",
         "--set", "preprocessing.pixel_size_mm=12",
         "--set", "network.base_width=8", "--set", "network.depth=3"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(out / "model.pth")]
    assert result.stderr.count("preparing slices of 3Dircadb1.1") == 1
    assert not [path.name for path in out.iterdir() if ".partial" in path.name]

    model = load_model(out / "model.pth")
    training = model.card["training"]
    assert training["processes"] == 2 and [row["epoch"] for row in training["history"]] == [1, 2, 3]
    split = training["split"]
    assert len(split["val"]) == 2

    # The Dice the two processes agreed on (each validated one case) is the Dice one process finds alone.
    sources = {source.case_id: source for source in discover_cases(tiny_phantom_dataset)}
    cases = [(position, sources[case].load()) for position, case in enumerate(split["val"])]
    liver, tumor = validate(model.network, model.card, cases, DistributedContext(torch.device("cpu")), len(cases))
    assert liver > 0.2, "the two processes did not learn the liver"
    assert liver == model.card["metrics"]["val_liver_dice"]
    assert tumor == model.card["metrics"]["val_tumor_dice"]
