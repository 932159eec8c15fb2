"""The building blocks of training: patient-wise splits, balanced sampling, augmentation, loss, checkpoints."""

import math
import os
import pickle

import numpy as np
import pytest
import torch

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.training.augmentation import augment_batch, random_flip, random_intensity, random_rotate_scale
from LiverResUNetLib.training.batches import StepBatches, default_workers, step_seed
from LiverResUNetLib.training.checkpoints import load_checkpoint, save_checkpoint
from LiverResUNetLib.training.config import AugmentationConfig, SplitConfig
from LiverResUNetLib.training.loss import DiceCrossEntropyLoss
from LiverResUNetLib.training.sampling import (
    BACKGROUND_SLICE,
    LIVER_SLICE,
    TUMOR_SLICE,
    BalancedSliceSampler,
    SharedSliceSampler,
    lesion_slices,
    patch_corners,
    slice_categories,
)
from LiverResUNetLib.training.slices import SliceSet, case_slices, store_slices, write_slice_store
from LiverResUNetLib.training.splits import holdout_split, kfold_splits, make_splits

CASES = [f"3Dircadb1.{number}" for number in range(1, 21)]
TUMOR_FREE = {"3Dircadb1.5", "3Dircadb1.11", "3Dircadb1.14", "3Dircadb1.20"}
HAS_TUMOR = {case: case not in TUMOR_FREE for case in CASES}


def test_holdout_split_is_by_patient_seeded_and_spreads_tumor_free_cases():
    split = holdout_split(CASES, 0.2, seed=3, has_tumor=HAS_TUMOR)
    assert len(split.val) == 4 and len(split.train) == 16
    assert set(split.train).isdisjoint(split.val) and set(split.train) | set(split.val) == set(CASES)
    assert 1 <= len(TUMOR_FREE & set(split.val)) <= 2
    assert holdout_split(CASES, 0.2, seed=3, has_tumor=HAS_TUMOR) == split
    assert holdout_split(CASES, 0.2, seed=4, has_tumor=HAS_TUMOR).val != split.val
    assert "patient-wise" in split.method


def test_kfold_validates_every_patient_exactly_once():
    folds = kfold_splits(CASES, 4, seed=0, has_tumor=HAS_TUMOR)
    validated = [case for split in folds for case in split.val]
    assert sorted(validated) == sorted(CASES)
    for split in folds:
        assert set(split.train).isdisjoint(split.val)
        assert len(TUMOR_FREE & set(split.val)) == 1
    chosen = make_splits(CASES, SplitConfig(folds=4, fold=2), seed=0, has_tumor=HAS_TUMOR)
    assert chosen == [folds[2]] and chosen[0].fold == 2 and chosen[0].folds == 4


def test_val_fraction_0_trains_every_patient_even_one():
    split = make_splits(CASES, SplitConfig(val_fraction=0.0), seed=0, has_tumor=HAS_TUMOR)[0]
    assert split.train == sorted(CASES) and split.val == [] and 'fold "all"' in split.method
    assert holdout_split(["only.one"], 0.0, seed=0).train == ["only.one"]


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(InputError, match="at least 2"):
        holdout_split(["only.one"], 0.2, seed=0, source="/data/set")
    with pytest.raises(InputError, match="at least 5"):
        kfold_splits(CASES[:3], 5, seed=0)


def test_slice_categories():
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[1, 1, 1] = 1
    labels[2, 0, 0], labels[2, 3, 3] = 1, 2
    assert slice_categories(labels).tolist() == [BACKGROUND_SLICE, LIVER_SLICE, TUMOR_SLICE]


def test_sampler_draws_the_asked_shares_deterministically():
    categories = np.array([BACKGROUND_SLICE] * 90 + [LIVER_SLICE] * 8 + [TUMOR_SLICE] * 2)
    sampler = BalancedSliceSampler(categories, (0.2, 0.4, 0.4), seed=1)
    drawn = sampler.epoch_indices(epoch=0, count=5000)
    shares = np.bincount(categories[drawn], minlength=3) / len(drawn)
    assert np.allclose(shares, (0.2, 0.4, 0.4), atol=0.03)
    assert set(drawn[categories[drawn] == TUMOR_SLICE]) == {98, 99}
    assert np.array_equal(sampler.epoch_indices(0, 5000), drawn)
    assert not np.array_equal(sampler.epoch_indices(1, 5000), drawn)


