"""The training loop: epochs of balanced, augmented batches, validation on whole held-out volumes, checkpoints.

A run folder holds ``model.pth`` (the best model by validation Dice, or the last one when the split holds
no validation patient, in the inference format with its card),
``checkpoint.pth`` (everything needed to continue, rewritten atomically every few steps and after each
epoch), ``history.json`` and ``config.yaml`` (the resolved configuration). While training it also holds
``slice_store/``, every case's preprocessed slices memory-mapped (see ``slices.py``), and with synthetic CTs
``synthetic_cts/`` (``synthetic_ct.py``), both removed when training ends.
``train_model(..., resume=True)`` continues from ``checkpoint.pth``; because every random draw depends
only on (seed, epoch, step), the resumed run sees the very batches the interrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LiverResUNetLib.atomic import atomic_path, remove_partial_files
from LiverResUNetLib.callbacks import CancelCheck, Progress
from LiverResUNetLib.datasets.cases import Case, CaseSource
from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.devices import pick_device
from LiverResUNetLib.errors import Cancelled, input_error
from LiverResUNetLib.evaluation.metrics import mean_sd
from LiverResUNetLib.model.cascade import write_cascade
from LiverResUNetLib.model.model_file import fitting_network, load_model, new_card, save_model
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.training import distributed, synthetic_ct, tumor_stage
from LiverResUNetLib.training.augmentation import augment_batch
from LiverResUNetLib.training.batches import StepBatches, default_workers, step_seed
from LiverResUNetLib.training.checkpoints import load_checkpoint, save_checkpoint
from LiverResUNetLib.training.config import TrainConfig, resume_differences, write_config
from LiverResUNetLib.training.loss import DiceCrossEntropyLoss
from LiverResUNetLib.training.sampling import BalancedSliceSampler, SharedSliceSampler
from LiverResUNetLib.training.slices import SliceSet, SliceStore, write_slice_store
from LiverResUNetLib.training.splits import SMALL_COHORT, Split, default_val_fraction, make_splits
from LiverResUNetLib.training.validation import validate
from LiverResUNetLib.volume import LIVER

MODEL_FILE, CHECKPOINT_FILE, HISTORY_FILE, CONFIG_FILE = "model.pth", "checkpoint.pth", "history.json", "config.yaml"
STORE_FOLDER = "slice_store"
# The synthetic CTs of a run (synthesis.label_maps), generated once for the stages that train on them, removed when
# training ends.
SYNTHETIC_FOLDER = "synthetic_cts"


def train_model(config: TrainConfig, progress: Progress | None = None, resume: bool = False,
                cancel: CancelCheck | None = None) -> Path:
    """Train on ``config.data`` into ``config.out`` and return the path of the best model file.

    With ``split.folds`` set and no ``split.fold``, use :func:`train_cross_validation` instead.

    Args:
        config: a checked :class:`TrainConfig` (``data`` and ``out`` set).
        progress: ``progress(fraction, message)``, called on the main process only.
        resume: continue the run in ``config.out`` from its checkpoint.
        cancel: ``cancel() -> bool``; when it returns True training stops with ``errors.Cancelled``
            (the last checkpoint stays, so ``resume`` continues from there).
    """
    if config.split.folds is not None and config.split.fold is None:
        raise input_error(config.out, "cross-validation trains several models: use train_cross_validation")
    with _training_data(config, progress) as dataset:
        liver_model = _Run(config, dataset, dataset.splits[0], progress, cancel).train(resume)
        return _with_tumor_stage(liver_model, config, dataset, dataset.splits[0], progress, cancel, resume)


def small_cohort_notice(config: TrainConfig) -> str | None:
    """The line that says a small cohort is trained whole by default (None when it is not the case)."""
    if config.data is None or config.split.folds is not None or config.split.val_fraction is not None:
        return None
    patients = len(discover_cases(config.data))
    if default_val_fraction(patients) > 0:
        return None
    return (f"{patients} patient{'s' if patients > 1 else ''} (fewer than {SMALL_COHORT}): training on every patient "
            "with the fixed schedule, none held out (fold \"all\"); --val-fraction F holds some out")


def train_cross_validation(config: TrainConfig, progress: Progress | None = None, resume: bool = False,
                           cancel: CancelCheck | None = None) -> list[Path]:
    """Train every fold of ``split.folds`` into ``OUT/fold_<i>``; returns the model paths, fold by fold.

    Writes ``OUT/cross_validation.json`` with each fold's best validation Dice and their mean and sd.
    """
    with _training_data(config, progress) as dataset:
        if dataset.context.is_main:
            write_config(dataset.config, _out(config) / CONFIG_FILE)
        paths, folds = [], []
        for split in dataset.splits:
            fold_config = _replace(config, out=str(_out(config) / f"fold_{split.fold}"), fold=split.fold)
            run = _Run(fold_config, dataset, split, progress, cancel)
            # Resuming cross-validation continues the interrupted fold; folds not started yet start afresh.
            liver_model = run.train(resume and (_out(fold_config) / CHECKPOINT_FILE).exists())
            paths.append(_with_tumor_stage(liver_model, fold_config, dataset, split, progress, cancel, resume))
            folds.append({"fold": split.fold, "val": split.val, "model": str(paths[-1]), **run.state["best"]})
    if dataset.context.is_main:
        _write_json(_out(config) / "cross_validation.json", {
            "method": f"patient-wise {config.split.folds}-fold cross-validation", "seed": config.seed,
            "folds": folds, "summary": {key: mean_sd([fold[key] for fold in folds])
                                        for key in ("val_liver_dice", "val_tumor_dice")}})
    return paths


@dataclass
class _TrainingData:
    """Every case's slices (computed once, in a store), the splits, the resolved configuration and architecture."""

    context: distributed.DistributedContext
    config: TrainConfig
    architecture: dict[str, Any]
    sources: dict[str, CaseSource]
    store: SliceStore
    splits: list[Split]


