"""Multi-process training with torch's own DDP, as launched by ``torchrun`` (one process per GPU or CPU slot).

``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs in one process and every
function here does nothing. Rank 0 is the only process that writes files and prints progress.
"""

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """Where this process stands among the training processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def start_distributed(device):
    """Join the process group that ``torchrun`` set up (gloo on CPU, nccl on CUDA); no-op for one process.

    With several processes on CUDA each one takes the GPU of its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=60))
    return DistributedContext(device, rank, world_size, local_rank)


def wrap_network(network, context):
    """The network wrapped in DistributedDataParallel when several processes train it."""
    if not context.enabled:
        return network
    ids = [context.device.index] if context.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids)


def wait_for_main(context):
    """Block until every process gets here (e.g. until rank 0 has written the files the others read)."""
    if context.enabled:
        dist.barrier()


def share_buffers_of_main(network, context):
    """Give every process rank 0's buffers (BatchNorm statistics), so all hold the very model rank 0 saves.

    DDP keeps parameters identical but each process updates its running statistics on its own batches.
    """
    if context.enabled:
        for buffer in network.buffers():
            dist.broadcast(buffer.data, src=0)


def sum_across_processes(values, context):
    """Element-wise sum of a float64 numpy array over all processes (identity for one process)."""
    if not context.enabled:
        return values
    tensor = torch.as_tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


def from_main(value, context):
    """Rank 0's ``value`` (a float, e.g. the share of the time limit used), the same in every process."""
    if not context.enabled:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=context.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def stop_distributed(context):
    """Leave the process group (after a final barrier so no process exits while others still talk)."""
    if context.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
