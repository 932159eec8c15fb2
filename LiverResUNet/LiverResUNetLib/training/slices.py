"""Training slices on disk: each case preprocessed once into memory-mapped files (float16 images, uint8 labels).

Each case goes through the same steps as inference: canonical axial orientation, then THE preprocessing
function (window, equalisation, resize). Labels take the same orientation and the same resize with
nearest-neighbour sampling. The arrays are written to a store folder one case at a time and read back
memory-mapped, so the training process's own (anonymous) memory does not grow with the number of cases: the
slices live in the page cache, shared by every DDP process and DataLoader worker, and an epoch only indexes
them (no CT is read or preprocessed again).
"""

from __future__ import annotations

import json
import shutil
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams, preprocess_slices, resize_labels
from LiverResUNetLib.preprocessing.orientation import to_canonical
from LiverResUNetLib.training.sampling import TUMOR_SLICE, lesion_slices, patch_corners, slice_categories
from LiverResUNetLib.volume import TUMOR

if typing.TYPE_CHECKING:
    from LiverResUNetLib.datasets.cases import Case, CaseSource

MANIFEST = "manifest.json"


def case_slices(case: Case, params: PreprocessingParams) -> tuple[np.ndarray, np.ndarray]:
    """``(images float16 [n, size, size], labels uint8 [n, size, size])`` of one case, exactly as inference sees it."""
    image = to_canonical(case.image)
    images = preprocess_slices(image.array, params, image.pixel_spacing).astype(np.float16)
    labels = resize_labels(to_canonical(case.label).array, params, image.pixel_spacing).astype(np.uint8)
    return images, labels


@dataclass
class SliceStore:
    """The preprocessed slices of every case of a dataset, one pair of ``.npy`` files per case in ``folder``.

    The arrays are opened memory-mapped on first use in each process (a store sent to a spawned DataLoader
    worker carries its folder, not its arrays).
    """

    folder: Path
    case_ids: list[str]
    counts: list[int]
    _arrays: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, folder: str | Path) -> SliceStore:
        """The store written by :func:`write_slice_store` in ``folder``."""
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
        return cls(Path(folder), [case["case_id"] for case in manifest["cases"]],
                   [case["slices"] for case in manifest["cases"]])

    def images(self, position: int) -> np.ndarray:
        """The ``[n, size, size]`` float16 images of the case at ``position``, memory-mapped read-only."""
        return self._array(position, "images")

    def labels(self, position: int) -> np.ndarray:
        """The ``[n, size, size]`` uint8 labels of the case at ``position``, memory-mapped read-only."""
        return self._array(position, "labels")

    def has_tumor(self, position: int) -> bool:
        return bool((self.labels(position) == 2).any())

    def _array(self, position: int, kind: str) -> np.ndarray:
        key = (position, kind)
        if key not in self._arrays:
            self._arrays[key] = np.load(self.folder / f"{position}.{kind}.npy", mmap_mode="r")
        return self._arrays[key]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": {}}


def write_slice_store(sources: Sequence[CaseSource], params: PreprocessingParams, folder: str | Path,
                      progress: Progress | None = None) -> SliceStore:
    """Preprocess every case of ``sources`` (``CaseSource`` list) into a new store in ``folder``; returns it.

    Cases are read and preprocessed one at a time, so memory holds one case at most.
    """
    def cases() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for position, source in enumerate(sources):
            if progress:
                progress(0.0, f"preparing slices of {source.case_id} ({position + 1}/{len(sources)})")
            yield (source.case_id, *case_slices(source.load(), params))

    return store_slices(cases(), folder, params.to_dict())


def store_slices(cases: Iterable[tuple[str, np.ndarray, np.ndarray]], folder: str | Path,
                 preprocessing: dict[str, Any]) -> SliceStore:
    """Write ``(case_id, images, labels)`` triples, one at a time, into a new store in ``folder``; returns it.

    ``folder`` is emptied first; the manifest (with the ``preprocessing`` dict) is written last, so a store cut
    short by a crash is never opened.
    """
    store = Path(folder)
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    written = []
    for position, (case_id, images, labels) in enumerate(cases):
        np.save(store / f"{position}.images.npy", np.asarray(images, dtype=np.float16))
        np.save(store / f"{position}.labels.npy", np.asarray(labels, dtype=np.uint8))
        written.append({"case_id": case_id, "slices": len(images)})
    with atomic_path(store / MANIFEST) as temporary:
        temporary.write_text(json.dumps({"preprocessing": preprocessing, "cases": written}, indent=1))
    return SliceStore.open(store)


