"""The training configuration: one small dataclass per concern, read from YAML, overridden on the command line.

``LiverResUNetTrainer/Resources/config.yaml`` lists every option with its default and what it does;
``train --config FILE`` reads a file of the same shape (any subset of it), and the command's flags and
``--set section.key=value`` override it. The resolved configuration is saved in the run folder and in the
model card, so a model always says how it was trained.
"""

import copy
import dataclasses
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.preprocessing.intensity import EQUALIZATIONS, PreprocessingParams
from LiverResUNetLib.records import DataclassInstance


@dataclass
class SplitConfig:
    """How cases are divided between training and validation (always by patient, never by slice);
    ``val_fraction`` 0 trains on every patient with no validation (nnU-Net's fold "all"); None (the default) holds
    out 0.2, or none when the cohort is too small to spare a patient (see ``splits.default_val_fraction``)."""

    val_fraction: typing.Optional[float] = None
    folds: typing.Optional[int] = None
    fold: typing.Optional[int] = None


@dataclass
class SamplingConfig:
    """Share of each batch drawn from slices with tumor, with liver but no tumor, and with neither;
    tumor slices drawn lesion by lesion; optionally patches of those slices centred near their tumor or liver."""

    tumor_fraction: float = 0.5
    liver_fraction: float = 0.35
    background_fraction: float = 0.15
    balance_lesions: bool = True
    patch_size: typing.Optional[int] = 96


@dataclass
class AugmentationConfig:
    """Random changes applied to each training slice (images and labels move together); ``phase_*``: another
    contrast phase mimicked (off by default), see ``augmentation.random_contrast_phase``."""

    probability: float = 0.8
    flip_probability: float = 0.0
    rotation_degrees: float = 12.0
    scale_min: float = 0.85
    scale_max: float = 1.15
    contrast: float = 0.15
    brightness: float = 0.1
    noise_std: float = 0.02
    phase_probability: float = 0.0
    phase_liver_shift: float = 0.1
    phase_tumor_shift: float = 0.1


@dataclass
class LossConfig:
    """Weights of the soft Dice and cross-entropy terms of the loss."""

    dice_weight: float = 1.0
    cross_entropy_weight: float = 1.0


@dataclass
class OptimizationConfig:
    """AdamW, its learning-rate schedule, the length of training and early stopping."""

    epochs: int = 40
    steps_per_epoch: int = 50
    batch_size: int = 8
    learning_rate: float = 0.01
    weight_decay: float = 0.0001
    schedule: str = "cosine"
    warmup_steps: int = 20
    early_stopping_patience: int = 10
    ema_decay: float = 0.0


@dataclass
class RuntimeConfig:
    """Where and how long to run; ``--resume`` may change these."""

    device: str = "auto"
    max_minutes: typing.Optional[float] = None
    threads: typing.Optional[int] = None
    checkpoint_every_steps: int = 20
    workers: typing.Optional[int] = None


@dataclass
class TumorStageConfig:
    """A cascade's second network: tumors inside the liver's bounding box, at a finer pixel size, given the liver
    mask (the reference liver, randomly grown or shrunk, in training; the liver stage's at inference)."""

    enabled: bool = True
    pixel_size_mm: float = 0.75
    patch_size: int = 128
    box_margin_mm: float = 10.0
    liver_jitter_mm: float = 4.0
    tumor_dropout: float = 0.5
    beyond_liver_mm: typing.Optional[float] = 20.0
    liver_stage_merges_tumors: bool = False
    time_share: float = 0.5
    network: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=dict)
    max_steps: typing.Optional[int] = 800
    equalization: typing.Optional[str] = "none"
    tumor_shapes: typing.Optional[str] = None
    synthetic_copies: int = 6
    synthetic_tumors: int = 3


@dataclass
class SynthesisConfig:
    """Whole synthetic CTs generated from label maps without CT (``training/synthetic_ct.py``): ``copies`` of each
    label map under ``label_maps`` join the training cases of the liver stage (and of the tumor stage with
    ``tumor_stage``; never validated), and fill ``share`` of every batch (null: drawn alike with the real slices)."""

    label_maps: typing.Optional[str] = None
    copies: int = 1
    share: typing.Optional[float] = 0.25
    tumor_stage: bool = False


@dataclass
class PostprocessingConfig:
    """The post-processing written into the model card: what ``segment`` applies unless told otherwise."""

    min_tumor_mm3: float = 200.0


SCHEDULES = ("cosine", "poly", "constant")


