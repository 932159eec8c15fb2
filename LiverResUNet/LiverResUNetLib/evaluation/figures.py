"""PNG figures of the evaluation report: training curves, confusion matrices, best / worst slice overlays.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas, never through ``pyplot``: no global
state, no window, and nothing that disturbs a host application (Slicer) that has its own backend.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from LiverResUNetLib.volume import LABEL_NAMES, TUMOR

DPI = 100
# Reference = solid lines, prediction = dashed lines; liver and tumor in clearly different colours.
CONTOURS: tuple[tuple[str, str, str, Literal["solid", "dashed"]], ...] = (
    ("reference", "liver", "#22dd22", "solid"),
    ("reference", "tumor", "#ffd500", "solid"),
    ("prediction", "liver", "#ff44ff", "dashed"),
    ("prediction", "tumor", "#ff2222", "dashed"),
)


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


def plot_training_curves(history: Sequence[dict[str, Any]] | None, path: Path) -> Path | None:
    """Training loss, validation Dice (liver, tumor) and learning rate per epoch, from the model card.

    ``history`` is ``card["training"]["history"]``: a list of dicts with ``epoch``, ``train_loss``,
    ``val_liver_dice``, ``val_tumor_dice`` and ``lr``. Returns ``path``, or None when there is no history.
    """
    if not history:
        return None
    epochs = [entry["epoch"] for entry in history]

    def series(key: str) -> list[float]:
        return [np.nan if entry.get(key) is None else entry[key] for entry in history]

    figure = Figure(figsize=(11, 3.4))
    loss_axes, dice_axes, lr_axes = figure.subplots(1, 3)
    loss_axes.plot(epochs, series("train_loss"), marker=".", color="#1f5fbf")
    loss_axes.set(title="Training loss (Dice + cross-entropy)", xlabel="epoch", ylabel="loss")
    dice_axes.plot(epochs, series("val_liver_dice"), marker=".", color="#1a9a1a", label="liver")
    dice_axes.plot(epochs, series("val_tumor_dice"), marker=".", color="#d02020", label="tumor")
    dice_axes.set(title="Validation Dice", xlabel="epoch", ylabel="Dice", ylim=(0, 1))
    dice_axes.legend(loc="lower right")
    lr_axes.plot(epochs, series("lr"), marker=".", color="#555555")
    lr_axes.set(title="Learning rate", xlabel="epoch", ylabel="lr")
    lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for axes in (loss_axes, dice_axes, lr_axes):
        # Whole epochs only: a short run gets one tick per epoch instead of fractions around a lone point.
        if len(epochs) <= 10:
            axes.set_xticks(epochs)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def plot_confusion_matrix(matrix: npt.ArrayLike, path: Path, title: str) -> Path:
    """A 3x3 voxel confusion matrix (rows reference, columns prediction), coloured by row fraction.

    Background outnumbers the liver by orders of magnitude, so colours show each row's fractions while the
    cells print the voxel counts too.
    """
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    figure = Figure(figsize=(4.6, 4.0))
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of reference row")
    names = list(LABEL_NAMES)
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
             xlabel="prediction", ylabel="reference", title=title)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if fractions[row, column] > 0.6 else "black"
        axes.text(column, row, f"{int(count):,}\n{fractions[row, column]:.1%}", ha="center", va="center",
                  fontsize=8, color=colour)
    figure.tight_layout()
    return _save(figure, path)


def _slice_dice(prediction: np.ndarray, reference: np.ndarray) -> float | None:
    """Dice of two 2D masks, None when both are empty."""
    total = np.count_nonzero(prediction) + np.count_nonzero(reference)
    return 2.0 * np.count_nonzero(prediction & reference) / total if total else None


def slice_scores(prediction: np.ndarray, reference: np.ndarray) -> dict[int, float]:
    """Per-slice score: the mean of the liver Dice and (where a tumor is present or predicted) tumor Dice.

    Returns ``{k: score}`` for every slice where the reference or the prediction has liver.
    """
    scores = {}
    for k in np.flatnonzero((prediction > 0).any(axis=(1, 2)) | (reference > 0).any(axis=(1, 2))):
        dices = [_slice_dice(prediction[k] > 0, reference[k] > 0),
                 _slice_dice(prediction[k] == TUMOR, reference[k] == TUMOR)]
        scores[int(k)] = float(np.mean([dice for dice in dices if dice is not None]))
    return scores


def select_slices(prediction: np.ndarray, reference: np.ndarray) -> dict[str, tuple[int, float]]:
    """The best and the worst slice of a case as ``{"best": (k, score), "worst": (k, score)}`` (empty if none).

    Best: highest score among slices with reference liver, ties to the larger liver. Worst: lowest score among
    slices where either mask has liver (a slice of pure false positives scores 0), ties to the most wrong voxels.
    """
    scores = slice_scores(prediction, reference)
    if not scores:
        return {}
    liver_area = (reference > 0).sum(axis=(1, 2))
    liver_errors = ((prediction > 0) != (reference > 0)).sum(axis=(1, 2))
    tumor_errors = ((prediction == TUMOR) != (reference == TUMOR)).sum(axis=(1, 2))
    errors = liver_errors + tumor_errors
    with_liver = [k for k in scores if liver_area[k]] or list(scores)
    best = max(with_liver, key=lambda k: (scores[k], liver_area[k]))
    worst = min(scores, key=lambda k: (scores[k], -errors[k]))
    return {"best": (best, scores[best]), "worst": (worst, scores[worst])}


def _crop_box(masks: Sequence[np.ndarray], shape: Sequence[int], margin_fraction: float = 0.25,
              minimum_margin: int = 12) -> tuple[slice, ...]:
    """Rows and columns around the union of the masks, with a margin, so the liver fills the picture."""
    union = np.logical_or.reduce(masks)
    if not union.any():
        return slice(0, shape[0]), slice(0, shape[1])
    box = []
    for axis, size in enumerate(shape):
        present = np.flatnonzero(union.any(axis=1 - axis))
        margin = max(minimum_margin, int(margin_fraction * (present[-1] - present[0] + 1)))
        box.append(slice(max(0, present[0] - margin), min(size, present[-1] + margin + 1)))
    return tuple(box)


def plot_slice_overlay(ct: np.ndarray, reference: np.ndarray, prediction: np.ndarray, path: Path,
                       window: Sequence[float], pixel_spacing: Sequence[float] = (1.0, 1.0), title: str = "") -> Path:
    """One axial slice: CT in the model's HU window with reference (solid) and predicted (dashed) contours.

    ``ct``, ``reference`` and ``prediction`` are 2D arrays [row, column] in display orientation;
    ``pixel_spacing`` = (row mm, column mm) keeps anisotropic pixels in proportion.
    """
    masks = {("reference", "liver"): reference > 0, ("reference", "tumor"): reference == TUMOR,
             ("prediction", "liver"): prediction > 0, ("prediction", "tumor"): prediction == TUMOR}
    rows, columns = _crop_box(list(masks.values()), ct.shape)
    figure = Figure(figsize=(5.2, 5.2))
    axes = figure.subplots()
    axes.imshow(ct[rows, columns], cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest",
                aspect=pixel_spacing[0] / pixel_spacing[1])
    handles = []
    for source, structure, colour, style in CONTOURS:
        mask = masks[(source, structure)][rows, columns]
        if mask.any() and not mask.all():
            axes.contour(mask.astype(np.uint8), levels=[0.5], colors=[colour], linestyles=style, linewidths=1.6)
        handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1.6,
                              label=f"{source} {'tumor' if structure == 'tumor' else structure}"))
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=8, frameon=False)
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()
    figure.tight_layout()
    return _save(figure, path)
