"""Which slices go into each batch: tumor and liver slices are drawn far more often than their share.

In an abdominal CT most slices hold no liver and only a few hold tumor; drawing slices uniformly would
teach the network mostly "background". The sampler draws each batch element from a category (tumor,
liver without tumor, neither) with fixed probabilities, then a slice of that category. Tumor slices are
drawn lesion by lesion (a lesion uniformly, then one of its slices): a 40 mm tumor spans ten times the
slices of a 4 mm one, and drawing slices uniformly would leave the small lesions, the ones that are hard to
find, almost unseen. Optionally each slice is cut to a patch centred near one of its tumors or its liver
(nnU-Net's foreground over-sampling), so the rare tumor pixels fill a larger share of every batch for less
computation.

The draws of an epoch depend only on (seed, epoch), so a run resumed mid-epoch continues with exactly the
slices it would have seen, and every DDP process computes the same draws and keeps its own share of them
(the role ``DistributedSampler`` plays for a plain dataset).
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from LiverResUNetLib.components import label_components

BACKGROUND_SLICE, LIVER_SLICE, TUMOR_SLICE = 0, 1, 2


def slice_categories(labels: npt.ArrayLike) -> np.ndarray:
    """Category of each slice of a ``[n, rows, columns]`` label array: tumor if any 2, else liver if any 1."""
    array = np.asarray(labels)
    flat = array.reshape(array.shape[0], -1)
    categories = np.full(array.shape[0], BACKGROUND_SLICE, dtype=np.uint8)
    categories[(flat == 1).any(axis=1)] = LIVER_SLICE
    categories[(flat == 2).any(axis=1)] = TUMOR_SLICE
    return categories


def lesion_slices(labels: np.ndarray, case_of_slice: np.ndarray) -> list[np.ndarray]:
    """The slice indices of every tumor lesion (a 3D connected component of label 2 within one case).

    Args:
        labels: ``[n, rows, columns]`` label slices of several cases, stacked.
        case_of_slice: ``[n]`` which case each slice belongs to (a case's slices are consecutive).
    """
    lesions = []
    for case in np.unique(case_of_slice):
        first = int(np.flatnonzero(case_of_slice == case)[0])
        components, _ = label_components(labels[case_of_slice == case] == 2)
        # A connected lesion has voxels on every slice between its first and its last.
        lesions += [first + np.arange(extent[0].start, extent[0].stop) for extent in ndimage.find_objects(components)]
    return lesions


class BalancedSliceSampler:
    """Draws slice indices with a fixed share of tumor, liver and background slices.

    Args:
        categories: category of every slice (see :func:`slice_categories`).
        fractions: wanted shares of (background, liver, tumor) slices; categories with no slice are
            skipped and the other shares renormalised.
        seed: base seed; the draws of epoch ``e`` are a function of ``(seed, e)`` only.
        rank, world_size: this process's place among DDP processes; each keeps every ``world_size``-th draw.
        lesions: the slice indices of each tumor lesion (see :func:`lesion_slices`); tumor draws then pick
            a lesion uniformly, then one of its slices. None draws tumor slices uniformly.
    """

    def __init__(self, categories: npt.ArrayLike, fractions: Sequence[float], seed: int, rank: int = 0,
                 world_size: int = 1, lesions: Sequence[npt.ArrayLike] | None = None) -> None:
        category_of_slice = np.asarray(categories)
        self.members = [np.flatnonzero(category_of_slice == category) for category in
                        (BACKGROUND_SLICE, LIVER_SLICE, TUMOR_SLICE)]
        weights = np.array([share if len(members) else 0.0 for share, members in zip(fractions, self.members)],
                           dtype=float)
        if weights.sum() <= 0:
            weights = np.array([float(len(members) > 0) for members in self.members])
        if weights.sum() <= 0:
            raise ValueError("there are no slices to sample from")
        self.probabilities = weights / weights.sum()
        self.lesions = [np.asarray(slices) for slices in lesions or ()]
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)

    def epoch_indices(self, epoch: int, count: int) -> np.ndarray:
        """This process's ``count`` slice indices for ``epoch`` (all processes draw from one shared stream)."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        total = count * self.world_size
        chosen = rng.choice(3, size=total, p=self.probabilities)
        positions, within = rng.random(total), rng.random(total)
        indices = np.empty(total, dtype=np.int64)
        for category, members in enumerate(self.members):
            picked = np.flatnonzero(chosen == category)
            if category == TUMOR_SLICE and self.lesions:
                for draw in picked:
                    slices = self.lesions[int(positions[draw] * len(self.lesions))]
                    indices[draw] = slices[int(within[draw] * len(slices))]
            elif picked.size:
                indices[picked] = members[(positions[picked] * len(members)).astype(np.int64)]
        return indices[self.rank::self.world_size]


class SharedSliceSampler:
    """Draws a fixed share of every batch from each group of slices (e.g. real and synthetic CTs), each group with
    its own :class:`BalancedSliceSampler`: sixteen synthetic CTs beside one real one would otherwise fill sixteen
    seventeenths of every batch, and the network would learn the synthetic CTs rather than the real one.

    Args:
        groups: the group of every slice (0, 1, ...).
        shares: the wanted share of each group; groups without slices are skipped, the others renormalised.
        categories, fractions, seed, rank, world_size, lesions: as for :class:`BalancedSliceSampler`, over all
            slices; each lesion belongs to the group of its slices.
    """

    def __init__(self, groups: npt.ArrayLike, shares: Sequence[float], categories: npt.ArrayLike,
                 fractions: Sequence[float], seed: int, rank: int = 0, world_size: int = 1,
                 lesions: Sequence[npt.ArrayLike] | None = None) -> None:
        group_of_slice, category_of_slice = np.asarray(groups), np.asarray(categories)
        self.members = [np.flatnonzero(group_of_slice == group) for group in range(len(shares))]
        weights = np.array([share if len(members) else 0.0 for share, members in zip(shares, self.members)])
        if weights.sum() <= 0:
            raise ValueError("there are no slices to sample from")
        self.probabilities = weights / weights.sum()
        self.samplers = [
            BalancedSliceSampler(category_of_slice[members], fractions, seed + group,
                                 lesions=[np.searchsorted(members, slices) for slices in lesions or ()
                                          if group_of_slice[np.asarray(slices)[0]] == group] or None)
            if len(members) else None for group, members in enumerate(self.members)]
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)

    def epoch_indices(self, epoch: int, count: int) -> np.ndarray:
        """This process's ``count`` slice indices for ``epoch`` (all processes draw from one shared stream)."""
        total = count * self.world_size
        chosen = np.random.default_rng([self.seed, int(epoch), len(self.members)]).choice(
            len(self.members), size=total, p=self.probabilities)
        indices = np.empty(total, dtype=np.int64)
        for group, (members, sampler) in enumerate(zip(self.members, self.samplers)):
            picked = np.flatnonzero(chosen == group)
            if sampler is not None and picked.size:
                indices[picked] = members[sampler.epoch_indices(epoch, picked.size)]
        return indices[self.rank::self.world_size]


