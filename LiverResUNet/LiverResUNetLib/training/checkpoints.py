"""The resumable state of a training run, written atomically so that a kill at any moment loses little.

A checkpoint holds plain data only (tensors, numbers, strings, lists, dicts) and is read with
``torch.load(weights_only=True)``: opening one never runs code. Randomness is not stored because the
training loop derives every random draw from (seed, epoch, step).
"""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from LiverResUNetLib.atomic import atomic_path
from LiverResUNetLib.errors import input_error

CHECKPOINT_FORMAT = "LiverResUNet-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (a dict of plain data and tensors) to ``path`` in one atomic replace."""
    with atomic_path(path) as temporary:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, temporary)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; InputError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "no checkpoint to resume from (train without --resume to start a new run)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise input_error(path, f"not a readable training checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise input_error(path, "not a LiverResUNet training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise input_error(path, f"checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}; "
                                "start a new run")
    return state
