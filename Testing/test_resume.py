"""--resume: a run killed at any moment continues from its last checkpoint and finishes as if never stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from LiverResUNetLib.errors import Cancelled
from LiverResUNetLib.model.model_file import load_model
from LiverResUNetLib.training.checkpoints import load_checkpoint
from LiverResUNetLib.training.config import TrainConfig, apply_overrides
from LiverResUNetLib.training.loop import train_model

TINY = {"preprocessing": {"input_size": 32, "pixel_size_mm": 12.0}, "network": {"base_width": 8, "depth": 3},
        "optimization.batch_size": 4, "optimization.warmup_steps": 3, "runtime.threads": 1,
        "tumor_stage.enabled": False}  # the single-stage loop; the cascade: test_cascade.py


def test_a_run_killed_mid_epoch_resumes_and_finishes(tiny_phantom_dataset, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "LiverResUNetLib", "train", "--data", str(tiny_phantom_dataset),
               "--out", str(out), "--epochs", "3", "--steps-per-epoch", "40", "--batch-size", "4", "--threads", "1",
               "--set", "preprocessing.input_size=32", "--set", "preprocessing.pixel_size_mm=12",
               "--set", "network.base_width=8", "--set", "network.depth=3",
               "--set", "runtime.checkpoint_every_steps=5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        interrupted = _wait_for_mid_epoch_checkpoint(out / "checkpoint.pth", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert process.stdout.read() == ""
    # A kill during a checkpoint write may leave its temporary file; the checkpoint itself is whole.
    state = load_checkpoint(out / "checkpoint.pth")["state"]
    assert (state["epoch"], state["step"]) >= (interrupted["epoch"], interrupted["step"])

    # The run's own config.yaml supplies the data and every option: --out and --resume are enough.
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", "--out", str(out), "--resume"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out / "model.pth")
    assert not [path.name for path in out.iterdir() if ".partial" in path.name]
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert all(row["steps"] == 40 for row in history)
    card = load_model(out / "model.pth").card
    assert [row["epoch"] for row in card["training"]["history"]] == [1, 2, 3]


def _wait_for_mid_epoch_checkpoint(path, process, timeout=240):
    """The state of the first checkpoint written in the middle of an epoch (step > 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended (code {process.returncode}) before a mid-epoch checkpoint appeared")
        if path.exists():
            state = load_checkpoint(path)["state"]
            if state["step"] > 0:
                return state
        time.sleep(0.05)
    pytest.fail("no mid-epoch checkpoint within the time limit")


class _CancelAt:
    """A cancel callback that says "stop" at its n-th call (training asks once per step)."""

    def __init__(self, calls):
        self.remaining = calls

    def __call__(self):
        self.remaining -= 1
        return self.remaining < 0


@pytest.mark.parametrize("ema_decay", [0.0, 0.5])
def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tiny_phantom_dataset, tmp_path, ema_decay):
    def config(out):
        return apply_overrides(TrainConfig(), {**TINY, "data": str(tiny_phantom_dataset), "out": str(out),
                                               "optimization.epochs": 2, "optimization.steps_per_epoch": 6,
                                               "optimization.ema_decay": ema_decay,
                                               "runtime.checkpoint_every_steps": 2})

    straight = train_model(config(tmp_path / "straight"))
    with pytest.raises(Cancelled):
        train_model(config(tmp_path / "stopped"), cancel=_CancelAt(9))
    state = load_checkpoint(tmp_path / "stopped" / "checkpoint.pth")["state"]
    assert (state["epoch"], state["step"]) == (1, 2)
    # What a SIGKILL during a checkpoint write leaves (atomic_path's temporary file): the resume removes it.
    (tmp_path / "stopped" / ".checkpoint.k1ll3d.partial.pth").write_bytes(b"half a checkpoint")
    resumed = train_model(config(tmp_path / "stopped"), resume=True)
    assert not list((tmp_path / "stopped").glob("*partial*"))

    expected, found = load_model(straight), load_model(resumed)
    for name, value in expected.network.state_dict().items():
        assert torch.equal(value, found.network.state_dict()[name]), name
    def without_times(card):
        return [{key: value for key, value in row.items() if key != "seconds"} for row in card["training"]["history"]]

    assert without_times(found.card) == without_times(expected.card)
    # With weight averaging the model kept is the average, not the last weights (which the checkpoint holds too).
    last = load_checkpoint(tmp_path / "stopped" / "checkpoint.pth")["network"]
    differs = [not torch.equal(value, last[name]) for name, value in found.network.state_dict().items()]
    assert any(differs) == (ema_decay > 0)


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_phantom_dataset, tmp_path):
    from LiverResUNetLib.errors import InputError

    config = apply_overrides(TrainConfig(), {**TINY, "data": str(tiny_phantom_dataset), "out": str(tmp_path / "new")})
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        train_model(config, resume=True)
    assert os.listdir(tmp_path) == []