def patch_corners(labels: np.ndarray, categories: np.ndarray, patch_size: int, rng: np.random.Generator
                  ) -> np.ndarray:
    """Top-left corners ``[n, 2]`` of ``patch_size`` patches around each slice's tumor / liver / anywhere.

    The patch centre is a random pixel of the slice's category (of one tumor, picked uniformly among the
    slice's tumors, for tumor slices; of the liver for liver slices; any pixel otherwise) moved by up to a
    quarter patch, then the patch is kept inside the slice.

    Args:
        labels: ``[n, size, size]`` label slices.
        categories: the category of each slice.
        patch_size: side of the square patch, at most ``size``.
        rng: a ``numpy.random.Generator``.
    """
    size = labels.shape[-1]
    corners = np.empty((len(labels), 2), dtype=np.int64)
    for number, (label, category) in enumerate(zip(labels, categories)):
        if category == TUMOR_SLICE:
            tumors, count = label_components(label == 2)
            candidates = np.flatnonzero(tumors == rng.integers(1, count + 1))
        elif category == LIVER_SLICE:
            candidates = np.flatnonzero(label > 0)
        else:
            candidates = np.arange(label.size)
        centre = np.array(np.unravel_index(candidates[rng.integers(len(candidates))], label.shape))
        centre += rng.integers(-(patch_size // 4), patch_size // 4 + 1, size=2)
        corners[number] = np.clip(centre - patch_size // 2, 0, size - patch_size)
    return corners