@dataclass
class TrainConfig:
    """Everything ``train`` needs; ``network`` overrides the model's default architecture, ``preprocessing`` is
    the :class:`PreprocessingParams` the network is fed with (a partial mapping fills the rest with their
    defaults)."""

    data: typing.Optional[str] = None
    out: typing.Optional[str] = None
    seed: int = 0
    split: SplitConfig = field(default_factory=SplitConfig)
    network: dict = field(default_factory=dict)
    preprocessing: PreprocessingParams = field(default_factory=PreprocessingParams)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimization: OptimizationConfig = field(default_factory=OptimizationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    tumor_stage: TumorStageConfig = field(default_factory=TumorStageConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    postprocessing: PostprocessingConfig = field(default_factory=PostprocessingConfig)

    def to_dict(self) -> dict[str, Any]:
        """The nested dict of plain values (the YAML file, the model card's ``training.config``)."""
        return {**dataclasses.asdict(self), "preprocessing": self.preprocessing.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None, source: str | Path = "configuration") -> "TrainConfig":
        """Build a config from a (partial) nested dict; unknown keys and wrong types raise InputError."""
        return _build(cls, values or {}, source, prefix="")

    def check(self, source: str | Path = "configuration") -> "TrainConfig":
        """Refuse values that are the right type but make no sense (InputError naming ``source``)."""
        split, sampling, optimization = self.split, self.sampling, self.optimization
        problems = []
        if split.val_fraction is not None and not 0.0 <= split.val_fraction < 1.0:
            problems.append("split.val_fraction must be at least 0 (0: train on every patient) and below 1")
        if split.folds is not None and split.folds < 2:
            problems.append("split.folds must be at least 2 (or null for a single train/validation split)")
        if split.fold is not None and (split.folds is None or not 0 <= split.fold < split.folds):
            problems.append("split.fold needs split.folds and must be in 0..folds-1")
        fractions = (sampling.tumor_fraction, sampling.liver_fraction, sampling.background_fraction)
        if min(fractions) < 0 or sum(fractions) <= 0:
            problems.append("sampling fractions must be >= 0 and not all 0")
        if sampling.patch_size is not None and sampling.patch_size < 8:
            problems.append("sampling.patch_size must be at least 8 pixels (or null for whole slices)")
        if self.augmentation.scale_min <= 0 or self.augmentation.scale_max < self.augmentation.scale_min:
            problems.append("augmentation.scale_min must be > 0 and <= scale_max")
        if min(self.augmentation.phase_liver_shift, self.augmentation.phase_tumor_shift) < 0:
            problems.append("augmentation.phase_liver_shift and phase_tumor_shift must be >= 0")
        for name in ("epochs", "steps_per_epoch", "batch_size"):
            if getattr(optimization, name) < 1:
                problems.append(f"optimization.{name} must be at least 1")
        if optimization.schedule not in SCHEDULES:
            problems.append(f"optimization.schedule must be one of {', '.join(SCHEDULES)}")
        if optimization.learning_rate <= 0:
            problems.append("optimization.learning_rate must be > 0")
        if not 0.0 <= optimization.ema_decay < 1.0:
            problems.append("optimization.ema_decay must be >= 0 and < 1 (0: no weight averaging)")
        if self.runtime.checkpoint_every_steps < 1:
            problems.append("runtime.checkpoint_every_steps must be at least 1")
        if self.runtime.workers is not None and self.runtime.workers < 0:
            problems.append("runtime.workers must be at least 0 (0: batches made in the training process)")
        problems += _tumor_stage_problems(self.tumor_stage)
        if self.synthesis.copies < 1:
            problems.append("synthesis.copies must be at least 1")
        if self.synthesis.share is not None and not 0.0 < self.synthesis.share < 1.0:
            problems.append("synthesis.share must be between 0 and 1 (or null: synthetic slices drawn alike)")
        if self.postprocessing.min_tumor_mm3 < 0:
            problems.append("postprocessing.min_tumor_mm3 must be >= 0")
        if problems:
            raise input_error(source, "; ".join(problems))
        return self


def _tumor_stage_problems(stage: TumorStageConfig) -> list[str]:
    """What makes no sense in a ``tumor_stage`` section."""
    problems = []
    if stage.pixel_size_mm <= 0:
        problems.append("tumor_stage.pixel_size_mm must be > 0")
    if stage.patch_size < 8:
        problems.append("tumor_stage.patch_size must be at least 8 pixels")
    if stage.box_margin_mm < 0 or stage.liver_jitter_mm < 0:
        problems.append("tumor_stage.box_margin_mm and liver_jitter_mm must be >= 0")
    if stage.synthetic_copies < 0 or stage.synthetic_tumors < 0:
        problems.append("tumor_stage.synthetic_copies and synthetic_tumors must be >= 0")
    if stage.max_steps is not None and stage.max_steps < 1:
        problems.append("tumor_stage.max_steps must be at least 1 (or null: the liver stage's schedule)")
    if not 0.0 <= stage.tumor_dropout <= 1.0:
        problems.append("tumor_stage.tumor_dropout must be between 0 and 1")
    if stage.beyond_liver_mm is not None and not stage.beyond_liver_mm > 0:
        problems.append("tumor_stage.beyond_liver_mm must be positive or null")
    if stage.equalization is not None and stage.equalization not in EQUALIZATIONS:
        problems.append(f"tumor_stage.equalization must be one of {', '.join(EQUALIZATIONS)} or null")
    if not 0.0 < stage.time_share < 1.0:
        problems.append("tumor_stage.time_share must be between 0 and 1 (the tumor stage's share of --max-minutes)")
    return problems


# Options a resumed run may change; every other one changes what is learned and must match the interrupted run
# (the data may move, but the split's case ids are checked separately). tumor_stage.beyond_liver_mm only goes into
# the card, for inference.
RESUME_FREE = ("data", "out", "runtime", "optimization.epochs", "optimization.early_stopping_patience",
               "postprocessing", "tumor_stage.beyond_liver_mm")


# Options added since runs that may be resumed, whose defaults do what those runs did (nothing): a saved
# configuration that lacks them resumes as if it held their defaults.
ADDED_OFF = ("synthesis", "optimization.ema_decay", "augmentation.phase_probability", "augmentation.phase_liver_shift",
             "augmentation.phase_tumor_shift", "tumor_stage.augmentation")


def resume_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts and matter for ``--resume``."""
    filled: dict[str, Any] = copy.deepcopy(dict(saved))
    defaults = TrainConfig().to_dict()
    for key in ADDED_OFF:
        *sections, name = key.split(".")
        into, default = filled, defaults
        for section in sections:
            if section not in into:  # a whole section missing is a difference of its own
                break
            into, default = into[section], default[section]
        else:
            into.setdefault(name, default[name])
    return [key for key, (old, new) in _flat_pairs(filled, current)
            if old != new and not any(key == free or key.startswith(free + ".") for free in RESUME_FREE)]


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> TrainConfig:
    """The defaults, updated from the YAML file at ``path`` (if any), then from ``overrides`` (dotted key -> value)."""
    values: dict[str, Any] = {}
    source = "configuration"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise input_error(path, f"cannot read the configuration file ({error.strerror or error})") from None
        except yaml.YAMLError as error:
            raise input_error(path, f"not valid YAML ({error})") from None
        if not isinstance(loaded, dict):
            raise input_error(path, "a configuration file must be a mapping of sections to options")
        values = loaded
    config = TrainConfig.from_dict(values, source)
    config = apply_overrides(config, overrides)
    return config.check(source)


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> TrainConfig:
    """A copy of ``config`` with ``overrides`` (a dict or pairs of dotted key -> value) applied."""
    values = config.to_dict()
    for key, value in dict(overrides).items():
        section = values
        *parents, name = key.split(".")
        for parent in parents:
            section = section.setdefault(parent, {})
            if not isinstance(section, dict):
                raise input_error(f"--set {key}", f"'{parent}' is an option, not a section")
        section[name] = value
    return TrainConfig.from_dict(values, "command line")


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"section.key=value"`` -> ``("section.key", value)`` with the value read as YAML (numbers, null, lists)."""
    key, separator, raw = text.partition("=")
    if not separator or not key.strip():
        raise input_error(f"--set {text}", "expected KEY=VALUE, e.g. optimization.epochs=20")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise input_error(f"--set {text}", "the value is not valid YAML") from None


def write_config(config: TrainConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (the file ``--config`` reads back)."""
    with atomic_path(path) as temporary:
        temporary.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


_Section = TypeVar("_Section", bound=DataclassInstance)


def _build(cls: type[_Section], values: object, source: str | Path, prefix: str) -> _Section:
    if not isinstance(values, dict):
        raise input_error(source, f"'{prefix.rstrip('.') or 'the file'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise input_error(source, f"unknown option(s) {', '.join(prefix + str(name) for name in unknown)}; "
                                  f"known: {', '.join(prefix + name for name in sorted(known))}")
    arguments: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints[name]
        if hint is PreprocessingParams:
            arguments[name] = _preprocessing(value, source, f"{prefix}{name}")
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            arguments[name] = _build(hint, value if value is not None else {}, source, f"{prefix}{name}.")
        else:
            arguments[name] = _coerce(value, hint, source, prefix + name)
    return cls(**arguments)


def _preprocessing(values: object, source: str | Path, key: str) -> PreprocessingParams:
    """The :class:`PreprocessingParams` of a (partial) mapping, its defaults filling the rest; InputError naming
    ``key`` when it holds an unknown parameter or a bad value."""
    if not isinstance(values, dict):
        raise input_error(source, f"{key} must be dict, got {values!r}")
    try:
        return PreprocessingParams.from_dict({**PreprocessingParams().to_dict(), **values})
    except (TypeError, ValueError) as error:
        raise input_error(key, str(error)) from None


def _coerce(value: object, hint: Any, source: str | Path, key: str) -> object:
    allowed = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, str):
        # YAML 1.1 reads 3e-4 (no dot) as a string; take it as the number it obviously is.
        try:
            return float(value)
        except ValueError:
            pass
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind in (str, dict) and isinstance(value, kind):
            return value
    names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in allowed)
    raise input_error(source, f"{key} must be {names}, got {value!r}")


def _flat_pairs(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = ""
                ) -> Iterator[tuple[str, tuple[Any, Any]]]:
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            yield from _flat_pairs(old, new, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", (old, new)