@contextlib.contextmanager
def _training_data(config: TrainConfig, progress: Progress | None) -> Iterator[_TrainingData]:
    """The :class:`_TrainingData` of ``config``; afterwards the DDP group is left and the slice store removed.

    The run folder is removed too if the store was all it held (a run that failed before its first file).
    """
    out = _out(config)
    created = not out.exists()
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        dataset = _load_training_data(config, progress)
        yield dataset
        distributed.stop_distributed(dataset.context)
    finally:
        if main:
            shutil.rmtree(out / STORE_FOLDER, ignore_errors=True)
            shutil.rmtree(out / SYNTHETIC_FOLDER, ignore_errors=True)
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()


def _load_training_data(config: TrainConfig, progress: Progress | None) -> _TrainingData:
    """Resolve the network and preprocessing, join the DDP group, store every case's slices, split by patient."""
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    context = distributed.start_distributed(pick_device(config.runtime.device))
    params = config.preprocessing
    architecture = {**default_architecture(), "in_channels": params.channels, **config.network}
    if architecture["in_channels"] != params.channels:
        raise input_error("network.in_channels", f"is {architecture['in_channels']} but "
                                                 f"preprocessing.context_slices={params.context_slices} "
                                                 f"gives {params.channels} input channels")
    try:
        network = fitting_network(architecture, params)
    except (TypeError, ValueError) as error:
        raise input_error("network", f"does not fit the preprocessing: {error}") from None
    tumor_stage.check_tumor_stage(config, architecture, params)
    patch, multiple = config.sampling.patch_size, network.size_multiple
    if patch is not None and patch < params.input_size and patch % multiple:
        raise input_error("sampling.patch_size", f"{patch} must be a multiple of {multiple} (or at least "
                                                 f"preprocessing.input_size, {params.input_size}: whole slices)")
    sources = {source.case_id: source for source in discover_cases(_required(config.data, "data"))}
    # Only the main process generates synthetic CTs (it writes the stores): only it learns their intensities.
    synthetic = synthetic_ct.training_sources(config.synthesis, config.seed, list(sources.values()),
                                              _out(config) / SYNTHETIC_FOLDER, learn=context.is_main,
                                              progress=progress if context.is_main else None)
    folder = _out(config) / STORE_FOLDER
    if context.is_main:
        write_slice_store(list(sources.values()) + synthetic, params, folder, progress)
    distributed.wait_for_main(context)
    store = SliceStore.open(folder)
    has_tumor = {case: store.has_tumor(position) for position, case in enumerate(store.case_ids) if case in sources}
    splits = make_splits(list(has_tumor), config.split, config.seed, has_tumor, source=config.data)
    sources.update((source.case_id, source) for source in synthetic)
    return _TrainingData(
        context=context, architecture=architecture, sources=sources, store=store,
        config=_replace(tumor_stage.liver_stage_config(config), network=architecture),
        splits=[_with_synthetic(split, [source.case_id for source in synthetic], config.synthesis.share)
                for split in splits])


