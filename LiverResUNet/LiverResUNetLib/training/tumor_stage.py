"""Training a cascade's tumor stage: the liver's box of every training patient, at the tumor stage's pixel size.

After the liver stage, ``train`` trains the tumor network on the same training patients: each case's liver box
(from its reference liver, widened by the margin) is cut and preprocessed once into a slice store, exactly as
inference cuts the liver stage's box (``preprocessing/liver_box.py``); patches of it are drawn with the tumor
slices over-sampled, and the liver channel is the reference liver grown or shrunk at random, as the liver
stage errs. The two stages share ``--max-minutes`` (``tumor_stage.time_share`` goes to the tumor stage).
"""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np

from LiverResUNetLib.callbacks import Progress
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.model.model_file import fitting_network
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams, preprocess_slices, resize_labels
from LiverResUNetLib.preprocessing.liver_box import liver_box, sized_params
from LiverResUNetLib.preprocessing.orientation import to_canonical
from LiverResUNetLib.training.config import TrainConfig, TumorStageConfig
from LiverResUNetLib.training.slices import SliceStore, store_slices
from LiverResUNetLib.training.synthesis import RANDOM_SHAPES, paste_tumors, random_tumor_shapes, read_tumor_shapes

if typing.TYPE_CHECKING:
    from LiverResUNetLib.datasets.cases import CaseSource

TUMOR_STAGE_FOLDER = "tumor_stage"


def liver_stage_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the liver stage's share of ``runtime.max_minutes`` (all of it without a tumor stage)."""
    if not config.tumor_stage.enabled or config.runtime.max_minutes is None:
        return config
    values = config.to_dict()
    values["runtime"]["max_minutes"] = config.runtime.max_minutes * (1.0 - config.tumor_stage.time_share)
    return TrainConfig.from_dict(values)


def tumor_stage_config(config: TrainConfig, liver_params: PreprocessingParams,
                       out: Path) -> tuple[TrainConfig, dict, PreprocessingParams]:
    """``(configuration, architecture, preprocessing)`` of the tumor stage of a run configured by ``config`` (the
    user's, with the whole ``--max-minutes``) whose liver stage is fed with ``liver_params``; it trains into
    ``out``, on patches of ``tumor_stage.patch_size`` pixels, every training patient, no validation, its schedule
    the liver stage's cut to whole epochs within ``tumor_stage.max_steps``."""
    stage = config.tumor_stage
    params = PreprocessingParams.from_dict({**liver_params.to_dict(), "pixel_size_mm": stage.pixel_size_mm,
                                            "input_size": stage.patch_size, "liver_channel": True,
                                            "equalization": stage.equalization or liver_params.equalization})
    architecture = {**default_architecture(), **config.network, **stage.network, "in_channels": params.channels}
    values = config.to_dict()
    values.update(out=str(out), network=architecture, preprocessing=params.to_dict())
    values["sampling"]["patch_size"] = stage.patch_size
    values["augmentation"].update(stage.augmentation)
    schedule = values["optimization"]
    if stage.max_steps is not None and schedule["epochs"] * schedule["steps_per_epoch"] > stage.max_steps:
        schedule["epochs"] = max(1, stage.max_steps // schedule["steps_per_epoch"])
    if config.runtime.max_minutes is not None:
        values["runtime"]["max_minutes"] = config.runtime.max_minutes * stage.time_share
    return TrainConfig.from_dict(values, "tumor_stage").check("tumor_stage"), architecture, params


def check_tumor_stage(config: TrainConfig, liver_architecture: dict, liver_params: PreprocessingParams) -> None:
    """InputError now, before the liver stage trains, when the tumor stage's options cannot build its network."""
    if not config.tumor_stage.enabled:
        return
    _, architecture, params = tumor_stage_config(_with_network(config, liver_architecture), liver_params, Path())
    try:
        fitting_network(architecture, params)
    except (TypeError, ValueError) as error:
        raise input_error("tumor_stage", f"the tumor network does not fit its patches: {error}") from None


def _with_network(config: TrainConfig, architecture: dict) -> TrainConfig:
    values = config.to_dict()
    values["network"] = architecture
    return TrainConfig.from_dict(values)


def liver_jitter_pixels(config: TrainConfig, params: PreprocessingParams) -> int | None:
    """How far (pixels) training grows or shrinks the liver channel; None when the network has no liver channel."""
    if not params.liver_channel:
        return None
    return int(round(config.tumor_stage.liver_jitter_mm / float(params.pixel_size_mm or 1.0)))


def box_case_slices(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...],
                    params: PreprocessingParams, margin_mm: float, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images float16 [n, s, s], labels uint8 [n, s, s])`` of the reference liver's box of a canonical CT (no
    slice when it has no liver), cut and preprocessed as inference cuts the liver stage's box."""
    box = liver_box(labels > 0, spacing, margin_mm)
    if box is None:
        empty = np.zeros((0, params.input_size, params.input_size))
        return empty.astype(np.float16), empty.astype(np.uint8)
    pixel_spacing = (spacing[1], spacing[0])
    sized = sized_params(params, hu[box].shape[1:], pixel_spacing, multiple, params.input_size)
    images = preprocess_slices(hu[box], sized, pixel_spacing)
    return images.astype(np.float16), resize_labels(labels[box], sized, pixel_spacing)


def write_box_store(sources: list[CaseSource], params: PreprocessingParams, architecture: dict,
                    stage: TumorStageConfig, seed: int, folder: Path, progress: Progress | None = None) -> SliceStore:
    """The tumor stage's slice store in ``folder``: every case's liver box (see :func:`box_case_slices`) and
    ``stage.synthetic_copies`` copies of it with lesions pasted into its liver (``training/synthesis.py``): real
    tumor shapes of the label maps in ``stage.tumor_shapes``, or without them deformed ellipsoids."""
    multiple = build_network(architecture).size_multiple
    if stage.tumor_shapes:
        shapes = read_tumor_shapes(Path(stage.tumor_shapes))
    else:
        shapes = random_tumor_shapes(RANDOM_SHAPES, np.random.default_rng([seed, RANDOM_SHAPES]))
    copies = stage.synthetic_copies

    def cases() -> typing.Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for position, source in enumerate(sources):
            if progress:
                progress(0.0, f"tumor stage: preparing the liver box of {source.case_id} "
                              f"({position + 1}/{len(sources)})")
            case = source.load()
            image, labels = to_canonical(case.image), to_canonical(case.label).array
            yield (source.case_id, *box_case_slices(image.array, labels, image.spacing, params,
                                                    stage.box_margin_mm, multiple))
            for copy in range(copies):
                rng = np.random.default_rng([seed, position, copy])
                hu, pasted = paste_tumors(image.array, labels, image.spacing, shapes, stage.synthetic_tumors, rng)
                yield (f"{source.case_id}+synthetic{copy + 1}",
                       *box_case_slices(hu, pasted, image.spacing, params, stage.box_margin_mm, multiple))

    return store_slices(cases(), folder, params.to_dict())


def store_case_ids(store: SliceStore, cases: list[str]) -> list[str]:
    """The store's case ids that come from ``cases`` (each case and its synthetic copies)."""
    return [case for case in store.case_ids if case.split("+synthetic")[0] in cases]