def test_lesions_are_found_per_case_and_drawn_equally_often():
    labels = np.zeros((14, 8, 8), np.uint8)
    labels[0:10, 1:4, 1:4] = 2  # case a: a large lesion over ten slices...
    labels[4:6, 6, 6] = 2  # ...and a small one beside it, on two of them
    labels[11:13, 2, 2] = 2  # case b starts at slice 10; its lesion touches no slice of case a's
    case_of_slice = np.array([0] * 10 + [1] * 4)
    lesions = lesion_slices(labels, case_of_slice)
    assert sorted(map(list, lesions)) == [list(range(10)), [4, 5], [11, 12]]
    categories = slice_categories(labels)
    drawn = BalancedSliceSampler(categories, (0, 0, 1), seed=0, lesions=lesions).epoch_indices(0, 6000)
    small_lesion_share = np.isin(drawn, [11, 12]).mean()
    assert abs(small_lesion_share - 1 / 3) < 0.03  # uniform slices would give it 2/12
    uniform = BalancedSliceSampler(categories, (0, 0, 1), seed=0).epoch_indices(0, 6000)
    assert abs(np.isin(uniform, [11, 12]).mean() - 2 / 12) < 0.03


def test_sampler_skips_empty_categories():
    sampler = BalancedSliceSampler(np.array([BACKGROUND_SLICE, LIVER_SLICE]), (0.2, 0.4, 0.4), seed=0)
    assert np.allclose(sampler.probabilities, (1 / 3, 2 / 3, 0))


def test_distributed_processes_share_one_stream_without_overlap():
    categories = np.arange(60) % 3
    whole = BalancedSliceSampler(categories, (1, 1, 1), seed=5, rank=0, world_size=1).epoch_indices(2, 24)
    parts = [BalancedSliceSampler(categories, (1, 1, 1), seed=5, rank=rank, world_size=2).epoch_indices(2, 12)
             for rank in range(2)]
    assert np.array_equal(np.stack(parts, axis=1).reshape(-1), whole)


def test_shared_sampler_gives_each_group_its_share_and_keeps_lesions_in_their_group():
    """One real case (slices 0-9, a lesion on 8-9) beside many synthetic slices (10-99, a lesion on 50-51): the
    synthetic group fills its share of the draws whatever its size, and each group balances its own kinds."""
    labels = np.zeros((100, 4, 4), np.uint8)
    labels[2:10, 1, 1] = 1
    labels[8:10, 2, 2] = 2
    labels[20:90, 1, 1] = 1
    labels[50:52, 2, 2] = 2
    groups = np.array([0] * 10 + [1] * 90)
    lesions = lesion_slices(labels, groups)
    sampler = SharedSliceSampler(groups, (0.75, 0.25), slice_categories(labels), (0.2, 0.4, 0.4), seed=3,
                                 lesions=lesions)
    drawn = sampler.epoch_indices(epoch=0, count=8000)
    assert abs((groups[drawn] == 1).mean() - 0.25) < 0.02
    real = drawn[groups[drawn] == 0]
    assert np.allclose(np.bincount(slice_categories(labels[real]), minlength=3) / len(real), (0.2, 0.4, 0.4),
                       atol=0.03)
    assert set(drawn[slice_categories(labels[drawn]) == TUMOR_SLICE]) == {8, 9, 50, 51}
    assert np.array_equal(sampler.epoch_indices(0, 8000), drawn)
    parts = [SharedSliceSampler(groups, (0.75, 0.25), slice_categories(labels), (0.2, 0.4, 0.4), seed=3, rank=rank,
                                world_size=2, lesions=lesions).epoch_indices(0, 4000) for rank in range(2)]
    assert np.array_equal(np.stack(parts, axis=1).reshape(-1), drawn)


def test_patches_hold_the_slice_category_and_stay_inside():
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[1, 40:60, 2:20] = 1
    labels[2, 10:50, 10:50] = 1
    labels[2, 44:47, 45:48] = 2
    rng = np.random.default_rng(0)
    for _ in range(50):
        corners = patch_corners(labels, slice_categories(labels), 16, rng)
        assert ((corners >= 0) & (corners <= 48)).all()
        (_, _), (row, column), (tumor_row, tumor_column) = corners
        assert (labels[1, row:row + 16, column:column + 16] == 1).any()
        assert (labels[2, tumor_row:tumor_row + 16, tumor_column:tumor_column + 16] == 2).any()


def test_patches_visit_each_tumor_of_a_slice_whatever_its_size():
    labels = np.zeros((1, 64, 64), np.uint8)
    labels[0, 2:30, 2:30] = 2  # 784 pixels
    labels[0, 60, 60] = 2  # one pixel
    rng = np.random.default_rng(0)
    corners = np.concatenate([patch_corners(labels, [TUMOR_SLICE], 16, rng) for _ in range(400)])
    near_small_tumor = ((corners >= 44) & (corners <= 48)).all(axis=1).mean()
    assert 0.4 < near_small_tumor < 0.6