def _with_synthetic(split: Split, cases: list[str], share: float | None) -> Split:
    """``split`` with the synthetic ``cases`` added to its training cases (they are never validated)."""
    if not cases:
        return split
    drawn = "drawn alike with the real CTs" if share is None else f"{share:.0%} of every batch"
    return dataclasses.replace(split, train=split.train + cases,
                               method=f"{split.method}; {len(cases)} synthetic CTs trained ({drawn}), never validated")


def _with_tumor_stage(liver_model: Path, config: TrainConfig, dataset: _TrainingData, split: Split,
                      progress: Progress | None, cancel: CancelCheck | None, resume: bool) -> Path:
    """Train a cascade's tumor stage on ``split``'s training patients into ``OUT/tumor_stage`` and join it to
    ``liver_model`` (the file becomes the cascade's); ``liver_model`` as it is when the tumor stage is off."""
    if not config.tumor_stage.enabled:
        return liver_model
    out = _out(config) / tumor_stage.TUMOR_STAGE_FOLDER
    stage_config, architecture, params = tumor_stage.tumor_stage_config(
        _replace(config, network=dataset.config.network), dataset.config.preprocessing, out)
    folder = out / STORE_FOLDER
    cases = [case for case in split.train if config.synthesis.tumor_stage or not synthetic_ct.is_synthetic(case)]
    if dataset.context.is_main:
        tumor_stage.write_box_store([dataset.sources[case] for case in cases], params, architecture,
                                    config.tumor_stage, config.seed, folder, progress)
    distributed.wait_for_main(dataset.context)
    try:
        store = SliceStore.open(folder)
        stage = _TrainingData(context=dataset.context, config=stage_config, architecture=architecture,
                              sources=dataset.sources, store=store,
                              splits=[Split(train=tumor_stage.store_case_ids(store, cases), val=[],
                                            seed=split.seed,
                                            method="the liver stage's training patients, none validated")])
        report = None if progress is None else (lambda fraction, message: progress(fraction, f"tumor stage: {message}"))
        run = _Run(stage_config, stage, stage.splits[0], report, cancel)
        tumor_model = run.train(resume and (out / CHECKPOINT_FILE).exists())
    finally:
        if dataset.context.is_main:
            shutil.rmtree(folder, ignore_errors=True)
    if dataset.context.is_main:
        write_cascade(liver_model, tumor_model, config.tumor_stage.box_margin_mm,
                      tumors_beyond_liver=config.tumor_stage.tumor_dropout > 0, adds_liver=True,
                      beyond_liver_mm=config.tumor_stage.beyond_liver_mm)
    distributed.wait_for_main(dataset.context)
    return liver_model


def _sampler(slices: SliceSet, config: TrainConfig, fractions: tuple[float, ...], lesions: list | None,
             context: distributed.DistributedContext) -> BalancedSliceSampler | SharedSliceSampler:
    """The run's slice sampler: synthetic CTs fill ``synthesis.share`` of every batch when the run has any."""
    synthetic = np.array([synthetic_ct.is_synthetic(case) for case in slices.case_ids], dtype=bool)
    share = config.synthesis.share
    if share is None or not synthetic.any():
        return BalancedSliceSampler(slices.categories, fractions, config.seed, context.rank, context.world_size,
                                    lesions)
    return SharedSliceSampler(synthetic[slices.case_of_slice].astype(np.int64), (1.0 - share, share),
                              slices.categories, fractions, config.seed, context.rank, context.world_size, lesions)


