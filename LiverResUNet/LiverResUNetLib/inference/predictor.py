"""Slice-wise prediction: a CT Volume and a model in, a label Volume on the CT's exact grid out.

:func:`predict_volume` is the one inference entry (like nnU-Net's ``predict_single_npy_array``) that the
Slicer module, the ``segment`` command, evaluation and training's validation all call. It brings the CT to
canonical axial orientation (a view), then, one batch of slices at a time, preprocesses them exactly as in
training, runs the network and maps its output back onto the slice's own grid, writing uint8 labels into
one preallocated array: memory stays bounded by the batch, not by the length of the CT.
"""

from __future__ import annotations

import typing

import numpy as np

from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.devices import pick_device
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.inference import postprocessing
from LiverResUNetLib.inference.cascade import add_tumors
from LiverResUNetLib.inference.network_pass import (
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    autocast_for,
    check_cancel,
    labels_on_grid,
)
from LiverResUNetLib.preprocessing.geometry import network_grid
from LiverResUNetLib.preprocessing.intensity import preprocess_slices
from LiverResUNetLib.preprocessing.orientation import from_canonical, to_canonical
from LiverResUNetLib.volume import Volume

if typing.TYPE_CHECKING:
    import torch

    from LiverResUNetLib.model.model_file import LoadedModel

# Share of the progress bar taken by the network; post-processing and the return to the input grid follow.
NETWORK_SHARE = 0.9
# Share of the network's part taken by a cascade's liver stage (whole slices); its tumor stage sees the liver only.
LIVER_STAGE_SHARE = 0.6


def predict_volume(volume: Volume, model: LoadedModel, device: str | torch.device = "auto",
                   batch_size: int | None = None, postprocess: postprocessing.PostprocessOptions | None = None,
                   progress: Progress | None = None, cancel: CancelCheck | None = None,
                   precision: str = "auto") -> Volume:
    """Segment the liver and liver tumors of a CT.

    Args:
        volume: CT :class:`Volume` in HU, any orientation.
        model: a :class:`~LiverResUNetLib.model.model_file.LoadedModel` (network and card).
        device: "auto", "cuda", "mps", "cpu" or a torch.device; the network is moved there.
        batch_size: slices per network call; None picks one for the device.
        postprocess: :class:`PostprocessOptions`; None applies the model's own post-processing (its card's
            ``postprocessing`` section, e.g. a cascade's minimum lesion size, over the defaults; turn steps off
            with ``PostprocessOptions(keep_largest_liver=False, ...)``).
        progress: optional ``progress(fraction, message)``; fractions increase and end at 1.0.
        cancel: optional ``cancel() -> bool``, asked between batches; True raises ``errors.Cancelled``.
        precision: one of :data:`~LiverResUNetLib.inference.network_pass.PRECISIONS`.

    Returns:
        A uint8 label Volume (0 background, 1 liver, 2 tumor) on ``volume``'s exact grid.
    """
    report = progress or (lambda fraction, message: None)
    postprocess = postprocess or postprocessing.PostprocessOptions.from_dict(model.card.get("postprocessing") or {})
    canonical = to_canonical(volume)
    # A cascade's liver stage takes the first part of the network's share of the progress, its tumor stage the rest.
    liver_share = 1.0 if model.tumor_network is None else LIVER_STAGE_SHARE
    labels = predict_canonical_labels(canonical.array, model, device, batch_size,
                                      lambda fraction, message: report(fraction * liver_share, message), cancel,
                                      canonical.pixel_spacing, precision)
    check_cancel(cancel)
    report(NETWORK_SHARE * liver_share, "post-processing")
    labels = postprocessing.postprocess(labels, canonical.spacing, postprocess)
    if model.tumor_network is not None:
        labels = add_tumors(canonical.array, labels, model, canonical.spacing, device, batch_size,
                            lambda fraction, message: report(NETWORK_SHARE * (liver_share + (1 - liver_share)
                                                                              * fraction), message),
                            cancel, precision)
        check_cancel(cancel)
        report(NETWORK_SHARE, "post-processing")
        labels = postprocessing.postprocess(labels, canonical.spacing, postprocess)
    result = volume.with_array(np.ascontiguousarray(from_canonical(labels, canonical)),
                               description="liver and liver tumor labels")
    report(1.0, "done")
    return result


def predict_canonical_labels(hu: np.ndarray, model: LoadedModel, device: str | torch.device = "auto",
                             batch_size: int | None = None, progress: Progress | None = None,
                             cancel: CancelCheck | None = None,
                             pixel_spacing: tuple[float, float] | None = None,
                             precision: str = "auto") -> np.ndarray:
    """uint8 labels ``[k, rows, columns]`` of a canonical HU array, before post-processing.

    Each batch of slices is preprocessed once with ``context`` neighbours on either side (clamped at the
    ends of the volume, as in training), stacked into 2.5D inputs and run through the network. Arguments
    as for :func:`predict_volume`, and ``pixel_spacing`` (row mm, column mm) of the slices; progress goes
    from 0 to ``NETWORK_SHARE``.
    """
    import torch

    report = progress or (lambda fraction, message: None)
    device = pick_device(device)
    arithmetic = autocast_for(device, precision)
    params = model.preprocessing
    if params.liver_channel:
        raise input_error(model.path or "model", "this file holds a cascade's tumor stage alone; segment with the "
                                                 "run's model.pth, which holds both stages")
    network = model.network.to(device)
    batch_size = batch_size or (CPU_BATCH_SIZE if device.type == "cpu" else GPU_BATCH_SIZE)
    count = hu.shape[0]
    grid = network_grid(hu.shape[1:], pixel_spacing, params)
    context = params.context_slices
    labels = np.empty(hu.shape, dtype=np.uint8)
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode(), arithmetic:
            for start in range(0, count, batch_size):
                check_cancel(cancel)
                stop = min(start + batch_size, count)
                report(NETWORK_SHARE * start / count, f"segmenting slices {start + 1}-{stop} of {count}")
                first, last = max(start - context, 0), min(stop + context, count)
                images = torch.from_numpy(preprocess_slices(hu[first:last], params, pixel_spacing))
                neighbours = np.clip(np.arange(start, stop)[:, None] + np.arange(-context, context + 1)[None, :],
                                     0, count - 1) - first
                inputs = images[torch.from_numpy(neighbours)].to(device, non_blocking=True)
                logits = network(inputs.contiguous(memory_format=torch.channels_last))
                labels[start:stop] = labels_on_grid(logits, grid).cpu().numpy()
    finally:
        network.train(was_training)
    return labels
