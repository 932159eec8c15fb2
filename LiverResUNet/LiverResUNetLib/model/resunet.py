"""The 2D residual U-Net that labels each axial slice background / liver / liver tumor.

A U-Net (Ronneberger 2015) whose encoder and decoder are made of pre-activation residual units
(He 2016; the ResUNet of Zhang 2018): each unit is BN-ReLU-conv3x3 twice plus an identity shortcut,
or a 1x1 projection when the width or the resolution changes. Every resolution level has a skip
connection from the encoder to the decoder. The input is one slice, or 2.5D: the slice and its
neighbours as channels.

The defaults are chosen for CPU speed as much as accuracy (see benchmarks/RESULTS.md): the first
convolution halves the resolution (``stem_stride=2``), so the costly full-resolution level holds only
that convolution and the final upsampling, while every skip, the bottleneck and the decoder run at
half resolution and below. Logits come back at the input's size.
"""

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional

ARCHITECTURE_NAME = "ResUNet"


def default_architecture() -> dict[str, Any]:
    """The architecture the project trains and ships: 5 input slices (2.5D: a slice and two neighbours on each
    side), 5 levels, widths 8..128 (half the width of the first models: twice the steps in the same CPU minutes, and
    better on unseen real CT)."""
    return {
        "name": ARCHITECTURE_NAME,
        "in_channels": 5,
        "num_classes": 3,
        "base_width": 8,
        "depth": 5,
        "max_width": 256,
        "stem_stride": 2,
    }


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: ``x + conv(relu(bn(conv(relu(bn(x))))))``, projected when shapes change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels == out_channels and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(functional.relu(self.norm1(x), inplace=True))
        y = self.conv2(functional.relu(self.norm2(y), inplace=True))
        return y + self.shortcut(x)


class ResUNet(nn.Module):
    """2D residual U-Net returning per-pixel class logits ``[batch, num_classes, height, width]``.

    Args:
        in_channels: input slices per prediction (1, or ``2 * context + 1`` for 2.5D).
        num_classes: output classes (background, liver, tumor).
        base_width: feature channels at the first level; each deeper level doubles it.
        depth: number of resolution levels (the encoder halves the resolution ``depth - 1`` times).
        max_width: cap on the number of channels of the deepest levels.
        stem_stride: 1 keeps the first level at the input resolution; 2 starts at half resolution
            (about 4x cheaper) and upsamples the logits back with a learned transposed convolution.
    """

    def __init__(self, in_channels: int, num_classes: int = 3, base_width: int = 16, depth: int = 5,
                 max_width: int = 256, stem_stride: int = 2) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        widths = [min(base_width * 2 ** level, max_width) for level in range(depth)]
        self.size_multiple = stem_stride * 2 ** (depth - 1)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=False)
        self.encoder = nn.ModuleList(
            [ResidualUnit(widths[0], widths[0])]
            + [ResidualUnit(widths[level - 1], widths[level], stride=2) for level in range(1, depth)])
        self.upsample = nn.ModuleList(
            [nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2) for level in range(depth - 1)])
        self.decoder = nn.ModuleList(
            [ResidualUnit(2 * widths[level], widths[level]) for level in range(depth - 1)])
        self.head_norm = nn.BatchNorm2d(widths[0])
        if stem_stride == 2:
            self.head: nn.Module = nn.ConvTranspose2d(widths[0], num_classes, 2, stride=2)
        else:
            self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(f"input height and width must be multiples of {self.size_multiple}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        y = self.stem(x)
        for unit in self.encoder:
            y = unit(y)
            skips.append(y)
        y = skips.pop()
        for level in reversed(range(len(self.decoder))):
            y = self.decoder[level](torch.cat([self.upsample[level](y), skips[level]], dim=1))
        return self.head(functional.relu(self.head_norm(y), inplace=True))


def build_network(architecture: Mapping[str, Any]) -> ResUNet:
    """The :class:`ResUNet` an architecture dict (as in a model card) describes; ValueError on an unknown one."""
    arguments = dict(architecture)
    name = arguments.pop("name", ARCHITECTURE_NAME)
    if name != ARCHITECTURE_NAME:
        raise ValueError(f"unknown architecture {name!r} (this version builds {ARCHITECTURE_NAME!r})")
    return ResUNet(**arguments)
