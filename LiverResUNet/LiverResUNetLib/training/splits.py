"""Patient-wise splits: a patient's slices are all in training or all in validation, never both.

Slice-level random splits put neighbouring slices of one patient on both sides and inflate Dice (see the
3D-IRCADb notes); here the unit is the case, and a case is one patient. Tumor-free patients are spread
evenly over the folds so that every validation set has tumors to score when there are enough of them.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from LiverResUNetLib.errors import input_error

if typing.TYPE_CHECKING:
    from LiverResUNetLib.training.config import SplitConfig


@dataclass
class Split:
    """One division of case ids into training and validation, with how it was made."""

    train: list[str]
    val: list[str]
    method: str
    seed: int
    folds: Optional[int] = None
    fold: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Below this many patients a validation split would take a large share of the data: every patient is trained.
SMALL_COHORT = 5
DEFAULT_VAL_FRACTION = 0.2


def default_val_fraction(patients: int) -> float:
    """The share held out when ``split.val_fraction`` is not given: none for a small cohort, else 0.2."""
    return 0.0 if patients < SMALL_COHORT else DEFAULT_VAL_FRACTION


def make_splits(case_ids: Iterable[str], split_config: SplitConfig, seed: int,
                has_tumor: Mapping[str, bool] | None = None, source: str | Path | None = "dataset") -> list[Split]:
    """The splits a ``SplitConfig`` asks for: one hold-out split, every k-fold split, or one chosen fold."""
    if split_config.folds is None:
        val_fraction = split_config.val_fraction
        if val_fraction is None:
            val_fraction = default_val_fraction(len(set(case_ids)))
        return [holdout_split(case_ids, val_fraction, seed, has_tumor, source)]
    splits = kfold_splits(case_ids, split_config.folds, seed, has_tumor, source)
    return splits if split_config.fold is None else [splits[split_config.fold]]


def holdout_split(case_ids: Iterable[str], val_fraction: float, seed: int,
                  has_tumor: Mapping[str, bool] | None = None, source: str | Path | None = "dataset") -> Split:
    """Hold out ``val_fraction`` of the patients (at least one) for validation; 0 trains on every patient."""
    if val_fraction == 0:
        return all_patients_split(case_ids, seed, source)
    order = _stratified_order(case_ids, seed, has_tumor, source, minimum=2)
    count = min(len(order) - 1, max(1, round(val_fraction * len(order))))
    return Split(train=sorted(order[count:]), val=sorted(order[:count]), seed=seed,
                 method=f"patient-wise hold-out: {count} of {len(order)} patients for validation "
                        f"(seeded shuffle, tumor-free patients spread evenly)")


def all_patients_split(case_ids: Iterable[str], seed: int, source: str | Path | None = "dataset") -> Split:
    """Every patient in training and none validated (nnU-Net's fold "all"), for cohorts too small to hold any out."""
    order = _stratified_order(case_ids, seed, None, source, minimum=1)
    return Split(train=sorted(order), val=[], seed=seed,
                 method=f"all {len(order)} patients trained, none held out (fold \"all\": fixed schedule, "
                        f"last model kept)")


def kfold_splits(case_ids: Iterable[str], folds: int, seed: int, has_tumor: Mapping[str, bool] | None = None,
                 source: str | Path | None = "dataset") -> list[Split]:
    """K splits whose validation sets partition the patients; every patient is validated exactly once."""
    order = _stratified_order(case_ids, seed, has_tumor, source, minimum=folds)
    return [Split(train=sorted(order[i] for i in range(len(order)) if i % folds != fold),
                  val=sorted(order[fold::folds]), seed=seed, folds=folds, fold=fold,
                  method=f"patient-wise {folds}-fold cross-validation, fold {fold} "
                         f"(seeded shuffle, tumor-free patients spread evenly)")
            for fold in range(folds)]


def _stratified_order(case_ids: Iterable[str], seed: int, has_tumor: Mapping[str, bool] | None,
                      source: str | Path | None, minimum: int) -> list[str]:
    """Case ids shuffled within tumor / tumor-free groups, then interleaved in proportion."""
    cases = sorted(case_ids)
    if len(set(cases)) != len(cases):
        raise input_error(source, "case ids are not unique, so a patient-wise split is impossible")
    if len(cases) < minimum:
        raise input_error(source, f"{len(cases)} case(s) found; a patient-wise split needs at least {minimum}")
    rng = np.random.default_rng(seed)
    tumor = has_tumor or {}
    keyed = []
    for group in (True, False):
        members = [case for case in cases if bool(tumor.get(case, True)) == group]
        members = [members[i] for i in rng.permutation(len(members))]
        keyed += [((rank + 0.5) / len(members), group, case) for rank, case in enumerate(members)]
    return [case for _, _, case in sorted(keyed)]
