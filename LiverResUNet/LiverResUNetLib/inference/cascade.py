"""The tumor stage of a cascade: tumors looked for inside the liver that the liver stage found, at a finer scale.

The liver stage (the model's first network) labels whole slices at its pixel size; its liver (after
post-processing) gives the box that the tumor network sees at its own, finer pixel size, with the liver mask
as one more input channel. The tumor network's tumor counts only inside that liver; a stage trained to follow a
tumor beyond the liver it is given (the card's ``tumors_beyond_liver``: a liver stage may take a large dark
tumor for background) keeps each tumor that touches that liver whole, and the final liver grows by it, up to the
card's ``beyond_liver_mm`` from the liver stage's liver where the card has one (a stage that follows tumors also
follows the dark stomach beside the liver; a tumor the liver stage missed lies within that reach). Either way a tumor
voxel outside the final liver cannot occur. A stage whose card says ``adds_liver`` also adds the liver
its network finds at the finer pixel size (it is trained on liver and tumor labels) to the liver stage's, within
the box; the tumor stage never takes liver away. Only the box's slices are run, a batch at a time, so memory stays
bounded by the batch.
"""

from __future__ import annotations

import typing

import numpy as np
from scipy import ndimage

from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.components import label_components
from LiverResUNetLib.devices import pick_device
from LiverResUNetLib.inference import network_pass
from LiverResUNetLib.preprocessing.intensity import network_grid
from LiverResUNetLib.preprocessing.liver_box import box_slices, liver_box, sized_params
from LiverResUNetLib.volume import LIVER, TUMOR

if typing.TYPE_CHECKING:
    import torch

    from LiverResUNetLib.model.model_file import LoadedModel
    from LiverResUNetLib.model.resunet import ResUNet


def add_tumors(hu: np.ndarray, liver_labels: np.ndarray, model: LoadedModel, spacing: tuple[float, ...],
               device: str | torch.device = "auto", batch_size: int | None = None, progress: Progress | None = None,
               cancel: CancelCheck | None = None, precision: str = "auto") -> np.ndarray:
    """uint8 labels ``[k, j, i]``: liver where ``liver_labels`` (the liver stage's, canonical) is not background,
    tumor where the tumor network finds it inside that liver.

    Args:
        hu: the canonical HU array.
        liver_labels: the liver stage's labels on the same grid (1 or 2 is liver).
        model: a cascade's :class:`LoadedModel` (with a ``tumor_network``).
        spacing: ``(di, dj, dk)`` mm of the canonical axes.
        device, batch_size, precision, cancel: as for ``predict_volume``.
        progress: ``progress(fraction, message)`` with fractions from 0 to 1 over the box's slices.
    """
    import torch

    report = progress or (lambda fraction, message: None)
    tumor_params = model.tumor_preprocessing
    if model.tumor_network is None or tumor_params is None:
        raise ValueError("add_tumors needs a cascade's model (one with a tumor stage)")
    liver = liver_labels > 0
    labels = liver.astype(np.uint8) * LIVER
    stage = model.card["tumor_stage"]
    box = liver_box(liver, spacing, float(stage["box_margin_mm"]))
    if box is None:
        return labels
    device = pick_device(device)
    network = typing.cast("ResUNet", model.tumor_network.to(device).eval())
    pixel_spacing = (spacing[1], spacing[0])
    hu_box, liver_box_mask, labels_box = hu[box], liver[box], labels[box]
    tumor_box = np.zeros(hu_box.shape, dtype=bool)
    found_liver_box = np.zeros(hu_box.shape, dtype=bool)
    params = sized_params(tumor_params, hu_box.shape[1:], pixel_spacing, network.size_multiple)
    grid = network_grid(hu_box.shape[1:], pixel_spacing, params)
    context, count = params.context_slices, hu_box.shape[0]
    batch_size = batch_size or (network_pass.CPU_BATCH_SIZE if device.type == "cpu" else network_pass.GPU_BATCH_SIZE)
    with torch.inference_mode(), network_pass.autocast_for(device, precision):
        for start in range(0, count, batch_size):
            network_pass.check_cancel(cancel)
            stop = min(start + batch_size, count)
            report(start / count, f"looking for tumors in liver slices {start + 1}-{stop} of {count}")
            first, last = max(start - context, 0), min(stop + context, count)
            images, masks = box_slices(hu_box[first:last], liver_box_mask[start:stop], params, pixel_spacing)
            neighbours = np.clip(np.arange(start, stop)[:, None] + np.arange(-context, context + 1)[None, :],
                                 0, count - 1) - first
            inputs = torch.cat([torch.from_numpy(images)[torch.from_numpy(neighbours)],
                                torch.from_numpy(masks)[:, None]], dim=1).to(device)
            found = network_pass.labels_on_grid(network(inputs.contiguous(memory_format=torch.channels_last)),
                                                grid).cpu().numpy()
            tumor_box[start:stop], found_liver_box[start:stop] = found == TUMOR, found == LIVER
    if stage.get("adds_liver", False):
        labels_box[found_liver_box] = LIVER
    if stage.get("tumors_beyond_liver", False):
        followed = touching(tumor_box, liver_box_mask)
        if stage.get("beyond_liver_mm") is not None:
            beyond = within(liver_box_mask, followed & ~liver_box_mask, spacing, float(stage["beyond_liver_mm"]))
            followed = (tumor_box & liver_box_mask) | beyond
        labels_box[followed] = TUMOR
    else:
        labels_box[tumor_box & liver_box_mask] = TUMOR
    return labels


