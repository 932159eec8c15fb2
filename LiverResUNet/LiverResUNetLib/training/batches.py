"""Training batches made ahead of the training step by DataLoader workers, identical whatever their number.

Item ``(epoch, step)`` of :class:`StepBatches` is the whole batch of that step: its slice indices come from the
epoch's draw of the sampler and its patches from the step's seed, so a batch depends only on
(seed, epoch, step, rank), never on which worker made it or when; a resumed run and a run with another number
of workers see the same batches. The workers read the memory-mapped slice store (each process maps the files
itself) and send finished CPU tensors; augmentation happens afterwards on the training device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from LiverResUNetLib.training.sampling import BalancedSliceSampler, SharedSliceSampler
from LiverResUNetLib.training.slices import SliceSet
from LiverResUNetLib.training.workers import loader_workers


def step_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """The seed of one step of one process: its patches and its augmentation."""
    return int(np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1)[0])


def default_workers() -> int:
    """Workers per training process when ``runtime.workers`` is null: up to 4, leaving a core to each process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(4, max(0, cpus // max(1, processes) - 1))


class StepBatches(torch.utils.data.Dataset):
    """The batch of each ``(epoch, step)``: ``(images [b, channels, p, p] float32, labels [b, p, p] int64)``.

    Args:
        slices: the training :class:`SliceSet`.
        sampler: the :class:`BalancedSliceSampler` (or :class:`SharedSliceSampler`) of this process.
        batch_size: slices per batch.
        steps_per_epoch: batches per epoch (the epoch's draw holds ``batch_size * steps_per_epoch`` indices).
        seed: the run's seed.
        rank: this process's rank.
        patch_size: see :meth:`SliceSet.batch`.
    """

    def __init__(self, slices: SliceSet, sampler: BalancedSliceSampler | SharedSliceSampler, batch_size: int,
                 steps_per_epoch: int,
                 seed: int, rank: int, patch_size: int | None = None) -> None:
        self.slices, self.sampler, self.patch_size = slices, sampler, patch_size
        self.batch_size, self.steps_per_epoch, self.seed, self.rank = batch_size, steps_per_epoch, seed, rank
        # The slice indices of the epoch drawn last, and that epoch.
        self._drawn_epoch: int | None = None
        self._drawn = np.zeros(0, dtype=np.int64)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, step = key
        if self._drawn_epoch != epoch:
            self._drawn_epoch = epoch
            self._drawn = self.sampler.epoch_indices(epoch, self.steps_per_epoch * self.batch_size)
        indices = self._drawn[step * self.batch_size:(step + 1) * self.batch_size]
        rng = np.random.default_rng(step_seed(self.seed, epoch, step, self.rank))
        return self.slices.batch(indices, self.patch_size, rng)

    def loader(self, keys: Sequence[tuple[int, int]], workers: int, pin_memory: bool = False
               ) -> torch.utils.data.DataLoader:
        """The batches of ``keys`` (``(epoch, step)`` pairs, in training order), made by ``workers`` processes
        (0: in this process) up to two batches ahead of each; inside Slicer too (``workers.loader_workers``)."""
        options = loader_workers(workers)
        return torch.utils.data.DataLoader(self, batch_size=None, sampler=keys, pin_memory=pin_memory,
                                           prefetch_factor=2 if options["num_workers"] else None, **options)
