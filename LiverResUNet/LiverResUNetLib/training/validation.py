"""Validation Dice on whole held-out volumes, through the real inference path (what users will get).

Each held-out CT goes through ``predict_volume`` exactly as the Slicer module and ``segment`` run it, so the
Dice that picks the best model is the Dice of the model file as shipped. With several DDP processes each
validates its share of the cases and the voxel counts are summed across processes.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

import numpy as np

from LiverResUNetLib.evaluation.metrics import overlap_metrics
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import LoadedModel
from LiverResUNetLib.training.distributed import DistributedContext, sum_across_processes
from LiverResUNetLib.volume import TUMOR

if typing.TYPE_CHECKING:
    import torch

    from LiverResUNetLib.datasets.cases import Case

# Per case: liver true / false positives, false negatives, then the same for the tumor, then the voxel count.
_COUNTS = 7


def validate(network: torch.nn.Module, card: dict[str, Any], cases: Iterable[tuple[int, Case]],
             context: DistributedContext, case_count: int) -> tuple[float | None, float | None]:
    """Mean per-case ``(liver Dice, tumor Dice)`` over the validation cases (tumor over cases with tumor).

    Args:
        network: the bare network (not the DDP wrapper); the predictor evaluates it in eval mode and
            restores its mode.
        card: the model card that goes with it (its preprocessing is what inference applies).
        cases: ``[(position, Case)]``, this process's share of the validation cases.
        context: the :class:`DistributedContext`.
        case_count: number of validation cases over all processes.
    """
    counts = np.zeros((case_count, _COUNTS))
    model = LoadedModel(network=network, card=card)
    for position, case in cases:
        predicted = predict_volume(case.image, model, device=context.device).array
        counts[position] = region_counts(predicted, case.label.array)
    counts = sum_across_processes(counts, context)
    liver = [_dice(row[0:3], row[6]) for row in counts]
    tumor = [_dice(row[3:6], row[6]) for row in counts if row[3] + row[5] > 0]
    return _mean(liver), _mean(tumor)


def region_counts(predicted: np.ndarray, reference: np.ndarray) -> list[int]:
    """True positives, false positives and false negatives of the liver (labels 1|2) and the tumor (2)."""
    counts = []
    for predicted_mask, reference_mask in ((predicted > 0, reference > 0), (predicted == TUMOR, reference == TUMOR)):
        counts += [int(np.count_nonzero(predicted_mask & reference_mask)),
                   int(np.count_nonzero(predicted_mask & ~reference_mask)),
                   int(np.count_nonzero(~predicted_mask & reference_mask))]
    return counts + [reference.size]


def _dice(counts: np.ndarray, voxels: float) -> float | None:
    """The Dice of a row's ``(tp, fp, fn)``; the counts, summed across processes as float64, are whole."""
    tp, fp, fn = (int(count) for count in counts)
    return overlap_metrics(tp, fp, fn, int(voxels) - tp - fp - fn)["dice"]


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None
