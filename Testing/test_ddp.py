"""torchrun and DDP for real on gloo (two CPU processes, and one alone); SyncBatchNorm and the saved model."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.model.model_file import load_model, new_card, save_model
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.training.distributed import (
    DistributedContext,
    start_distributed,
    stop_distributed,
    sum_across_processes,
    synchronise_batchnorm,
    uses_sync_batchnorm,
    wrap_network,
)
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
    assert training["processes"] == 2 and training["backend"] == "gloo"
    assert [row["epoch"] for row in training["history"]] == [1, 2, 3]
    split = training["split"]
    assert len(split["val"]) == 2

    # The Dice the two processes agreed on (each validated one case) is the Dice one process finds alone.
    sources = {source.case_id: source for source in discover_cases(tiny_phantom_dataset)}
    cases = [(position, sources[case].load()) for position, case in enumerate(split["val"])]
    liver, tumor = validate(model.network, model.card, cases, DistributedContext(torch.device("cpu")), len(cases))
    assert liver > 0.2, "the two processes did not learn the liver"
    assert liver == model.card["metrics"]["val_liver_dice"]
    assert tumor == model.card["metrics"]["val_tumor_dice"]


def test_sync_batchnorm_only_when_several_processes_train_on_cuda():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert uses_sync_batchnorm(DistributedContext(cuda, world_size=2, backend="nccl"))
    assert not uses_sync_batchnorm(DistributedContext(cpu, world_size=2, backend="gloo")), "unsupported on gloo"
    assert not uses_sync_batchnorm(DistributedContext(cuda, world_size=1, backend="nccl")), "nothing to sync"
    assert not uses_sync_batchnorm(DistributedContext(cuda))


def test_a_model_saved_from_a_sync_batchnorm_network_is_the_plain_network(tmp_path):
    architecture = {**default_architecture(), "base_width": 8, "depth": 3}
    torch.manual_seed(0)
    network = synchronise_batchnorm(build_network(architecture),
                                    DistributedContext(torch.device("cuda", 0), world_size=2, backend="nccl"))
    synced = [module for module in network.modules() if isinstance(module, torch.nn.SyncBatchNorm)]
    assert synced, "the BatchNorm layers were not converted"
    for number, module in enumerate(synced):
        module.running_mean.fill_(0.1 * number)
    loaded = load_model(save_model(tmp_path / "model.pth", network,
                                   new_card(architecture, PreprocessingParams(input_size=32).to_dict())))
    assert not any(isinstance(module, torch.nn.SyncBatchNorm) for module in loaded.network.modules())
    assert sum(isinstance(module, torch.nn.BatchNorm2d) for module in loaded.network.modules()) == len(synced)
    for name, value in network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[name]), name
    plain = build_network(architecture)
    assert synchronise_batchnorm(plain, DistributedContext(torch.device("cpu"), world_size=2, backend="gloo")) \
        is plain and not any(isinstance(module, torch.nn.SyncBatchNorm) for module in plain.modules())


def test_torchruns_environment_joins_the_group_even_for_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert not start_distributed(torch.device("cpu")).enabled, "outside torchrun: one process, no group"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    context = start_distributed(torch.device("cpu"))
    try:
        assert context.enabled and context.backend == "gloo" and context.world_size == 1
        assert isinstance(wrap_network(torch.nn.Linear(2, 2), context), torch.nn.parallel.DistributedDataParallel)
        assert sum_across_processes(np.array([1.5, 2.0]), context).tolist() == [1.5, 2.0]
    finally:
        stop_distributed(context)
    assert not torch.distributed.is_initialized()
