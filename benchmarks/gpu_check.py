"""The GPU path, checked in one run (benchmarks/gpu_check.sh): inference speed, bf16 vs fp32, training, NCCL.

On a CUDA machine (target: <= 8 minutes in all):
  1. inference: a 512 x 512 x 129 phantom CT through `predict_volume` (preprocessing, network, post-processing)
     with the default architecture, once cold and three times warm (target <= 1 s warm); then a cascade's both
     stages, its tumor stage at 0.75 mm on every slice (the liver stage made to call everything liver);
  2. bf16 autocast vs fp32: the label maps of the committed golden model (Testing/Data/golden, a trained
     network) on the real fixture CT, with and without autocast (target: Dice between them >= 0.999);
  3. training throughput: slices per second of the default network, batch 16 of 256 x 256, Dice + CE loss,
     AdamW, under bf16 autocast;
  4. `torchrun --nproc_per_node=1 -m LiverResUNetLib train` on two tiny phantom patients: one DDP process (in a
     process group of one: DDP and its all-reduces run for real; the card records the backend) on
     the NCCL backend (gloo on the CPU).
--cpu-dry-run does the same on the CPU with tiny sizes, full precision against CPU bf16 autocast, and gloo,
so that a test proves the script runs; its timings mean nothing. Prints one JSON object; exit status 1 when
a target is missed on the GPU (the dry run enforces only the torchrun smoke run: CPU bf16 is not
the GPU's and its timings mean nothing).
"""

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LiverResUNetLib.evaluation.metrics import overlap_metrics
from LiverResUNetLib.inference import predictor
from LiverResUNetLib.io.dicom_series import read_series
from LiverResUNetLib.model.cascade import tumor_stage_section
from LiverResUNetLib.model.model_file import LoadedModel, load_model, new_card, read_card
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.phantom.anatomy import generate_patient
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.training.config import TumorStageConfig
from LiverResUNetLib.training.loss import DiceCrossEntropyLoss
from LiverResUNetLib.volume import Volume

REPO = Path(__file__).resolve().parents[1]
GOLDEN_MODEL = REPO / "Testing" / "Data" / "golden" / "model.pth"
FIXTURE_CT = REPO / "Testing" / "Data" / "totalsegmentator-example" / "ct_dicom"
WARM_SECONDS_TARGET, AGREEMENT_TARGET = 1.0, 0.999


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on the CPU, gloo, fp32 vs CPU bf16")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def inference_seconds(device: torch.device, size: int, slices: int, cascade: bool = False) -> dict:
    """Cold and warm end-to-end times of the default network (random weights: speed does not depend on them);
    with ``cascade`` of both stages, the liver stage made to call every pixel liver so that the tumor stage runs
    on every slice of the CT (a random liver stage finds no liver, and its tumor stage would never run)."""
    ct = generate_patient(seed=0, size=size, slices=slices).ct
    input_size = 256 if size >= 256 else 32
    architecture = dict(default_architecture(), **({} if size >= 256 else {"depth": 3, "base_width": 8}))
    params = PreprocessingParams(input_size=input_size)
    network = build_network(architecture)
    model = LoadedModel(network, new_card(architecture, params))
    if cascade:
        model = everything_liver_cascade(network, architecture, params, 0.75 if size >= 256 else 6.0)
    times = []
    for _ in range(4):
        synchronize(device)
        started = time.perf_counter()
        predictor.predict_volume(ct, model, device=device)
        synchronize(device)
        times.append(time.perf_counter() - started)
    return {"ct": f"{size} x {size} x {slices}", "cold_s": round(times[0], 3), "warm_s": round(min(times[1:]), 3)}


def everything_liver_cascade(network: torch.nn.Module, architecture: dict, params: PreprocessingParams,
                             tumor_pixel_mm: float) -> LoadedModel:
    """A cascade of random networks (the default tumor stage's preprocessing at ``tumor_pixel_mm``) whose liver
    stage calls every pixel liver: the most work a cascade does on a CT."""
    stage = TumorStageConfig()
    tumor_params = PreprocessingParams(input_size=stage.patch_size, pixel_size_mm=tumor_pixel_mm, liver_channel=True,
                                       equalization=stage.equalization or params.equalization)
    tumor_architecture = dict(architecture, in_channels=tumor_params.channels)
    with torch.no_grad():
        network.head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0]))
    card = {**new_card(architecture, params),
            "tumor_stage": tumor_stage_section(new_card(tumor_architecture, tumor_params), stage.box_margin_mm,
                                               tumors_beyond_liver=stage.tumor_dropout > 0, adds_liver=True)}
    return LoadedModel(network, card, None, build_network(tumor_architecture))


