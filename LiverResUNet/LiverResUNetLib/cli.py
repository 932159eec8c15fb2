"""One command line: ``phantom``, ``prepare``, ``train``, ``evaluate``, ``segment``, ``predict``, ``review``.

The same arguments work as ``python -m LiverResUNetLib ...`` and under
``Slicer --no-main-window --python-script LiverResUNetTrainer/LiverResUNetTrainer.py ...``.
Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules import their heavy dependencies (torch, MRML) inside ``run`` so that ``--help`` is instant.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from LiverResUNetLib.errors import InputError

COMMANDS = {
    "phantom": ("LiverResUNetLib.phantom.command",
                "generate a synthetic abdominal CT cohort in the 3D-IRCADb-01 layout"),
    "prepare": ("LiverResUNetLib.datasets.prepare",
                "convert a raw 3D-IRCADb-01 / LiTS / MSD folder into one image/label folder per case"),
    "train": ("LiverResUNetLib.training.command", "train the ResUNet; prints the model file's path last"),
    "evaluate": ("LiverResUNetLib.evaluation.command",
                 "score a model on a dataset: JSON, CSV and HTML report"),
    "segment": ("LiverResUNetLib.scene.segment_command",
                "segment CT series or images into .seg.nrrd / label maps, with a results table"),
    "predict": ("LiverResUNetLib.inference.command",
                "label one CT image file (no MRML): the network's part of the Slicer module's Apply"),
    "review": ("LiverResUNetLib.app.review.command",
               "review and correct a segmentation lesion by lesion in the browser (trame-slicer)"),
}


def print_progress(fraction, message):
    """A command's progress line on standard error: ``[ 40%] message``."""
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def program_name() -> str:
    """How the user started the commands: ``liverresunet``, ``python -m LiverResUNetLib`` or the trainer script."""
    name = Path(sys.argv[0]).name
    return "python -m LiverResUNetLib" if name in ("__main__.py", "") else name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Liver and liver-tumor segmentation of abdominal CT with a 2D ResUNet.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        subparser = subparsers.add_parser(name, help=summary, description=(module.__doc__ or summary).strip(),
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user mistakes print one line on standard error and give exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