def test_slice_store_files_are_memory_mapped_and_hold_exactly_what_inference_sees(tiny_phantom_dataset, tmp_path):
    sources = discover_cases(tiny_phantom_dataset)[:2]
    params = PreprocessingParams(input_size=32)
    store = write_slice_store(sources, params, tmp_path / "store")
    assert store.case_ids == ["3Dircadb1.1", "3Dircadb1.2"]
    for position, source in enumerate(sources):
        images, labels = case_slices(source.load(), params)
        assert isinstance(store.images(position), np.memmap) and isinstance(store.labels(position), np.memmap)
        assert store.images(position).dtype == np.float16 and store.labels(position).dtype == np.uint8
        assert np.array_equal(store.images(position), images) and np.array_equal(store.labels(position), labels)
        assert store.counts[position] == len(images)
    # A store sent to a DataLoader worker carries its folder, not its arrays.
    assert len(pickle.dumps(store)) < 1000
    assert np.array_equal(pickle.loads(pickle.dumps(store)).labels(1), store.labels(1))


def test_slice_set_batches_stack_neighbours_and_cut_aligned_patches(tmp_path):
    position = np.arange(16 * 16).reshape(16, 16)  # a pixel's value says where it is (exact in float16)
    images = np.stack([position + 256 * k for k in range(3)]).astype(np.float16)
    labels = np.zeros((3, 16, 16), np.uint8)
    labels[:, 10:12, 10:12] = 2
    labels[1, 0:2, 0:2] = 1
    store = store_slices([("a", images[:2], labels[:2]), ("skipped", images, labels), ("b", images[2:], labels[2:])],
                         tmp_path / "store", {})
    slices = SliceSet(store, ["a", "b"], context_slices=1)
    assert len(slices) == 3 and slices.categories.tolist() == [TUMOR_SLICE] * 3
    assert [lesion.tolist() for lesion in slices.lesions()] == [[0, 1], [2]]
    whole_images, whole_labels = slices.batch([1, 2])
    assert whole_images.shape == (2, 3, 16, 16) and whole_labels.shape == (2, 16, 16)
    assert torch.equal(whole_images[0, 0], torch.from_numpy(images[0].astype(np.float32)))
    patch_images, patch_labels = slices.batch([1, 2], patch_size=8, rng=np.random.default_rng(3))
    assert patch_images.shape == (2, 3, 8, 8) and (patch_labels == 2).any(dim=(1, 2)).all()
    for index, image, label in zip([1, 2], patch_images, patch_labels):
        row, column = divmod(int(image[1, 0, 0]) - 256 * index, 16)
        assert torch.equal(label, torch.from_numpy(labels[index, row:row + 8, column:column + 8].astype(np.int64)))
        assert int(image[0, 0, 0]) == int(image[1, 0, 0]) - 256 * (index == 1)


def _batch():
    images = torch.zeros(2, 3, 32, 32)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    images[:, :, 8:20, 4:12] = 1.0
    labels[:, 8:20, 4:12] = 1
    labels[:, 10:14, 6:10] = 2
    return images, labels


