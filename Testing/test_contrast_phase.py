"""Contrast-phase augmentation: the liver's and the tumors' intensities moved relative to the rest of the slice."""

import torch

from LiverResUNetLib.training.augmentation import augment_batch, random_contrast_phase
from LiverResUNetLib.training.config import AugmentationConfig


def _batch(samples=6, size=40):
    """Slices of three channels (two CT slices and a liver mask) with a liver square holding a tumor square."""
    labels = torch.zeros(samples, size, size, dtype=torch.long)
    labels[:, 8:32, 8:32] = 1
    labels[:, 16:24, 16:24] = 2
    images = torch.full((samples, 3, size, size), 0.2)
    images[:, :2][(labels > 0)[:, None].expand(-1, 2, -1, -1)] = 0.6
    images[:, 2] = (labels > 0).float()
    return images, labels


def test_the_liver_and_its_tumors_move_by_their_own_shift_and_nothing_else_does():
    images, labels = _batch()
    changed = random_contrast_phase(images, labels, 1.0, 0.2, 0.15, 2, torch.Generator().manual_seed(0))
    difference = changed - images
    liver_inside, tumor_inside = difference[:, :2, 10, 10], difference[:, :2, 20, 20]
    assert torch.allclose(liver_inside[:, 0], liver_inside[:, 1])  # both CT slices of a sample alike
    assert (liver_inside.abs() <= 0.2 + 1e-6).all() and liver_inside.abs().max() > 0.05
    assert len({round(float(value), 4) for value in liver_inside[:, 0]}) == len(images)  # a shift per sample
    assert ((tumor_inside - liver_inside).abs() <= 0.15 + 1e-6).all()
    assert not torch.allclose(tumor_inside, liver_inside)  # the tumor's contrast to the liver changes too
    assert torch.equal(difference[:, :2, :4], torch.zeros_like(difference[:, :2, :4]))  # far from the liver
    assert torch.equal(changed[:, 2], images[:, 2])  # the liver-mask channel is not an intensity
    assert changed.min() >= 0.0 and changed.max() <= 1.0
    edge = difference[:, 0, 20, 6:11]  # the shift fades in over the liver's edge (columns 6-10, liver from 8)
    assert (edge[:, 0].abs() < edge[:, -1].abs()).all()


def test_the_phase_is_off_by_default_and_draws_nothing_then():
    images, labels = _batch()
    settings = AugmentationConfig()
    assert settings.phase_probability == 0.0
    generator = torch.Generator().manual_seed(3)
    assert random_contrast_phase(images, labels, 0.0, 0.2, 0.2, 2, generator) is images
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(3).get_state())
    on = AugmentationConfig(phase_probability=1.0, phase_liver_shift=0.3)
    first, again = augment_batch(images, labels, on, 5, slice_channels=2), augment_batch(images, labels, on, 5, 2)
    assert torch.equal(first[0], again[0])
    off = augment_batch(images, labels, settings, 5, slice_channels=2)
    assert not torch.equal(first[0], off[0])


def test_intensity_augmentation_changes_the_ct_slices_and_never_the_liver_mask_channel():
    images, labels = _batch()
    settings = AugmentationConfig(probability=1.0, rotation_degrees=0.0, scale_min=1.0, scale_max=1.0,
                                  flip_probability=0.0, contrast=0.3, brightness=0.2, noise_std=0.05)
    changed, _ = augment_batch(images, labels, settings, 11, slice_channels=2)
    assert not torch.allclose(changed[:, :2], images[:, :2], atol=1e-3)
    assert torch.allclose(changed[:, 2], images[:, 2], atol=1e-5)  # still the 0/1 mask that inference gives