def autocast_agreement(device: torch.device, slices: int | None) -> dict:
    """Dice between the golden model's label maps on the fixture CT (its first ``slices``) with the predictor's
    bf16 autocast and its fp32 (``precision``), on CUDA, or on the CPU in the dry run."""
    model, ct = load_model(GOLDEN_MODEL, device=device), read_series(FIXTURE_CT)
    if slices is not None:
        ct = Volume(ct.array[:slices], ct.spacing, ct.origin, ct.direction)
    full = predictor.predict_volume(ct, model, device=device, precision="fp32").array
    mixed = predictor.predict_volume(ct, model, device=device, precision="bf16").array
    agreement = {}
    for name, value in (("liver", 1), ("tumor", 2)):
        a, b = mixed >= value, full >= value
        tp = int(np.count_nonzero(a & b))
        dice = overlap_metrics(tp, int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b)), 0)["dice"]
        agreement[name] = 1.0 if dice is None else round(dice, 5)
    return {"dice_mixed_vs_fp32": agreement, "voxels_differing": int(np.count_nonzero(mixed != full))}


def training_throughput(device: torch.device, size: int, batch: int, steps: int) -> dict:
    """Slices per second of training steps of the default network (after three warm-up steps)."""
    torch.manual_seed(0)
    architecture = default_architecture() if size >= 256 else dict(default_architecture(), depth=3, base_width=8)
    network = build_network(architecture).to(device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    loss_function = DiceCrossEntropyLoss()
    images = torch.rand(batch, architecture["in_channels"], size, size, device=device)
    labels = torch.randint(0, 3, (batch, size, size), device=device)
    mixed = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    elapsed = 0.0
    for step in range(steps + 3):
        synchronize(device)
        started = time.perf_counter()
        with mixed:
            loss = loss_function(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        if step >= 3:
            elapsed += time.perf_counter() - started
    return {"batch": f"{batch} x {size} x {size}", "slices_per_s": round(batch * steps / elapsed, 1)}


def torchrun_smoke(device: torch.device) -> dict:
    """One DDP process through torchrun on two tiny phantom patients; NCCL on CUDA, gloo on the CPU."""
    python = [sys.executable, "-m", "LiverResUNetLib"]
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        for arguments in (["phantom", "--out", work / "raw", "--patients", "2", "--size", "64", "--slices", "8"],
                          ["prepare", "--data", work / "raw" / "3Dircadb1", "--out", work / "data"]):
            subprocess.run([*python, *map(str, arguments)], check=True, capture_output=True)
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
        started = time.perf_counter()
        result = subprocess.run(
            [torchrun, "--standalone", "--nproc_per_node=1", "-m", "LiverResUNetLib", "train", "--data",
             str(work / "data"), "--out", str(work / "run"), "--val-fraction", "0", "--epochs", "1",
             "--steps-per-epoch", "3", "--batch-size", "4", "--device", device.type,
             "--set", "preprocessing.input_size=32", "--set", "network.depth=3", "--set", "network.base_width=8"],
            capture_output=True, text=True)
        seconds = time.perf_counter() - started
        model = work / "run" / "model.pth"
        # The backend the run's process group really used, as its model card records it.
        backend = read_card(model)["training"]["backend"] if model.is_file() else None
        return {"backend": backend, "exit_code": result.returncode, "model_written": model.is_file(),
                "seconds": round(seconds, 1), **({"stderr_tail": result.stderr[-800:]} if result.returncode else {})}


def main() -> int:
    args = parse_arguments()
    dry = args.cpu_dry_run
    if not dry and not torch.cuda.is_available():
        print("error: no CUDA device here; run with --cpu-dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    started = time.perf_counter()
    figures: dict[str, Any] = {
        "device": "cpu (dry run)" if dry else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "inference": inference_seconds(device, 64 if dry else 512, 6 if dry else 129),
        "inference_cascade": inference_seconds(device, 64 if dry else 512, 6 if dry else 129, cascade=True),
        "autocast": autocast_agreement(device, 3 if dry else None),
        "training": training_throughput(device, 32 if dry else 256, 4 if dry else 16, 2 if dry else 30),
        "torchrun": torchrun_smoke(device),
    }
    figures["total_s"] = round(time.perf_counter() - started, 1)
    checks = {"torchrun": figures["torchrun"]["exit_code"] == 0 and figures["torchrun"]["model_written"]
              and figures["torchrun"]["backend"] == ("gloo" if dry else "nccl")}
    if not dry:
        checks["autocast_agreement"] = min(figures["autocast"]["dice_mixed_vs_fp32"].values()) >= AGREEMENT_TARGET
        checks["inference_warm"] = figures["inference"]["warm_s"] <= WARM_SECONDS_TARGET
    figures["checks"] = checks
    print(json.dumps(figures, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