def test_flip_moves_images_and_labels_together():
    images, labels = _batch()
    flipped_images, flipped_labels = random_flip(images, labels, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(flipped_labels, labels.flip(-1))
    assert torch.equal(flipped_images, images.flip(-1))


def test_rotation_keeps_labels_integral_and_aligned_with_the_image():
    images, labels = _batch()
    moved_images, moved_labels = random_rotate_scale(images, labels, 1.0, 30.0, (0.8, 1.25),
                                                     torch.Generator().manual_seed(1))
    assert moved_labels.dtype == torch.long and set(moved_labels.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(moved_labels, labels)
    inside = moved_images[:, 0] > 0.5
    assert ((moved_labels > 0) == inside).float().mean() > 0.97
    same_images, same_labels = random_rotate_scale(images, labels, 0.0, 30.0, (0.8, 1.25),
                                                   torch.Generator().manual_seed(1))
    assert torch.equal(same_labels, labels) and torch.equal(same_images, images)


def test_intensity_changes_images_only_within_bounds():
    images, _ = _batch()
    changed = random_intensity(images, 1.0, 0.2, 0.1, 0.0, torch.Generator().manual_seed(2))
    assert not torch.equal(changed, images)
    assert (changed - images).abs().max() <= 0.2 * 1.0 + 0.1 + 1e-6


def test_augmentation_depends_only_on_the_seed():
    images, labels = _batch()
    settings = AugmentationConfig(flip_probability=0.5)
    first = augment_batch(images, labels, settings, 9)
    again = augment_batch(images, labels, settings, 9)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    other = augment_batch(images, labels, settings, 10)
    assert not torch.equal(first[0], other[0])


def test_the_noise_is_drawn_on_the_batchs_device_from_its_own_generator():
    images, _ = _batch()
    noise = torch.Generator(device=images.device).manual_seed(4)
    noisy = random_intensity(images, 1.0, 0.0, 0.0, 0.5, torch.Generator().manual_seed(1), noise)
    same = random_intensity(images, 1.0, 0.0, 0.0, 0.5, torch.Generator().manual_seed(1),
                            torch.Generator().manual_seed(4))
    other = random_intensity(images, 1.0, 0.0, 0.0, 0.5, torch.Generator().manual_seed(1),
                             torch.Generator().manual_seed(5))
    assert torch.equal(noisy, same) and not torch.equal(noisy, other)


def test_loss_is_low_for_the_right_answer_and_high_for_the_wrong_one():
    _, labels = _batch()
    loss = DiceCrossEntropyLoss()
    right = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 20
    wrong = torch.nn.functional.one_hot((labels + 1) % 3, 3).permute(0, 3, 1, 2).float() * 20
    assert loss(right, labels).item() < 0.01
    assert loss(wrong, labels).item() > 1.0
    uniform = torch.zeros(2, 3, 32, 32, requires_grad=True)
    value = loss(uniform, labels)
    value.backward()
    assert math.isfinite(value.item()) and uniform.grad.abs().sum() > 0


def test_dice_term_rewards_finding_a_small_tumor():
    _, labels = _batch()
    logits = torch.nn.functional.one_hot(labels.clamp(max=1), 3).permute(0, 3, 1, 2).float() * 20
    dice_only = DiceCrossEntropyLoss(dice_weight=1.0, cross_entropy_weight=0.0)
    missed = dice_only(logits, labels).item()
    assert missed > 0.45


def test_checkpoint_round_trip_and_refusals(tmp_path):
    state = {"epoch": 3, "network": {"w": torch.arange(4.0)}, "history": [{"epoch": 0, "train_loss": 1.5}]}
    save_checkpoint(tmp_path / "checkpoint.pth", state)
    loaded = load_checkpoint(tmp_path / "checkpoint.pth")
    assert loaded["epoch"] == 3 and torch.equal(loaded["network"]["w"], torch.arange(4.0))
    assert loaded["history"] == state["history"]
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint.pth"]
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        load_checkpoint(tmp_path / "garbage.pth")
    torch.save({"format": "something else"}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="not a LiverResUNet"):
        load_checkpoint(tmp_path / "other.pth")


def test_step_batches_are_the_same_made_in_this_process_or_by_two_workers(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for name in ("a", "b", "c"):
        labels = np.zeros((6, 16, 16), np.uint8)
        labels[1:5, 4:12, 4:12] = 1
        labels[2:4, 6:9, 6:9] = 2
        cases.append((name, rng.random((6, 16, 16)).astype(np.float16), labels))
    slices = SliceSet(store_slices(cases, tmp_path / "store", {}), ["a", "c"], context_slices=1)
    sampler = BalancedSliceSampler(slices.categories, (0.2, 0.4, 0.4), seed=3)
    batches = StepBatches(slices, sampler, batch_size=4, steps_per_epoch=3, seed=3, rank=0, patch_size=8)
    keys = [(0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    here = list(batches.loader(keys, workers=0))
    made_by_workers = list(batches.loader(keys, workers=2))
    assert len(here) == len(made_by_workers) == 5
    for (images, labels), (other_images, other_labels) in zip(here, made_by_workers):
        assert images.shape == (4, 3, 8, 8) and labels.shape == (4, 8, 8)
        assert torch.equal(images, other_images) and torch.equal(labels, other_labels)
    # Item (1, 1) is the same batch whenever it is asked for (a resume starts the loader there).
    assert all(torch.equal(a, b) for a, b in zip(batches[1, 1], here[2]))
    assert not torch.equal(here[1][0], here[2][0])
    assert np.array_equal(slices.batch(sampler.epoch_indices(1, 12)[4:8], 8,
                                       np.random.default_rng(step_seed(3, 1, 1, 0)))[0], here[2][0])


def test_default_workers_leave_a_core_to_each_training_process(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_workers() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_workers() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert default_workers() == 0
