"""One command line: ``phantom``, ``prepare``, ``train``, ``evaluate``, ``segment``, ``predict``, ``review``.

The same arguments work as ``python -m LiverResUNetLib ...`` and under
``Slicer --no-main-window --python-script LiverResUNetTrainer/LiverResUNetTrainer.py ...``.
Each command is a module of ``LiverResUNetLib.app`` (see its docstring). Only the command being run gets its
arguments added, so ``--help`` and one command never need another command's optional packages (PyYAML for
``train``, torch for those that run the network).
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from LiverResUNetLib.app import evaluate, phantom, predict, prepare, segment, train
from LiverResUNetLib.app.review import command as review
from LiverResUNetLib.errors import InputError

COMMANDS: dict[str, ModuleType] = {"phantom": phantom, "prepare": prepare, "train": train, "evaluate": evaluate,
                                   "segment": segment, "predict": predict,
                                   "review": review}


def program_name() -> str:
    """How the user started the commands: ``liverresunet``, ``python -m LiverResUNetLib`` or the trainer script."""
    name = Path(sys.argv[0]).name
    return "python -m LiverResUNetLib" if name in ("__main__.py", "") else name


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, with the arguments of ``command`` (the one to run; None: only the list)."""
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Liver and liver-tumor segmentation of abdominal CT with a 2D ResUNet.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=module.SUMMARY,
                                          description=(module.__doc__ or module.SUMMARY).strip(),
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == command:
            module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user mistakes print one line on standard error and give exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((argument for argument in argv if argument in COMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
