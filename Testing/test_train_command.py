"""The `train` command for real: a subprocess run on phantom patients, its outputs, its card, its refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from LiverResUNetLib.cli import main
from LiverResUNetLib.model.model_file import load_model, read_card
from LiverResUNetLib.training.checkpoints import load_checkpoint

# A network and input small enough to learn the phantom liver in a few seconds on one CPU core.
# 32 pixels of 12 mm: the default's 384 mm field of view.
TINY = ["--set", "preprocessing.input_size=32", "--set", "preprocessing.pixel_size_mm=12",
        "--set", "network.base_width=8", "--set", "network.depth=3",
        "--set", "optimization.warmup_steps=5", "--lr", "0.01", "--batch-size", "8", "--threads", "1",
        "--set", "tumor_stage.enabled=false"]  # the single-stage loop; the cascade: test_cascade.py


def run_train(*arguments):
    return subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", *arguments],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tiny_phantom_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    result = run_train("--data", str(tiny_phantom_dataset), "--out", str(out), "--epochs", "6",
                       "--steps-per-epoch", "10", "--val-fraction", "0.25", *TINY)
    return result, out


def test_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--data", "--out", "--config", "--set", "--resume", "--device", "--max-minutes", "--folds",
                 "--fold", "--epochs", "--lr", "--batch-size", "--seed", "--patience", "torchrun"):
        assert flag in result.stdout


def test_the_trainer_module_script_runs_the_same_commands(tmp_path):
    script = Path(__file__).resolve().parents[1] / "LiverResUNetTrainer" / "LiverResUNetTrainer.py"
    result = subprocess.run([sys.executable, str(script), "train", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --data: required (on the command line or in the configuration file)"


def test_train_prints_the_model_path_last_and_progress_on_stderr(trained_run):
    result, out = trained_run
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out / "model.pth")
    assert "loss" in result.stderr and "val Dice liver" in result.stderr
    assert {path.name for path in out.iterdir()} == {"model.pth", "checkpoint.pth", "history.json", "config.yaml"}


def test_training_learns_the_liver(trained_run):
    _, out = trained_run
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    best = max(row["val_liver_dice"] for row in history)
    assert best > 0.6 and best > history[0]["val_liver_dice"] + 0.2
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_the_card_says_how_the_model_was_trained(trained_run, tiny_phantom_dataset):
    _, out = trained_run
    card = read_card(out / "model.pth")
    training = card["training"]
    assert training["data"] == str(tiny_phantom_dataset)
    assert training["cases"] == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3", "3Dircadb1.4"]
    split = training["split"]
    assert split["method"].startswith("patient-wise") and split["seed"] == 0 and split["folds"] is None
    assert sorted(split["train"] + split["val"]) == training["cases"] and not set(split["train"]) & set(split["val"])
    assert [set(row) >= {"epoch", "train_loss", "val_liver_dice", "val_tumor_dice", "lr"}
            for row in training["history"]] == [True] * 6
    assert training["epochs"] == 6 and training["device"] == "cpu" and training["seconds"] > 0
    assert training["config"]["network"]["base_width"] == 8 == card["architecture"]["base_width"]
    assert card["preprocessing"]["input_size"] == 32
    best = max(training["history"], key=lambda row: (row["val_liver_dice"] + (row["val_tumor_dice"] or 0)))
    assert card["metrics"]["epoch"] == best["epoch"]
    assert card["metrics"]["val_liver_dice"] == best["val_liver_dice"]
    assert load_model(out / "model.pth").network.training is False


def test_the_saved_config_trains_the_same_run_again(trained_run):
    _, out = trained_run
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optimization"]["epochs"] == 6 and saved["preprocessing"]["input_size"] == 32
    assert saved["runtime"]["threads"] == 1 and saved["network"]["in_channels"] == 5


@pytest.mark.parametrize("arguments, fragment", [
    (["--out", "RUN"], "--data: required"),
    (["--data", "DATA", "--out", "RUN", "--set", "optimization.epochs"], "expected KEY=VALUE"),
    (["--data", "DATA", "--out", "RUN", "--set", "optimisation.epochs=3"], "unknown option(s) optimisation"),
    (["--data", "DATA", "--out", "RUN", "--epochs", "0"], "optimization.epochs must be at least 1"),
    (["--data", "DATA", "--out", "RUN", "--set", "preprocessing.input_size=30"], "multiple"),
    (["--data", "DATA", "--out", "RUN", "--set", "preprocessing.context_slices=0", "--set", "network.in_channels=3"],
     "network.in_channels"),
    (["--data", "DATA", "--out", "RUN", "--device", "tpu"], "unknown device"),
    (["--data", "DATA", "--out", "RUN", "--set", "sampling.patch_size=12"], "sampling.patch_size"),
])
def test_user_mistakes_give_one_line_and_exit_code_2(arguments, fragment, tiny_phantom_dataset, tmp_path, capsys):
    arguments = [str(tiny_phantom_dataset) if value == "DATA" else str(tmp_path / "run") if value == "RUN"
                 else value for value in arguments]
    assert main(["train", *TINY, *arguments]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and fragment in lines[0], captured.err
    assert captured.out == ""


def test_missing_dataset_is_named(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten_without_resume(trained_run, tiny_phantom_dataset, capsys):
    _, out = trained_run
    before = (out / "model.pth").read_bytes()
    assert main(["train", "--data", str(tiny_phantom_dataset), "--out", str(out), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "model.pth").read_bytes() == before


def test_resume_refuses_a_different_configuration(trained_run, tiny_phantom_dataset, capsys):
    _, out = trained_run
    code = main(["train", "--data", str(tiny_phantom_dataset), "--out", str(out), "--resume", "--epochs", "6",
                 "--steps-per-epoch", "10", *TINY, "--lr", "0.5"])
    assert code == 2
    assert "optimization.learning_rate" in capsys.readouterr().err


def test_cross_validation_trains_every_fold(tiny_phantom_dataset, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["train", "--data", str(tiny_phantom_dataset), "--out", str(out), "--folds", "2", "--epochs", "1",
                 "--steps-per-epoch", "2", *TINY]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [str(out / "fold_0" / "model.pth"), str(out / "fold_1" / "model.pth")]
    summary = json.loads((out / "cross_validation.json").read_text())
    validated = [case for fold in summary["folds"] for case in fold["val"]]
    assert sorted(validated) == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3", "3Dircadb1.4"]
    assert summary["summary"]["val_liver_dice"]["n"] == 2
    cards = [read_card(path)["training"]["split"] for path in map(type(out), printed)]
    assert [card["fold"] for card in cards] == [0, 1] and all(card["folds"] == 2 for card in cards)
    # Resuming finished cross-validation from the run's own config.yaml trains nothing more.
    histories = [read_card(path)["training"]["history"] for path in printed]
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == printed
    assert [read_card(path)["training"]["history"] for path in printed] == histories


def test_max_minutes_stops_mid_epoch_and_still_writes_the_model(tiny_phantom_dataset, tmp_path, capsys):
    out = tmp_path / "short"
    assert main(["train", "--data", str(tiny_phantom_dataset), "--out", str(out), "--max-minutes", "0.001",
                 "--epochs", "3", "--steps-per-epoch", "50", *TINY]) == 0
    assert capsys.readouterr().out.strip() == str(out / "model.pth")
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history) == 1 and history[0]["partial"] is True and history[0]["steps"] < 50
    assert read_card(out / "model.pth")["training"]["epochs"] == 1


def test_val_fraction_0_trains_on_every_patient_and_keeps_the_last_model(tiny_phantom_dataset, tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["train", "--data", str(tiny_phantom_dataset), "--out", str(out), "--val-fraction", "0",
                 "--epochs", "2", "--steps-per-epoch", "3", "--patience", "1", *TINY]) == 0
    assert capsys.readouterr().out.strip() == str(out / "model.pth")
    model = load_model(out / "model.pth")
    split = model.card["training"]["split"]
    assert split["val"] == [] and split["train"] == ["3Dircadb1.1", "3Dircadb1.2", "3Dircadb1.3", "3Dircadb1.4"]
    history = model.card["training"]["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(row["val_liver_dice"] is None for row in history)
    last = load_checkpoint(out / "checkpoint.pth")["network"]
    for name, value in model.network.state_dict().items():
        assert torch.equal(value, last[name]), name