def jittered_livers(labels: np.ndarray, jitter: int, rng: np.random.Generator,
                    tumor_dropout: float = 0.0) -> np.ndarray:
    """float32 liver masks (labels 1 and 2) of ``[n, rows, columns]`` label slices, each grown (dilated) or
    shrunk (eroded) by a random number of pixels in ``[-jitter, jitter]``; with probability ``tumor_dropout`` a
    slice's mask leaves its tumors out, as a liver stage does that takes a large dark tumor for background."""
    from scipy import ndimage

    labels = np.asarray(labels)
    masks = labels > 0
    if tumor_dropout:
        dropped = rng.random(len(masks)) < tumor_dropout
        masks[dropped] &= labels[dropped] != TUMOR
    shifts = rng.integers(-jitter, jitter + 1, size=len(masks)) if jitter else np.zeros(len(masks), dtype=int)
    for number, shift in enumerate(shifts):
        if shift > 0:
            masks[number] = ndimage.binary_dilation(masks[number], iterations=int(shift))
        elif shift < 0:
            masks[number] = ndimage.binary_erosion(masks[number], iterations=int(-shift))
    return masks.astype(np.float32)


class SliceSet:
    """The slices of some cases of a :class:`SliceStore` (a training split), indexed ``0..n-1`` case by case.

    Only small per-slice bookkeeping is held in memory: the case and position of every slice and its
    category; the pixels stay in the store's files.

    Args:
        store: the :class:`SliceStore`.
        case_ids: the cases of this set, in order.
        context_slices: neighbours on each side stacked as extra channels (clamped at each case's ends).
        liver_jitter: None, or (a cascade's tumor stage) the liver mask of each slice (its labels 1 and 2) is one
            more channel, grown or shrunk by a random number of pixels up to this, as the liver stage errs.
        tumor_dropout: with a liver channel, the share of slices whose liver mask leaves the tumors out.
    """

    def __init__(self, store: SliceStore, case_ids: Iterable[str], context_slices: int,
                 liver_jitter: int | None = None, tumor_dropout: float = 0.0) -> None:
        self.store, self.case_ids, self.liver_jitter = store, list(case_ids), liver_jitter
        self.tumor_dropout = tumor_dropout
        self.positions = [store.case_ids.index(case) for case in self.case_ids]
        counts = [store.counts[position] for position in self.positions]
        self.starts = np.cumsum([0] + counts[:-1]).astype(np.int64)
        self.case_of_slice = np.repeat(np.arange(len(counts)), counts)
        self.slice_in_case = np.concatenate([np.arange(count) for count in counts]) if counts else np.zeros(0, int)
        self.offsets = np.arange(-context_slices, context_slices + 1)
        self.categories = np.concatenate([slice_categories(store.labels(position)) for position in self.positions])

    def __len__(self) -> int:
        return len(self.case_of_slice)

    def lesions(self) -> list[np.ndarray]:
        """The slice indices of every tumor lesion of the set (see :func:`lesion_slices`), case by case."""
        lesions = []
        for number, position in enumerate(self.positions):
            if (self.categories[self.case_of_slice == number] == TUMOR_SLICE).any():
                labels = np.asarray(self.store.labels(position))
                found = lesion_slices(labels, np.zeros(len(labels), dtype=np.int64))
                lesions += [self.starts[number] + slices for slices in found]
        return lesions

    def batch(self, indices: npt.ArrayLike, patch_size: int | None = None, rng: np.random.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images [b, channels, p, p] float32, labels [b, p, p] int64)`` for slice ``indices``.

        ``p`` is the whole slice, or ``patch_size`` with patches placed by :func:`patch_corners` from ``rng``
        (cases whose slices differ in size, as a tumor stage's liver boxes do, need a ``patch_size``).
        """
        image_list, label_list = [], []
        for index in np.asarray(indices):
            number, within = self.case_of_slice[index], self.slice_in_case[index]
            position = self.positions[number]
            channels = np.clip(within + self.offsets, 0, self.store.counts[position] - 1)
            image, label = self.store.images(position)[channels], self.store.labels(position)[within]
            if patch_size is not None and patch_size < label.shape[-1]:
                if rng is None:
                    raise ValueError("patches are placed at random: batch() needs an rng with a patch_size")
                # One slice at a time: the draws are those of all the slices at once, in the same order.
                row, column = patch_corners(label[None], slice_categories(label[None]), patch_size, rng)[0]
                image = image[:, row:row + patch_size, column:column + patch_size]
                label = label[row:row + patch_size, column:column + patch_size]
            image_list.append(image)
            label_list.append(label)
        images, labels = np.stack(image_list), np.stack(label_list)
        if self.liver_jitter is not None:
            if rng is None:
                raise ValueError("the liver channel is jittered at random: batch() needs an rng")
            livers = jittered_livers(labels, self.liver_jitter, rng, self.tumor_dropout)
            images = np.concatenate([images, livers[:, None]], axis=1)
        return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))