class _FakeClock:
    """Training's clock, advanced by one minute whenever training reads it (once per step after the start)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 60.0
        return self.now


@pytest.fixture
def one_minute_steps(monkeypatch):
    """Every training step takes one minute of the (fake) clock; the learning rate of each step is recorded."""
    from LiverResUNetLib.training import loop

    monkeypatch.setattr(loop, "_clock", _FakeClock())
    rates = []
    schedule = loop._Run._learning_rate

    def recorded(run, epoch, step):
        rates.append((epoch, step, schedule(run, epoch, step)))
        return rates[-1][2]

    monkeypatch.setattr(loop._Run, "_learning_rate", recorded)
    return rates


def _timed_config(dataset, out, minutes):
    # 2 epochs of 6 steps but 8 minutes: the clock cuts epoch 2 after its 2nd step, and sets the schedule.
    return apply_overrides(TrainConfig(), {**TINY, "data": str(dataset), "out": str(out),
                                           "optimization.epochs": 2, "optimization.steps_per_epoch": 6,
                                           "runtime.checkpoint_every_steps": 2, "runtime.max_minutes": minutes})


def test_max_minutes_is_the_whole_runs_time_and_the_schedule_continues_across_resume(
        tiny_phantom_dataset, tmp_path, one_minute_steps):
    straight = train_model(_timed_config(tiny_phantom_dataset, tmp_path / "straight", 8))
    uninterrupted = {(epoch, step): rate for epoch, step, rate in one_minute_steps}
    assert sorted(uninterrupted) == [(0, step) for step in range(6)] + [(1, 0), (1, 1)]
    one_minute_steps.clear()

    stopped = _timed_config(tiny_phantom_dataset, tmp_path / "stopped", 8)
    with pytest.raises(Cancelled):
        train_model(stopped, cancel=_CancelAt(5))
    one_minute_steps.clear()
    resumed = train_model(stopped, resume=True)
    # The first step after the resume (epoch 1, step 4) has the rate the uninterrupted run gave it: the schedule
    # continued from 4 minutes used, it did not start over from the warm-up.
    assert one_minute_steps[0][:2] == (0, 4)
    assert [rate for *_, rate in one_minute_steps] == [uninterrupted[key[:2]] for key in one_minute_steps]
    assert one_minute_steps[0][2] < 0.6 * TrainConfig().optimization.learning_rate, "half-way down the cosine"
    for name, value in load_model(straight).network.state_dict().items():
        assert torch.equal(value, load_model(resumed).network.state_dict()[name]), name
    assert load_checkpoint(tmp_path / "stopped" / "checkpoint.pth")["state"]["seconds"] == 8 * 60


def test_a_clock_cut_epoch_stays_open_and_a_longer_limit_extends_the_run(
        tiny_phantom_dataset, tmp_path, one_minute_steps):
    out = tmp_path / "run"
    train_model(_timed_config(tiny_phantom_dataset, out, 8))
    state = load_checkpoint(out / "checkpoint.pth")["state"]
    assert (state["epoch"], state["step"]) == (1, 2), "the cut epoch 2 stays open at its next step"
    history = json.loads((out / "history.json").read_text())["history"]
    assert [(row["epoch"], row["steps"], row.get("partial")) for row in history] == [(1, 6, None), (2, 2, True)]
    weights_before = load_model(out / "model.pth").network.state_dict()

    # The same limit: already spent, said so, nothing trained, the model kept.
    messages = []
    train_model(_timed_config(tiny_phantom_dataset, out, 8), lambda _, message: messages.append(message),
                resume=True)
    assert any("already spent" in message and "larger --max-minutes" in message for message in messages)
    assert one_minute_steps[8:] == []
    assert load_checkpoint(out / "checkpoint.pth")["state"]["step"] == 2
    assert json.loads((out / "history.json").read_text())["history"] == history
    for name, value in load_model(out / "model.pth").network.state_dict().items():
        assert torch.equal(value, weights_before[name]), name

    # A larger limit: the open epoch continues from its 3rd step, and its row is replaced by the complete one.
    train_model(_timed_config(tiny_phantom_dataset, out, 20), resume=True)
    assert [key[:2] for key in one_minute_steps[8:]] == [(1, step) for step in range(2, 6)]
    history = json.loads((out / "history.json").read_text())["history"]
    assert [(row["epoch"], row["steps"], row.get("partial")) for row in history] == [(1, 6, None), (2, 6, None)]
    assert load_model(out / "model.pth").card["training"]["epochs"] == 2
