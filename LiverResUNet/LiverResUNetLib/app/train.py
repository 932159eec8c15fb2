"""Train the 2D ResUNet on a prepared DATASET (or a raw 3D-IRCADb-01 / LiTS / MSD folder) into a RUN folder.

Patients are split into training and validation (patient-wise, seeded; --folds K for K-fold
cross-validation). Batches over-sample slices with liver and tumor; the loss is soft Dice + cross-entropy;
AdamW with warm-up and a cosine schedule; the best model by validation Dice is kept; training stops early
when validation stops improving, after --max-minutes, or after the last epoch. --val-fraction 0 trains on
every patient with no validation (nnU-Net's fold "all", for small cohorts): the whole schedule runs and the
last model is kept.

RUN receives model.pth (the best model, or the last one without validation, with its card), checkpoint.pth
(rewritten atomically during training, for --resume), history.json and config.yaml (every option used).
Progress goes to standard error; the last line on standard output is the model file's path, so
`train ... | tail -n 1` feeds `segment --model`.
With --folds K (and no --fold) every fold is trained into RUN/fold_<i> and each model path is printed.

Options come from the defaults, then --config FILE (see LiverResUNetTrainer/Resources/config.yaml, which
documents every option), then --set SECTION.KEY=VALUE, then the flags below.

Several processes (GPUs or CPU slots) train one model with torch's DDP:
  torchrun --nproc_per_node=2 -m LiverResUNetLib train --data DATASET --out RUN
"""

import argparse
import functools
import os
import sys
from pathlib import Path

from LiverResUNetLib.errors import input_error
from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "train the ResUNet; prints the model file's path last"
# Flags that set one config option each: (flag, dotted key, type, metavar, help).
FLAGS = (
    ("--epochs", "optimization.epochs", int, "N", "number of epochs"),
    ("--steps-per-epoch", "optimization.steps_per_epoch", int, "N", "batches per epoch"),
    ("--batch-size", "optimization.batch_size", int, "N", "slices per batch and process"),
    ("--lr", "optimization.learning_rate", float, "RATE", "peak AdamW learning rate"),
    ("--patience", "optimization.early_stopping_patience", int, "EPOCHS",
     "stop after this many epochs without a better validation Dice; 0 never stops early"),
    ("--val-fraction", "split.val_fraction", float, "F",
     "share of patients held out for validation when not cross-validating; 0 trains on every patient with no "
     "validation (nnU-Net's fold \"all\", for small cohorts): the full schedule runs and the last model is kept"),
    ("--folds", "split.folds", int, "K", "K-fold cross-validation over patients; trains every fold unless --fold"),
    ("--fold", "split.fold", int, "I", "train only fold I (0..K-1) of --folds K"),
    ("--seed", "seed", int, "S", "seed of the split, the initial weights, sampling and augmentation"),
    ("--device", "runtime.device", str, "DEVICE", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"),
    ("--max-minutes", "runtime.max_minutes", float, "M",
     "stop after M minutes of training of the whole run (every --resume included), validate, keep the best "
     "model; the learning-rate schedule follows the clock; --resume with a larger M trains on"),
    ("--threads", "runtime.threads", int, "N", "CPU threads torch may use (default: torch's choice)"),
    ("--tumor-shapes", "tumor_stage.tumor_shapes", str, "DIR",
     "label maps without CT (<patient>/MASKS_DICOM.zip, as 3D-IRCADb-01): their real tumor shapes are pasted into "
     "the training CTs' livers for the tumor stage"),
    ("--synthetic-cts", "synthesis.label_maps", str, "DIR",
     "label maps without CT (<patient>/MASKS_DICOM.zip, as 3D-IRCADb-01): whole synthetic CTs are generated from "
     "them (every structure drawn with random intensities, the liver's learnt from the training CTs) and added to "
     "both stages' training cases, never validated; --set synthesis.copies=N makes N per label map"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from LiverResUNetLib.training.config import TrainConfig

    parser.add_argument("--data", metavar="DATASET",
                        help="a prepared DATASET folder (from `prepare`), or a raw 3D-IRCADb-01, LiTS or MSD Task03 "
                             "folder (read and prepared in memory)")
    parser.add_argument("--out", metavar="RUN",
                        help="RUN folder for model.pth, checkpoint.pth, history.json, config.yaml")
    parser.add_argument("--config", metavar="YAML", help="configuration file; any subset of the documented one")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any configuration option, e.g. --set augmentation.rotation_degrees=20 "
                             "(repeatable; values are read as YAML)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out from its checkpoint.pth; without --config the "
                             "run's own config.yaml is used, so `train --out RUN --resume` is enough (only --epochs, "
                             "--patience, --device, --max-minutes and --threads may change)")
    defaults = TrainConfig().to_dict()
    for flag, key, kind, metavar, text in FLAGS:
        default = functools.reduce(lambda section, name: section[name], key.split("."), defaults)
        shown = "" if default is None else f" (default {default})"
        parser.add_argument(flag, dest=key, type=kind, default=None, metavar=metavar, help=text + shown)


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.training.config import load_config, parse_assignment
    from LiverResUNetLib.training.loop import CONFIG_FILE, small_cohort_notice, train_cross_validation, train_model

    overrides = dict(parse_assignment(text) for text in args.assignments)
    overrides.update({key: getattr(args, key) for _, key, *_ in FLAGS if getattr(args, key) is not None})
    overrides.update({key: getattr(args, key) for key in ("data", "out") if getattr(args, key) is not None})
    config_path = args.config
    if args.resume and config_path is None and args.out and (Path(args.out) / CONFIG_FILE).is_file():
        config_path = Path(args.out) / CONFIG_FILE
    config = load_config(config_path, overrides)
    for key in ("data", "out"):
        if getattr(config, key) is None:
            raise input_error(f"--{key}", "required (on the command line or in the configuration file)")
    # One process draws the progress: under torchrun every other rank trains silently.
    progress = ProgressReporter(interval=2.0) if int(os.environ.get("RANK", "0")) == 0 else None
    if progress is not None and (notice := small_cohort_notice(config)):
        print(notice, file=sys.stderr, flush=True)
    if config.split.folds is not None and config.split.fold is None:
        paths = train_cross_validation(config, progress, resume=args.resume)
    else:
        paths = [train_model(config, progress, resume=args.resume)]
    if progress is not None:
        progress.close()
        for path in paths:
            print(path, flush=True)
    return 0
