"""Model files: the network's weights and a JSON card in one file that can be opened without running code.

The file is a PyTorch archive holding only a dict of plain data: the format name, the card as a JSON
string and the state dict (tensors). It is read with ``torch.load(weights_only=True)``, whose unpickler
refuses every object that is not a tensor or plain data, so a crafted file cannot execute anything.
The archive (a zip file) also holds the card as a plain JSON record, so that showing a model's card reads
that record with ``zipfile`` and ``json`` alone: no torch, nothing unpickled. Files written before the
record existed are read with ``torch.load(weights_only=True)``.
The card says everything needed to use the weights: the architecture, the preprocessing the network was
trained with, the class names, how it was trained, its validation metrics and the software versions.
A cascade's file also holds its tumor stage: the second network's weights (``tumor_weights``) and, in the
card's ``tumor_stage`` section, its architecture, preprocessing and liver-box margin (see model/cascade.py).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import pickle
import platform
import re
import typing
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from LiverResUNetLib import __version__
from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.volume import LABEL_NAMES

if typing.TYPE_CHECKING:
    import torch

    from LiverResUNetLib.model.resunet import ResUNet

FILE_FORMAT = "LiverResUNet-model"
# 2: a card may hold a tumor stage (a reader of format 1 would ignore it and segment with the liver stage alone).
FORMAT_VERSION = 2
TUMOR_STAGE = "tumor_stage"
# The card as JSON, in the archive's folder beside torch's records (which torch ignores when loading).
CARD_RECORD = "card.json"
_SHOWN_DIFFERENCES = 5


@dataclass
class LoadedModel:
    """A network ready for inference and the card that says how to feed it."""

    network: torch.nn.Module
    card: dict[str, Any]
    path: Path | None = None
    tumor_network: "torch.nn.Module | None" = None

    @property
    def preprocessing(self) -> PreprocessingParams:
        """The :class:`PreprocessingParams` the network was trained with."""
        return PreprocessingParams.from_dict(self.card["preprocessing"])

    @property
    def tumor_preprocessing(self) -> PreprocessingParams | None:
        """The tumor stage's :class:`PreprocessingParams`; None for a single-stage model."""
        stage = self.card.get(TUMOR_STAGE)
        return None if stage is None else PreprocessingParams.from_dict(stage["preprocessing"])


