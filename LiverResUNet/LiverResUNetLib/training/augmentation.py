"""Random changes to training slices, applied to a whole batch at once on the training device.

Each transform has one job (flip; rotation + scaling; contrast phase; intensity) and takes an explicit
``torch.Generator`` so that a batch's augmentation depends only on the step's seed: a resumed run sees exactly the
batches the interrupted one would have seen. The few per-sample parameters are drawn on the CPU; the work on pixels,
and the one per-pixel draw (the noise, from a generator on the batch's device), happen where the batch is, so on a
GPU no step waits for the CPU. Geometry moves images and labels together (labels with nearest-neighbour sampling, so
they stay 0/1/2); intensity changes touch the images only.
"""

from __future__ import annotations

import math
import typing

import torch
import torch.nn.functional as F

if typing.TYPE_CHECKING:
    from LiverResUNetLib.training.config import AugmentationConfig


def random_flip(images: torch.Tensor, labels: torch.Tensor, probability: float, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left-right the samples picked with ``probability``.

    Args:
        images: ``[batch, channels, rows, columns]`` float tensor.
        labels: ``[batch, rows, columns]`` integer tensor.
        probability: chance that a sample is flipped.
        generator: the source of randomness (on the CPU).
    """
    flip = torch.rand(images.shape[0], generator=generator) < probability
    if not flip.any():
        return images, labels
    flip = flip.to(images.device)
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
    return images, labels


def random_rotate_scale(images: torch.Tensor, labels: torch.Tensor, probability: float, max_degrees: float,
                        scale_range: tuple[float, float], generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate by up to ``max_degrees`` and zoom by a factor in ``scale_range`` about the slice centre.

    Pixels brought in from outside the slice copy the border (air in CT), labels outside are background.

    Args:
        images: ``[batch, channels, rows, columns]`` float tensor.
        labels: ``[batch, rows, columns]`` integer tensor.
        probability: chance that a sample is transformed.
        max_degrees: largest rotation either way, in degrees.
        scale_range: ``(smallest, largest)`` zoom factor; > 1 enlarges the anatomy.
        generator: the source of randomness (on the CPU).
    """
    batch = images.shape[0]
    chosen = torch.rand(batch, generator=generator) < probability
    angles = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(max_degrees)
    low, high = scale_range
    log_scales = math.log(low) + torch.rand(batch, generator=generator) * (math.log(high) - math.log(low))
    angles = torch.where(chosen, angles, torch.zeros_like(angles))
    scales = torch.where(chosen, log_scales.exp(), torch.ones_like(log_scales))
    if not chosen.any():
        return images, labels
    cos, sin = torch.cos(angles) / scales, torch.sin(angles) / scales
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    labels = F.grid_sample(labels[:, None].to(images.dtype), grid, mode="nearest", padding_mode="zeros",
                           align_corners=False)[:, 0].round().to(torch.long)
    return images, labels


def random_intensity(images: torch.Tensor, probability: float, contrast: float, brightness: float, noise_std: float,
                     generator: torch.Generator, noise_generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale contrast about each sample's mean, shift brightness, add Gaussian noise.

    Args:
        images: ``[batch, channels, rows, columns]`` float tensor (the preprocessed intensities).
        probability: chance that a sample is changed.
        contrast: largest relative contrast change (0.15: factor in [0.85, 1.15]).
        brightness: largest shift, in preprocessed intensity units.
        noise_std: largest standard deviation of the added noise.
        generator: the source of the per-sample parameters (on the CPU).
        noise_generator: the source of the noise, on the images' device (None: ``generator``, images on the CPU).
    """
    batch = images.shape[0]
    chosen = (torch.rand(batch, generator=generator) < probability).to(images.dtype)
    factor = 1 + (torch.rand(batch, generator=generator) * 2 - 1) * contrast * chosen
    shift = (torch.rand(batch, generator=generator) * 2 - 1) * brightness * chosen
    sigma = torch.rand(batch, generator=generator) * noise_std * chosen
    noise = torch.randn(images.shape, generator=noise_generator or generator, device=images.device,
                        dtype=images.dtype)
    view = (batch, 1, 1, 1)
    factor, shift, sigma = (value.view(view).to(images.device, images.dtype) for value in (factor, shift, sigma))
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * factor + mean + shift + sigma * noise


def random_contrast_phase(images: torch.Tensor, labels: torch.Tensor, probability: float, liver_shift: float,
                          tumor_shift: float, channels: int, generator: torch.Generator) -> torch.Tensor:
    """Mimic another contrast phase: move the liver's intensities (labels 1 and 2), and the tumors' on top of that,
    relative to the rest of the slice, by amounts drawn per sample.

    Slices are stored already windowed and equalised, so the change cannot be made in HU: it is an offset in the
    network's input units, applied where the labels are (the only structures a training case names: vessels are not
    known, so they keep their intensity; the sample's labels stand for its neighbour slices too). Each mask's edge
    is softened over a few pixels, as enhancement fades across an organ's edge, and values stay in [0, 1].

    Args:
        images: ``[batch, channels, rows, columns]`` float tensor (the preprocessed intensities).
        labels: ``[batch, rows, columns]`` integer tensor (after the geometric transforms).
        probability: chance that a sample is changed; 0 draws nothing (the other transforms' draws stay the same).
        liver_shift: largest shift of the liver either way.
        tumor_shift: largest further shift of the tumors either way (tumor to liver contrast changes with the phase).
        channels: how many leading channels are CT slices (a tumor stage's liver-mask channel is left alone).
        generator: the source of the per-sample parameters (on the CPU).
    """
    if probability <= 0:
        return images
    batch = images.shape[0]
    chosen = torch.rand(batch, generator=generator) < probability
    liver = (torch.rand(batch, generator=generator) * 2 - 1) * liver_shift
    tumor = (torch.rand(batch, generator=generator) * 2 - 1) * tumor_shift
    if not chosen.any():
        return images
    view = (batch, 1, 1, 1)
    liver, tumor = (value.view(view).to(images.device, images.dtype) for value in (liver, tumor))
    masks = torch.stack([labels > 0, labels == 2], dim=1).to(images.dtype)
    soft = F.avg_pool2d(masks, kernel_size=5, stride=1, padding=2, count_include_pad=False)
    change = liver * soft[:, :1] + tumor * soft[:, 1:]
    slices = images[:, :channels]
    changed = torch.where(chosen.to(images.device).view(view), (slices + change).clamp(0.0, 1.0), slices)
    return torch.cat([changed, images[:, channels:]], dim=1)


def augment_batch(images: torch.Tensor, labels: torch.Tensor, settings: AugmentationConfig, seed: int,
                  slice_channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply every transform of an ``AugmentationConfig`` to a batch, on its device; returns new ``(images, labels)``.

    Everything random follows from ``seed``: the parameters from a CPU generator, the noise from a generator
    on the batch's device seeded from the first. ``slice_channels``: how many leading channels are CT slices (the
    intensity changes leave the others, a tumor stage's liver mask, alone: inference feeds that mask as it is;
    None: all).
    """
    generator = torch.Generator().manual_seed(seed)
    noise_seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    noise_generator = torch.Generator(device=images.device).manual_seed(noise_seed)
    images, labels = random_flip(images, labels, settings.flip_probability, generator)
    images, labels = random_rotate_scale(images, labels, settings.probability, settings.rotation_degrees,
                                         (settings.scale_min, settings.scale_max), generator)
    channels = slice_channels or images.shape[1]
    images = random_contrast_phase(images, labels, settings.phase_probability, settings.phase_liver_shift,
                                   settings.phase_tumor_shift, channels, generator)
    slices = random_intensity(images[:, :channels], settings.probability, settings.contrast, settings.brightness,
                              settings.noise_std, generator, noise_generator)
    return torch.cat([slices, images[:, channels:]], dim=1), labels
