"""Where the network runs: the device names the commands and the Slicer module offer, and the torch device each
one means here.

Named once for inference, training, evaluation and every command's ``--device``; the names need no torch, so
a command's ``--help`` stays instant, and torch is imported only when a device is picked.
"""

from __future__ import annotations

import typing

from LiverResUNetLib.errors import input_error

if typing.TYPE_CHECKING:
    import torch

#: The device names; ``cuda:N`` is accepted too. "auto" takes CUDA, then Apple's MPS, then the CPU.
DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device to run on: "auto" takes cuda, then mps, then cpu; an unavailable one is an InputError."""
    import torch

    if isinstance(name, torch.device):
        return name
    name = str(name or "auto").lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise input_error(f"device {name!r}", f"unknown device; choose one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name.startswith("cuda") and not cuda:
        raise input_error(f"device {name!r}", "CUDA is not available here (no NVIDIA GPU or a CPU-only torch)")
    if name == "mps" and not mps:
        raise input_error(f"device {name!r}", "Apple's MPS is not available here")
    return torch.device(name)