def new_card(architecture: Mapping[str, Any], preprocessing: PreprocessingParams | dict[str, Any],
             training: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A model card for a network of ``architecture`` fed with ``preprocessing`` (a dict or PreprocessingParams).

    ValueError when the two do not fit together (input channels, input size), so a mismatch is found
    when the model is saved rather than when a user opens it.
    """
    import torch

    params = preprocessing if isinstance(preprocessing, PreprocessingParams) \
        else PreprocessingParams.from_dict(preprocessing)
    fitting_network(architecture, params)
    return {
        "format_version": FORMAT_VERSION,
        "architecture": dict(architecture),
        "preprocessing": params.to_dict(),
        "class_names": list(LABEL_NAMES),
        "training": training or {},
        "metrics": metrics or {},
        "software": {"liverresunet": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def fitting_network(architecture: Mapping[str, Any], params: PreprocessingParams) -> ResUNet:
    """The network ``architecture`` describes; ValueError when it cannot take slices preprocessed with ``params``
    (input channels, input size) or when ``architecture`` describes no network this version builds."""
    from LiverResUNetLib.model.resunet import build_network

    network = build_network(architecture)
    problem = _mismatch(network, params)
    if problem:
        raise ValueError(problem)
    return network


def model_identity(card: dict[str, Any]) -> str:
    """A short, stable name of a trained model (12 hex digits of its card's digest), e.g. in DICOM SEG headers.

    The card records when and on what the model was trained, so two trainings never share it.
    """
    return hashlib.sha256(json.dumps(card, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def save_model(path: str | Path, network: torch.nn.Module, card: dict[str, Any],
               tumor_network: torch.nn.Module | None = None) -> Path:
    """Write ``network``'s weights and ``card`` to ``path`` atomically (a crash leaves no half-written file).

    A card with a tumor stage needs its ``tumor_network``, and a tumor network needs that section.
    """
    import torch

    stage = card.get(TUMOR_STAGE)
    if (stage is None) != (tumor_network is None):
        raise ValueError("a tumor network and the card's tumor_stage section go together")
    text = json.dumps(card)
    content: dict[str, Any] = {"format": FILE_FORMAT, "card": text, "weights": _checked_weights(network, card)}
    if stage is not None and tumor_network is not None:
        content["tumor_weights"] = _checked_weights(tumor_network, stage)
    with atomic_path(path) as temporary:
        torch.save(content, temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(f"{_archive_folder(archive)}/{CARD_RECORD}", text)
    return Path(path)


def _checked_weights(network: torch.nn.Module, described: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``network``'s weights on the CPU; ValueError unless they fit the architecture ``described`` holds."""
    from LiverResUNetLib.model.resunet import build_network

    differences = _state_differences(build_network(described["architecture"]).state_dict(), network.state_dict())
    if differences:
        raise ValueError(f"the network does not match the card's architecture: {differences}")
    return {name: value.detach().to("cpu").contiguous() for name, value in network.state_dict().items()}


def read_card(path: str | Path) -> dict[str, Any]:
    """The card of the model file ``path``, without its weights and, for files holding the card's JSON record,
    without torch (the Slicer module shows it before PyTorch is installed). The card is checked as
    :func:`load_model` checks it, except that the architecture is built, and the weights checked against it,
    only when the model is loaded."""
    _check_archive(path)
    text = _card_record(path)
    if text is None:
        return _read_file(path, mmap=True)[0]
    return _parse_card(text, path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file as a :class:`LoadedModel` whose network is on ``device``, in evaluation mode.

    Raises:
        InputError: naming the file and the reason: missing, truncated or corrupt, not a model file,
            holding objects that are not plain data, written by a newer version, or weights that do not
            match the card's architecture (the differing parameters are named).
    """
    card, weights, tumor_weights = _read_file(path, mmap=False)
    network = _network_of(card, weights, path, "")
    tumor_network = None
    if card.get(TUMOR_STAGE) is not None and tumor_weights is not None:
        tumor_network = _network_of(card[TUMOR_STAGE], tumor_weights, path, "tumor stage's ").to(device).eval()
    return LoadedModel(network.to(device).eval(), card, Path(path), tumor_network)


def _network_of(described: dict[str, Any], weights: dict[str, torch.Tensor], path: str | Path,
                which: str) -> ResUNet:
    """The network the ``architecture`` of ``described`` (a card or its tumor stage) builds, holding ``weights``."""
    from LiverResUNetLib.model.resunet import build_network

    network = build_network(described["architecture"])
    differences = _state_differences(network.state_dict(), weights)
    if differences:
        raise input_error(path, f"the {which}weights do not fit the {described['architecture'].get('name', 'ResUNet')}"
                                f" architecture described in its card: {differences}")
    network.load_state_dict(weights)
    return network


def _read_file(path: str | Path, mmap: bool
               ) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """``(card, weights, tumor weights or None)`` of a model file, every refusal as an InputError naming ``path``."""
    import torch

    path = Path(path)
    _check_archive(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(error))
        raise input_error(path, "refused: the file holds objects that are not weights or plain data"
                                + (f" (it asks for {wanted.group(1)})" if wanted else "")
                                + "; a model file must never run code when opened") from None
    except (RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise input_error(path, f"truncated or corrupt model file ({_first_line(error)})") from None
    if not isinstance(content, dict) or content.get("format") != FILE_FORMAT:
        raise input_error(path, "not a LiverResUNet model file (it has no model card)")
    record = _card_record(path)
    if record is not None and record != content.get("card"):
        raise input_error(path, f"the model card's JSON record ({CARD_RECORD}) differs from the card beside the "
                                "weights")
    card = _parse_card(content.get("card"), path)
    _check_network(card, path)
    weights = content.get("weights")
    if not _is_weights(weights):
        raise input_error(path, "the model file holds no weights")
    tumor_weights = content.get("tumor_weights")
    if card.get(TUMOR_STAGE) is not None and not _is_weights(tumor_weights):
        raise input_error(path, "the model card describes a tumor stage but the file holds no tumor_weights")
    return card, weights, tumor_weights if _is_weights(tumor_weights) else None


def _is_weights(weights: object) -> TypeGuard[dict[str, torch.Tensor]]:
    """Whether ``weights`` is what torch saved of a state dict: names and tensors."""
    import torch

    return isinstance(weights, dict) and all(isinstance(value, torch.Tensor) for value in weights.values())


def _check_archive(path: str | Path) -> None:
    """InputError unless ``path`` is a whole zip archive (every model file is one)."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "model file does not exist")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as stream:
            is_zip_start = stream.read(4) == b"PK\x03\x04"
        raise input_error(path, "truncated or corrupt model file (its archive is incomplete)" if is_zip_start
                          else "not a LiverResUNet model file")


def _archive_folder(archive: zipfile.ZipFile) -> str:
    """The folder that torch puts every record of its archive in."""
    names = archive.namelist()
    return names[0].split("/")[0] if names else ""


def _card_record(path: str | Path) -> str | None:
    """The text of the card's JSON record in the archive ``path``; None when it has none (an older file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = f"{_archive_folder(archive)}/{CARD_RECORD}"
            if name not in archive.namelist():
                return None
            return archive.read(name).decode("utf-8")
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
        raise input_error(path, f"truncated or corrupt model file ({_first_line(error)})") from None


def _parse_card(text: object, path: str | Path) -> dict[str, Any]:
    """The card whose JSON is ``text`` (whatever the file holds in the card's place), checked by :func:`_check_card`."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise input_error(path, f"the model card is not valid JSON (it is {type(text).__name__}, not text)")
    try:
        card = json.loads(text)
    except json.JSONDecodeError as error:
        raise input_error(path, f"the model card is not valid JSON ({error})") from None
    return _check_card(card, path)


def _check_card(card: object, path: str | Path) -> dict[str, Any]:
    """``card``, or an InputError unless it is one this version can use (its network aside: see
    :func:`_check_network`)."""
    if not isinstance(card, dict):
        raise input_error(path, "the model card is not a JSON object")
    version = card.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise input_error(path, f"the model card has no valid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise input_error(path, f"written by a newer LiverResUNet (model format {version}; this version reads up "
                                f"to {FORMAT_VERSION}): update the extension to use this model")
    missing = [key for key in ("architecture", "preprocessing", "class_names") if key not in card]
    if missing:
        raise input_error(path, f"the model card lacks {', '.join(missing)}")
    if list(card["class_names"]) != list(LABEL_NAMES):
        raise input_error(path, f"the model's classes {card['class_names']} are not {list(LABEL_NAMES)}")
    try:
        PreprocessingParams.from_dict(card["preprocessing"])
    except (TypeError, ValueError) as error:
        raise input_error(path, f"the model card is not usable: {error}") from None
    if card.get(TUMOR_STAGE) is not None:
        _check_tumor_stage(card[TUMOR_STAGE], path)
    if card.get("postprocessing") is not None:
        from LiverResUNetLib.inference.postprocessing import PostprocessOptions

        try:
            PostprocessOptions.from_dict(card["postprocessing"])
        except (TypeError, ValueError) as error:
            raise input_error(path, f"the model card's post-processing is not usable: {error}") from None
    return card


def _check_tumor_stage(stage: object, path: str | Path) -> None:
    """InputError unless a card's ``tumor_stage`` section says how to feed its network."""
    if not isinstance(stage, dict) or any(key not in stage for key in ("architecture", "preprocessing",
                                                                          "box_margin_mm")):
        raise input_error(path, "the model card's tumor_stage lacks architecture, preprocessing or box_margin_mm")
    try:
        params = PreprocessingParams.from_dict(stage["preprocessing"])
    except (TypeError, ValueError) as error:
        raise input_error(path, f"the model card's tumor stage is not usable: {error}") from None
    if not params.liver_channel or params.pixel_size_mm is None:
        raise input_error(path, "the model card's tumor stage must take the liver mask (liver_channel) at a pixel "
                                "size in mm")
    if not isinstance(stage["box_margin_mm"], (int, float)) or stage["box_margin_mm"] < 0:
        raise input_error(path, f"the tumor stage's box_margin_mm must be >= 0, got {stage['box_margin_mm']!r}")
    reach = stage.get("beyond_liver_mm")
    if reach is not None and (not isinstance(reach, (int, float)) or reach <= 0):
        raise input_error(path, f"the tumor stage's beyond_liver_mm must be > 0, got {reach!r}")


def _check_network(card: dict[str, Any], path: str | Path) -> None:
    """InputError unless the card's architecture can be built and takes its preprocessing's slices."""
    from LiverResUNetLib.model.resunet import build_network

    for described in (card, card.get(TUMOR_STAGE)):
        if described is None:
            continue
        try:
            network = build_network(described["architecture"])
        except (TypeError, ValueError) as error:
            raise input_error(path, f"the model card is not usable: {error}") from None
        problem = _mismatch(network, PreprocessingParams.from_dict(described["preprocessing"]))
        if problem:
            raise input_error(path, problem)


def _mismatch(network: ResUNet, params: PreprocessingParams) -> str | None:
    """Why ``network`` cannot take slices preprocessed with ``params`` (None if it can)."""
    channels = network.stem.in_channels
    if channels != params.channels:
        return (f"the network takes {channels} input channels but the preprocessing gives {params.channels} "
                f"(context_slices={params.context_slices})")
    if params.input_size % network.size_multiple:
        return f"input_size {params.input_size} is not a multiple of {network.size_multiple}, as the network needs"
    return None


def _state_differences(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """What differs between two state dicts (missing, unexpected, other shapes), or "" when they match."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    shapes = [f"{name} {tuple(found[name].shape)} instead of {tuple(expected[name].shape)}"
              for name in expected if name in found and found[name].shape != expected[name].shape]
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("other shape", shapes)):
        if names:
            shown = ", ".join(names[:_SHOWN_DIFFERENCES])
            more = f" and {len(names) - _SHOWN_DIFFERENCES} more" if len(names) > _SHOWN_DIFFERENCES else ""
            parts.append(f"{len(names)} {label}: {shown}{more}")
    return "; ".join(parts)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