def touching(tumor: np.ndarray, liver: np.ndarray) -> np.ndarray:
    """The 3D components of ``tumor`` that hold a voxel of ``liver`` (whole, also where they reach beyond it)."""
    components, count = label_components(tumor)
    kept = np.zeros(count + 1, dtype=bool)
    kept[components[liver & tumor]] = True
    kept[0] = False
    return kept[components]


def within(mask: np.ndarray, candidates: np.ndarray, spacing: tuple[float, ...], reach_mm: float) -> np.ndarray:
    """The voxels of ``candidates`` at most ``reach_mm`` (Euclidean, in mm; ``spacing`` is ``(di, dj, dk)``) from a
    voxel of ``mask`` (both ``[k, j, i]``).

    Exact, and light enough for a CT's own grid: the squared in-plane distance of every slice (2D transforms), then
    for each candidate the nearest of those slices within reach, its in-plane distance combined with the slices'
    step; only in the candidates' box widened by the reach (a mask voxel within reach of a candidate lies in it).
    One 3D transform of a liver's box at 0.6 mm would take 0.4 GB.
    """
    near = np.zeros(mask.shape, dtype=bool)
    box = liver_box(candidates, spacing, reach_mm + max(spacing))
    if box is None or not mask[box].any():
        return near
    region, wanted = mask[box], candidates[box]
    squared = np.full(region.shape, np.inf, dtype=np.float32)
    for index, plane in enumerate(region):
        if plane.any():
            squared[index] = ndimage.distance_transform_edt(~plane, sampling=(spacing[1], spacing[0])) ** 2
    ks, js, is_ = np.nonzero(wanted)
    nearest = np.full(ks.size, np.inf, dtype=np.float32)
    steps = int(reach_mm // spacing[2])
    for offset in range(-steps, steps + 1):
        source = ks + offset
        valid = (source >= 0) & (source < len(region))
        through = (offset * spacing[2]) ** 2
        nearest[valid] = np.minimum(nearest[valid], squared[source[valid], js[valid], is_[valid]] + through)
    found = np.zeros(region.shape, dtype=bool)
    found[ks, js, is_] = nearest <= reach_mm ** 2
    near[box] = found
    return near
