"""One pass of CT slices through a network, shared by the liver stage (predictor.py) and a cascade's tumor stage
(cascade.py): the arithmetic, the batch sizes, the logits back to labels on a slice's own grid, the cancel check.
"""

from __future__ import annotations

import contextlib
import typing

from LiverResUNetLib.callbacks import CancelCheck
from LiverResUNetLib.errors import Cancelled, input_error
from LiverResUNetLib.preprocessing.geometry import SliceGrid, from_network

if typing.TYPE_CHECKING:
    import torch

# The network's arithmetic. auto: mixed precision on a GPU (bfloat16 where supported, else float16), float32 on
# the CPU; fp32: float32 everywhere; bf16: bfloat16 autocast on any device (e.g. to compare it with fp32).
PRECISIONS = ("auto", "fp32", "bf16")
# Slices per network call: enough to keep every core busy, small enough that a batch's float copies at
# 512 x 512 stay in the tens of megabytes.
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 64
# Liver and tumor logits relative to the background where the network did not look (a slice wider than its
# field of view): background, firmly.
_UNSEEN_LOGIT = -1000.0


def labels_on_grid(logits: torch.Tensor, grid: SliceGrid) -> torch.Tensor:
    """Argmax labels on the slice's grid of bilinearly resampled background / liver / tumor logits, as uint8.

    Resampling is linear, so the liver and tumor logits are first taken relative to the background:
    two maps to interpolate instead of three, and the argmax becomes two comparisons.
    """
    import torch

    logits = logits.float()
    relative = from_network(logits[:, 1:3] - logits[:, 0:1], grid, _UNSEEN_LOGIT)
    liver, tumor = relative[:, 0], relative[:, 1]
    is_tumor = (tumor > liver) & (tumor > 0)
    return torch.where(is_tumor, 2, (liver > 0).to(torch.uint8)).to(torch.uint8)


def autocast_for(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` (see :data:`PRECISIONS`) on ``device``; an unknown one is an InputError."""
    import torch

    if precision not in PRECISIONS:
        raise input_error(f"precision {precision!r}", f"unknown precision; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "mps":
        return torch.autocast("mps", dtype=torch.float16)
    return contextlib.nullcontext()


def check_cancel(cancel: CancelCheck | None) -> None:
    """Raise ``errors.Cancelled`` when ``cancel`` says so (asked between batches)."""
    if cancel is not None and cancel():
        raise Cancelled()
