"""Multi-process training with torch's own DDP, as launched by ``torchrun`` (one process per GPU or CPU slot).

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; with them the process joins the process group, even alone
(WORLD_SIZE=1: DDP and its all-reduces run for real, e.g. a 1-process NCCL smoke run); without them training
runs in one process and every function here does nothing. Rank 0 is the only process that writes files and
prints progress.
"""

import datetime
import os
import typing
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """Where this process stands among the training processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: typing.Optional[str] = None

    @property
    def enabled(self) -> bool:
        """True in a process group (launched by torchrun), whatever its size."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that ``torchrun`` set up (gloo on CPU, nccl on CUDA) whenever its environment
    (RANK and WORLD_SIZE) is present, also for one process; outside torchrun a plain single-process context.

    Each process on CUDA takes the GPU of its LOCAL_RANK.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext(device)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=60))
    return DistributedContext(device, rank, world_size, local_rank, dist.get_backend())


def uses_sync_batchnorm(context: DistributedContext) -> bool:
    """Whether BatchNorm should normalise over the global batch of every process (SyncBatchNorm).

    Only when several processes train on CUDA: torch's SyncBatchNorm runs on GPUs only (not on the CPU with
    gloo), so there each process keeps plain BatchNorm over its own batch; one process has nothing to sync.
    """
    return context.world_size > 1 and context.device.type == "cuda"


def synchronise_batchnorm(network: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """``network`` with its BatchNorm layers made SyncBatchNorm where :func:`uses_sync_batchnorm` says so.

    The layers keep their parameters and state-dict keys, so the model file written from the converted network
    is the plain network's, which inference loads.
    """
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(network) if uses_sync_batchnorm(context) else network


def wrap_network(network: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """The network wrapped in DistributedDataParallel in a process group (even of one process)."""
    if not context.enabled:
        return network
    ids = [context.device.index] if context.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids)


def wait_for_main(context: DistributedContext) -> None:
    """Block until every process gets here (e.g. until rank 0 has written the files the others read)."""
    if context.enabled:
        dist.barrier()


def share_buffers_of_main(network: torch.nn.Module, context: DistributedContext) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics), so all hold the very model rank 0 saves.

    DDP keeps parameters identical but each process updates its running statistics on its own batches.
    """
    if context.enabled:
        for buffer in network.buffers():
            dist.broadcast(buffer.data, src=0)


def sum_across_processes(values: np.ndarray, context: DistributedContext) -> np.ndarray:
    """Element-wise sum of a float64 numpy array over all processes (identity for one process)."""
    if not context.enabled:
        return values
    tensor = torch.as_tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def from_main(value: float, context: DistributedContext) -> float:
    """Rank 0's ``value`` (a float, e.g. the share of the time limit used), the same in every process."""
    if not context.enabled:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=context.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def stop_distributed(context: DistributedContext) -> None:
    """Leave the process group (after a final barrier so no process exits while others still talk)."""
    if context.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