class _Run:
    """One model trained on one split."""

    def __init__(self, config: TrainConfig, dataset: _TrainingData, split: Split, progress: Progress | None,
                 cancel: CancelCheck | None) -> None:
        self.config = _replace(dataset.config, out=config.out, fold=config.split.fold)
        self.dataset, self.split, self.cancel = dataset, split, cancel
        self.context = dataset.context
        self.progress = progress if self.context.is_main else None
        self.out = _out(config)
        self.slices = SliceSet(dataset.store, split.train, dataset.config.preprocessing.context_slices,
                               tumor_stage.liver_jitter_pixels(self.config, dataset.config.preprocessing),
                               self.config.tumor_stage.tumor_dropout)
        fractions = (config.sampling.background_fraction, config.sampling.liver_fraction,
                     config.sampling.tumor_fraction)
        lesions = self.slices.lesions() if config.sampling.balance_lesions else None
        sampler = _sampler(self.slices, config, fractions, lesions, self.context)
        self.batches = StepBatches(self.slices, sampler, config.optimization.batch_size,
                                   config.optimization.steps_per_epoch, config.seed, self.context.rank,
                                   config.sampling.patch_size)
        torch.manual_seed(config.seed)
        self.network = distributed.synchronise_batchnorm(build_network(dataset.architecture).to(self.context.device),
                                                         self.context)
        self.model = distributed.wrap_network(self.network, self.context)
        optimization = config.optimization
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=optimization.learning_rate,
                                           weight_decay=optimization.weight_decay)
        self.loss = DiceCrossEntropyLoss(config.loss.dice_weight, config.loss.cross_entropy_weight)
        decay = config.optimization.ema_decay
        # The weights validated and saved: their moving average with ema_decay, else the network itself.
        self.averaged = torch.optim.swa_utils.AveragedModel(
            self.network, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True
        ) if decay > 0 else None
        self.kept = self.network if self.averaged is None else self.averaged.module
        self.time_used = 0.0
        stage = self.config.tumor_stage
        # A cascade's liver stage learns liver (tumors included) against background; the tumor stage, the tumors.
        self.merges_tumors = (stage.enabled and stage.liver_stage_merges_tumors
                              and not self.config.preprocessing.liver_channel)
        self.state: dict[str, Any] = {
            "epoch": 0, "step": 0, "loss_sum": 0.0, "loss_count": 0, "history": [], "best": None,
            "epochs_without_improvement": 0, "seconds": 0.0, "lr": 0.0}

    # -- the loop --------------------------------------------------------------------------------------------

    def train(self, resume: bool) -> Path:
        optimization = self.config.optimization
        self._start(resume)
        started = _clock()
        seconds_before = self.state["seconds"]
        self.time_used = self._share_of_time_limit()
        stop = self.state["epoch"] >= optimization.epochs or self._patience_exhausted() or self._time_spent()
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(()) if stop else iter(self._batch_loader())
        while not stop:
            epoch = self.state["epoch"]
            self.model.train()
            out_of_time = False
            while self.state["step"] < optimization.steps_per_epoch:
                step = self.state["step"]
                loss = self._train_step(epoch, step, *next(batches))
                self.state["loss_sum"] += loss
                self.state["loss_count"] += 1
                self.state["step"] += 1
                self.state["seconds"] = seconds_before + _clock() - started
                self.time_used = distributed.from_main(self._share_of_time_limit(), self.context)
                out_of_time = self.time_used >= 1.0
                if out_of_time:
                    break
                if self.state["step"] % self.config.runtime.checkpoint_every_steps == 0:
                    self._save_checkpoint()
                self._report(f"epoch {epoch + 1}/{optimization.epochs} step {self.state['step']}/"
                             f"{optimization.steps_per_epoch} loss "
                             f"{_format(self.state['loss_sum'] / self.state['loss_count'], 4)}")
            self._end_epoch(partial=self.state["step"] < optimization.steps_per_epoch)
            stop = out_of_time or self.state["epoch"] >= optimization.epochs or self._patience_exhausted()
        return self._finish()

    def _time_spent(self) -> bool:
        """True (and said) when a resumed run's --max-minutes is already used up: its model is kept as it is."""
        if self.time_used < 1.0:
            return False
        if self.progress:
            self.progress(1.0, f"the run's time limit of {self.config.runtime.max_minutes:g} minutes is already "
                               f"spent ({self.state['seconds'] / 60:.1f} minutes trained): nothing more to train, its "
                               "model is kept; resume with a larger --max-minutes to train on")
        return True

    def _batch_loader(self) -> torch.utils.data.DataLoader:
        """The batches of every step left in the run, in order, made ahead by ``runtime.workers`` processes."""
        optimization, workers = self.config.optimization, self.config.runtime.workers
        first_epoch, first_step = self.state["epoch"], self.state["step"]
        keys = [(epoch, step) for epoch in range(first_epoch, optimization.epochs)
                for step in range(first_step if epoch == first_epoch else 0, optimization.steps_per_epoch)]
        return self.batches.loader(keys, default_workers() if workers is None else workers,
                                   pin_memory=self.context.device.type == "cuda")

    def _train_step(self, epoch: int, step: int, images: torch.Tensor, labels: torch.Tensor) -> float:
        if self.cancel is not None and self.cancel():
            raise Cancelled("training cancelled; --resume continues from the last checkpoint")
        device = self.context.device
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        params = self.config.preprocessing
        if self.merges_tumors:
            labels = labels.clamp(max=LIVER)
        images, labels = augment_batch(images, labels, self.config.augmentation,
                                       step_seed(self.config.seed, epoch, step, self.context.rank),
                                       slice_channels=params.channels - int(params.liver_channel))
        self.state["lr"] = self._learning_rate(epoch, step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.state["lr"]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = self.model(images)
        loss = self.loss(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.network)
        return float(loss.detach())

    def _end_epoch(self, partial: bool) -> None:
        """Validate, keep the model if it is the best, record the epoch's history row and save a checkpoint.

        An epoch cut by the clock (``partial``) stays open: epoch, step and the running loss are kept, so a resume
        continues it from its next step; its history row is replaced when the epoch is validated again.
        """
        epoch = self.state["epoch"]
        distributed.share_buffers_of_main(self.kept, self.context)
        liver, tumor = validate(self.kept, self._card(), self._validation_cases(), self.context,
                                len(self.split.val)) if self.split.val else (None, None)
        loss_sum, loss_count = distributed.sum_across_processes(
            np.array([self.state["loss_sum"], self.state["loss_count"]], dtype=np.float64), self.context)
        row = {"epoch": epoch + 1, "train_loss": float(loss_sum / max(1, loss_count)),
               "val_liver_dice": liver, "val_tumor_dice": tumor,
               "lr": self.state["lr"],
               "steps": self.state["step"], "seconds": round(self.state["seconds"], 1)}
        if partial:
            row["partial"] = True
        self.state["history"] = [old for old in self.state["history"] if old["epoch"] != epoch + 1] + [row]
        score = _score(liver, tumor)
        best = self.state["best"]
        # Without validation there is nothing to choose by: the last model is the one kept.
        if best is None or not self.split.val or score > best["score"]:
            self.state["best"] = {"epoch": epoch + 1, "score": score, "val_liver_dice": liver,
                                  "val_tumor_dice": tumor}
            self.state["epochs_without_improvement"] = 0
            if self.context.is_main:
                self._save_model(self.kept)
        elif not partial:
            self.state["epochs_without_improvement"] += 1
        if not partial:
            self.state.update(epoch=epoch + 1, step=0, loss_sum=0.0, loss_count=0)
        self._save_checkpoint()
        if self.context.is_main:
            _write_json(self.out / HISTORY_FILE, {"history": self.state["history"], "best": self.state["best"]})
        self._report(f"epoch {epoch + 1}/{self.config.optimization.epochs} "
                     f"{'cut by the clock' if partial else 'done'}, loss {_format(row['train_loss'], 4)}")

    def _finish(self) -> Path:
        """Rewrite the best model with the whole history in its card, and return its path."""
        path = self.out / MODEL_FILE
        if self.context.is_main:
            self._save_model(load_model(path).network)
            if self.progress and not self.split.val:
                self.progress(1.0, f"done: model of the last epoch ({self.state['best']['epoch']}) kept, "
                                   "no validation (every patient trained)")
            elif self.progress:
                best = self.state["best"]
                self.progress(1.0, f"done: best epoch {best['epoch']}, validation Dice liver "
                                   f"{_format(best['val_liver_dice'])}, tumor {_format(best['val_tumor_dice'])}")
        return path

    # -- start, resume, save ---------------------------------------------------------------------------------

    def _start(self, resume: bool) -> None:
        checkpoint = self.out / CHECKPOINT_FILE
        if resume:
            saved = load_checkpoint(checkpoint)
            differences = resume_differences(saved["config"], self.config.to_dict())
            if differences:
                raise input_error(checkpoint, "the interrupted run used other values for "
                                              f"{', '.join(differences)}; resume with the same configuration")
            if saved["split"] != self.split.to_dict():
                raise input_error(checkpoint, "the data's patient split differs from the interrupted run's")
            self.network.load_state_dict(saved["network"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.averaged is not None:
                self.averaged.load_state_dict(saved["averaged"])
            self.state = saved["state"]
            if self.context.is_main:
                remove_partial_files(self.out)
        elif checkpoint.exists():
            raise input_error(self.out, "already holds a training run (checkpoint.pth): add --resume to continue "
                                        "it, or choose another --out")
        if self.context.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_config(self.config, self.out / CONFIG_FILE)

    def _save_checkpoint(self) -> None:
        if self.context.is_main:
            save_checkpoint(self.out / CHECKPOINT_FILE, {
                "config": self.config.to_dict(), "split": self.split.to_dict(),
                "network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "state": self.state, **({} if self.averaged is None else {"averaged": self.averaged.state_dict()})})

    def _save_model(self, network: torch.nn.Module) -> None:
        save_model(self.out / MODEL_FILE, network, self._card())

    def _card(self) -> dict[str, Any]:
        best = self.state["best"] or {}
        training = {
            "data": str(self.config.data), "cases": sorted(self.dataset.sources), "split": self.split.to_dict(),
            "history": self.state["history"], "epochs": len(self.state["history"]),
            "seconds": round(self.state["seconds"], 1), "device": str(self.context.device),
            "processes": self.context.world_size, "backend": self.context.backend,
            "config": self.config.to_dict()}
        metrics = {key: best.get(key) for key in ("val_liver_dice", "val_tumor_dice", "epoch")}
        card = new_card(self.dataset.architecture, self.config.preprocessing, training=training, metrics=metrics)
        card["postprocessing"] = dataclasses.asdict(self.config.postprocessing)
        return card

    def _validation_cases(self) -> Iterator[tuple[int, Case]]:
        """This process's validation cases, read one at a time (never all held in memory)."""
        for case in self.split.val[self.context.rank::self.context.world_size]:
            yield self.split.val.index(case), self.dataset.sources[case].load()

    # -- small helpers ---------------------------------------------------------------------------------------

    def _learning_rate(self, epoch: int, step: int) -> float:
        """Linear warm-up, then the schedule; with --max-minutes it follows the clock when that is further along,
        so a run cut short by its time limit still ends at a low learning rate."""
        optimization = self.config.optimization
        total = optimization.epochs * optimization.steps_per_epoch
        done = epoch * optimization.steps_per_epoch + step
        rate = optimization.learning_rate
        if done < optimization.warmup_steps:
            return rate * (done + 1) / optimization.warmup_steps
        position = min(1.0, max((done - optimization.warmup_steps) / max(1, total - optimization.warmup_steps),
                                self.time_used))
        if optimization.schedule == "cosine":
            return rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * position)))
        if optimization.schedule == "poly":
            return rate * max(0.01, (1 - position) ** 0.9)
        return rate

    def _patience_exhausted(self) -> bool:
        patience = self.config.optimization.early_stopping_patience
        return patience > 0 and bool(self.split.val) and self.state["epochs_without_improvement"] >= patience

    def _share_of_time_limit(self) -> float:
        """The share of --max-minutes used by the whole run, every resumed invocation included."""
        limit = self.config.runtime.max_minutes
        return 0.0 if limit is None else self.state["seconds"] / (limit * 60)

    def _report(self, message: str) -> None:
        """Progress with the overall fraction done, the running loss and the latest validation Dice."""
        if not self.progress:
            return
        optimization = self.config.optimization
        done = self.state["epoch"] * optimization.steps_per_epoch + self.state["step"]
        last = self.state["history"][-1] if self.state["history"] else {}
        self.progress(min(1.0, max(done / (optimization.epochs * optimization.steps_per_epoch), self.time_used)),
                      f"{message} | val Dice liver {_format(last.get('val_liver_dice'))} "
                      f"tumor {_format(last.get('val_tumor_dice'))}")


def _replace(config: TrainConfig, out: str | None = None, fold: int | None = None,
             network: dict[str, Any] | None = None) -> TrainConfig:
    """A copy of ``config`` with some fields changed (dataclasses.replace, nested)."""
    values = config.to_dict()
    if out is not None:
        values["out"] = out
    if fold is not None:
        values["split"]["fold"] = fold
    if network is not None:
        values["network"] = network
    return TrainConfig.from_dict(values)


def _out(config: TrainConfig) -> Path:
    """The run folder ``config.out``."""
    return Path(_required(config.out, "out"))


def _required(value: str | None, key: str) -> str:
    """The value of option ``key`` (``data``, ``out``), which training cannot do without."""
    if value is None:
        raise input_error(key, "training needs this option set")
    return value


def _clock() -> float:
    """Seconds of a monotonic clock (a function of its own so that tests can run training on a fake clock)."""
    return time.monotonic()


def _score(liver: float | None, tumor: float | None) -> float:
    """What "best" means: the mean of the liver and tumor Dice (liver alone when no tumor was validated)."""
    values = [value for value in (liver, tumor) if value is not None]
    return float(np.mean(values)) if values else 0.0


def _format(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(content, indent=2))
